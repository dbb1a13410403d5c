/**
 * CPU time of the server process, read from `/proc/<pid>/stat` (user + system time of all its
 * threads). Throughput on a shared 2-core machine moves with whatever else runs there; the server's
 * CPU time per answer does much less, so the bench reports both. Linux only: elsewhere `null`.
 */
import { readFileSync } from "node:fs"

/** Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 on Linux). */
const TICKS_PER_S = 100

/** The process's children (`server.workers` processes under their primary). */
const childrenOf = (pid: number): Array<number> => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ").filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/**
 * The user + system CPU time so far of the process and its children (the workers of a
 * `server.workers` server), in ms; `null` when the process's cannot be read.
 */
export function cpuMs(pid: number): number | null {
  const own = processCpuMs(pid)
  if (own === null) return null
  return childrenOf(pid).reduce((total, child) => total + (processCpuMs(child) ?? 0), own)
}

function processCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // Fields after the command name, which is in parentheses and may hold spaces: state is the first.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const user = Number(fields[11])
    const system = Number(fields[12])
    return Number.isFinite(user) && Number.isFinite(system) ? ((user + system) * 1000) / TICKS_PER_S : null
  } catch {
    return null
  }
}

/** CPU time used between `startMs` and `startMs + durationMs` from now. */
export interface CpuWindow {
  /**
   * The CPU ms of the window; call it once the window has ended. Should the closing timer not have
   * run yet (a busy event loop), the window is closed now. `null` when unreadable.
   */
  readonly used: () => number | null
}

/** Reads the server's CPU time when the measured window opens and when it closes. */
export function cpuWindow(pid: number, startMs: number, durationMs: number): CpuWindow {
  let start: number | null = null
  let used: number | null = null
  const close = () => {
    if (used !== null) return
    const end = cpuMs(pid)
    used = start === null || end === null ? null : end - start
  }
  setTimeout(() => {
    start = cpuMs(pid)
  }, startMs).unref()
  setTimeout(close, startMs + durationMs).unref()
  return {
    used: () => {
      close()
      return used
    }
  }
}
