/**
 * Resident memory of the server process, sampled from `/proc/<pid>/status` (VmRSS) every 100 ms
 * while the bench runs. `phase()` starts a new per-scenario peak; the overall peak spans all of
 * them. VmHWM is the kernel's own high-water mark, start-up included. Linux only: elsewhere every
 * figure is `null`.
 */
import { rssKB } from "./harness/lib/common.mjs"

const SAMPLE_EVERY_MS = 100

export interface RssSampler {
  /** VmRSS now, in MB. */
  readonly now: () => number | null
  /** VmHWM now, in MB. */
  readonly highWater: () => number | null
  /** Starts a new phase; returns a function that gives that phase's peak so far, in MB. */
  readonly phase: () => () => number | null
  /** Highest VmRSS sampled since `startRssSampler`, in MB. */
  readonly peak: () => number | null
  readonly stop: () => void
}

export const toMb = (kb: number | null): number | null => (kb === null ? null : Math.round(kb / 102.4) / 10)

export function startRssSampler(pid: number): RssSampler {
  let peakKb = 0
  let phaseKb = 0
  const sample = () => {
    const kb = rssKB(pid).rss ?? 0
    peakKb = Math.max(peakKb, kb)
    phaseKb = Math.max(phaseKb, kb)
  }
  sample()
  const timer = setInterval(sample, SAMPLE_EVERY_MS)
  timer.unref()
  return {
    now: () => toMb(rssKB(pid).rss),
    highWater: () => toMb(rssKB(pid).hwm),
    phase: () => {
      phaseKb = 0
      sample()
      return () => {
        sample()
        return phaseKb > 0 ? toMb(phaseKb) : null
      }
    },
    peak: () => (peakKb > 0 ? toMb(peakKb) : null),
    stop: () => clearInterval(timer)
  }
}
