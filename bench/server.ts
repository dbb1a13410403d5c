/**
 * The server under test as a child process of the bench: started on a free 127.0.0.1 port
 * (optionally pinned to one CPU with `taskset`), polled until `GET /v1/health` answers 200, and
 * stopped with SIGTERM, then SIGKILL after 5 s. Its output is kept (last 64 KiB of each stream) so
 * a server that dies can be diagnosed. The gateway case runs its other children the same way: the
 * fake upstreams (health path `/healthz`) and the harness's `run.mjs` (in a process group of its
 * own, so stopping it stops its load generators too).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { get } from "node:http"
import { createServer } from "node:net"
import { resolve } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"

/** How to start the server. */
export interface ServerOptions {
  /** A shell command, run as `sh -c "exec <command>"` so the process id is the server's own. */
  readonly command: string | undefined
  /** A program and its arguments to run instead of `command` or the PolyAgent server. */
  readonly argv?: ReadonlyArray<string>
  /** Run in a process group of its own; signals then go to the whole group. */
  readonly group?: boolean
  readonly cwd: string
  readonly env: Readonly<Record<string, string | undefined>>
  /** CPU to pin the server to with `taskset -c`, or `null`. */
  readonly cpu: number | null
}

/** A running server process. */
export interface Server {
  readonly pid: number
  readonly alive: () => boolean
  /** Resolves with the exit code (`null` after a signal) once the process is gone. */
  readonly exited: Promise<number | null>
  /** What the server wrote to stderr (and stdout), last 64 KiB each. */
  readonly output: () => { readonly stderr: string; readonly stdout: string }
  /** SIGTERM, wait up to 5 s, then SIGKILL; resolves once the process is gone. */
  readonly stop: () => Promise<void>
  /** Synchronous last resort for `process.on("exit")`. */
  readonly kill: () => void
}

/** Thrown when the server is gone before it answered, with its output. */
export class ServerExited extends Error {}

const OUTPUT_TAIL = 64 * 1024
const TERM_GRACE_MS = 5_000

/** `npm start`'s command (`node <flags> packages/http/dist/bin.js`): what the bench measures by default. */
export const startScript: string = JSON.parse(readFileSync(resolve(import.meta.dirname, "../package.json"), "utf8"))
  .scripts.start

/** The default server: `npm start`'s command, with the Node that runs the bench. */
export const defaultCommand = (): ReadonlyArray<string> => [process.execPath, ...startScript.split(" ").slice(1)]

export const hasCommand = (name: string): boolean =>
  spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))))
    })
  })
}

export function startServer(options: ServerOptions): Server {
  const argv =
    options.argv ?? (options.command === undefined ? defaultCommand() : ["sh", "-c", `exec ${options.command}`])
  const pinned = options.cpu === null ? argv : ["taskset", "-c", String(options.cpu), ...argv]
  const [file = "", ...args] = pinned
  const group = options.group === true
  const child = spawn(file, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: group
  })
  const stdout = tail(child, "stdout")
  const stderr = tail(child, "stderr")
  const exitCode = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => resolve(code))
    child.once("error", () => resolve(null))
  })
  const exited = exitCode.then(() => undefined)
  const alive = () => child.exitCode === null && child.signalCode === null && child.pid !== undefined
  child.once("error", (error) => stderr.push(`spawn failed: ${error.message}\n`))
  const signal = (name: NodeJS.Signals) => {
    if (!alive()) return
    if (!group || child.pid === undefined) {
      child.kill(name)
      return
    }
    try {
      process.kill(-child.pid, name)
    } catch {
      child.kill(name)
    }
  }
  return {
    pid: child.pid ?? -1,
    alive,
    exited: exitCode,
    output: () => ({ stderr: stderr.text(), stdout: stdout.text() }),
    stop: async () => {
      if (!alive()) return
      signal("SIGTERM")
      if (await exitsWithin(exited, TERM_GRACE_MS)) return
      signal("SIGKILL")
      await exitsWithin(exited, TERM_GRACE_MS)
    },
    kill: () => signal("SIGKILL")
  }
}

/** How often `waitHealthy` polls: the granularity of the start-up time it measures. */
const POLL_MS = 10

/**
 * Polls `GET path` every {@link POLL_MS} until it answers 200; fails after `timeoutMs` or if the
 * server exits. Resolves with the milliseconds since the call, i.e. the start-up time when it is
 * called right after `startServer`.
 */
export async function waitHealthy(
  server: Server,
  port: number,
  timeoutMs: number,
  path = "/v1/health"
): Promise<number> {
  const startedAt = performance.now()
  const deadline = startedAt + timeoutMs
  while (performance.now() < deadline) {
    if (!server.alive()) throw new ServerExited(`the server exited before ${path} answered 200`)
    if ((await healthStatus(port, path)) === 200) return performance.now() - startedAt
    await sleep(POLL_MS)
  }
  throw new Error(`GET ${path} did not answer 200 within ${timeoutMs / 1000} s`)
}

function healthStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get({ host: "127.0.0.1", port, path, agent: false, timeout: 1_000 }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on("timeout", () => req.destroy())
    req.on("error", () => resolve(0))
  })
}

function exitsWithin(exited: Promise<void>, ms: number): Promise<boolean> {
  // An unref'd timer: a server that exited at once must not hold the bench open for `ms`.
  const timer = sleep(ms, false, { ref: false })
  return Promise.race([exited.then(() => true), timer])
}

/** Keeps the last {@link OUTPUT_TAIL} characters of one output stream of the child. */
function tail(child: ChildProcess, name: "stdout" | "stderr"): { push: (s: string) => void; text: () => string } {
  let text = ""
  const push = (s: string) => {
    text += s
    if (text.length > 2 * OUTPUT_TAIL) text = text.slice(-OUTPUT_TAIL)
  }
  child[name]?.setEncoding("utf8")
  child[name]?.on("data", push)
  return { push, text: () => text.slice(-OUTPUT_TAIL) }
}
