/**
 * Closed-loop HTTP load over keep-alive sockets, in plain `node:http`. Each of `connections`
 * workers sends a request, waits for the whole answer, then sends the next one, so the offered
 * load follows the server's pace (as `wrk` does) and requests/s at a fixed concurrency is the
 * server's throughput. Only requests started inside the measured window count; the warm-up before
 * it lets the server's JIT and the socket pool settle. (The shared harness's `lib/loadgen.mjs`
 * is open-loop at a fixed rate instead: that one measures latency at a given load.)
 */
import { Agent, type IncomingMessage, request } from "node:http"

/** Where requests go (always 127.0.0.1 in the bench) and what every request carries. */
export interface Target {
  readonly host: string
  readonly port: number
  readonly headers: Readonly<Record<string, string>>
  /** Whole-exchange limit; a request still running after it is destroyed and counted as failed. */
  readonly timeoutMs: number
}

/** A finished `application/json` exchange. `status` 0 means a socket error or a timeout. */
export interface Exchange {
  readonly status: number
  readonly totalMs: number
  readonly body: string
}

/** A finished SSE exchange, times from the moment the request was sent. */
export interface StreamExchange {
  readonly status: number
  /** First byte of the response body (the first event), `null` if none arrived. */
  readonly firstByteMs: number | null
  /** End of the `event: done` event, `null` if the stream ended without one. */
  readonly doneMs: number | null
  /** The data of the server's `event: error` event (first 300 characters), `null` if it sent none. */
  readonly errorEvent: string | null
}

/** How long and how hard one scenario runs. */
export interface LoadPlan {
  readonly connections: number
  readonly warmupMs: number
  readonly durationMs: number
  /** Upper bound on requests sent, warm-up included, so no loop can run away. */
  readonly maxRequests: number
  /** Checked before every request: once false (the server died), the workers stop. */
  readonly proceed: () => boolean
}

/** What a scenario recorded: one sample per request started in the window. */
export interface LoadRun<S> {
  readonly samples: ReadonlyArray<S>
  /** Requests sent, warm-up included. */
  readonly sent: number
  /** The measured window, stretched to the last answer of a request started inside it. */
  readonly windowMs: number
}

export const isOk = (status: number): boolean => status >= 200 && status < 300

/** Runs `send` from `plan.connections` concurrent workers for warm-up plus duration. */
export async function runClosedLoop<S>(plan: LoadPlan, send: (agent: Agent) => Promise<S>): Promise<LoadRun<S>> {
  const agent = new Agent({ keepAlive: true, maxSockets: plan.connections, maxFreeSockets: plan.connections })
  const windowStart = performance.now() + plan.warmupMs
  const windowEnd = windowStart + plan.durationMs
  const samples: Array<S> = []
  let sent = 0
  let lastEnd = windowStart
  const worker = async (): Promise<void> => {
    while (sent < plan.maxRequests && plan.proceed()) {
      const startedAt = performance.now()
      if (startedAt >= windowEnd) return
      sent++
      const sample = await send(agent)
      if (startedAt >= windowStart) {
        samples.push(sample)
        lastEnd = Math.max(lastEnd, performance.now())
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: plan.connections }, worker))
  } finally {
    agent.destroy()
  }
  return { samples, sent, windowMs: Math.max(plan.durationMs, lastEnd - windowStart) }
}

/** `POST path` with a JSON body; reads the whole answer (kept in `body` only when `keepBody`). */
export function postJson(
  agent: Agent,
  target: Target,
  path: string,
  body: Buffer,
  keepBody: boolean
): Promise<Exchange> {
  return post(agent, target, path, body, {}, (res, startedAt) =>
    readAll(res, keepBody).then((text) => ({
      status: res.statusCode ?? 0,
      totalMs: performance.now() - startedAt,
      body: text
    }))
  ).then((result) => result ?? { status: 0, totalMs: 0, body: "" })
}

/** `POST path` expecting `text/event-stream`; times the first body byte and the `done` event. */
export function postStream(agent: Agent, target: Target, path: string, body: Buffer): Promise<StreamExchange> {
  return post(agent, target, path, body, { accept: "text/event-stream" }, readStream).then(
    (result) => result ?? { status: 0, firstByteMs: null, doneMs: null, errorEvent: null }
  )
}

/** One request; resolves with `read`'s result, or `undefined` on a socket error or timeout. */
function post<T>(
  agent: Agent,
  target: Target,
  path: string,
  body: Buffer,
  extraHeaders: Readonly<Record<string, string>>,
  read: (res: IncomingMessage, startedAt: number) => Promise<T>
): Promise<T | undefined> {
  return new Promise((resolve) => {
    const startedAt = performance.now()
    const headers = { ...target.headers, ...extraHeaders, "content-length": String(body.length) }
    const req = request({ host: target.host, port: target.port, path, method: "POST", agent, headers }, (res) => {
      read(res, startedAt).then(settle, () => settle(undefined))
    })
    const timer = setTimeout(() => req.destroy(new Error("timeout")), target.timeoutMs)
    function settle(value: T | undefined): void {
      clearTimeout(timer)
      resolve(value)
    }
    req.on("error", () => settle(undefined))
    req.end(body)
  })
}

/** Resolves at the end of the body; rejects if the socket dies first. */
function readAll(res: IncomingMessage, keep: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ""
    res.setEncoding("utf8")
    res.on("data", (chunk: string) => {
      if (keep) text += chunk
    })
    res.on("end", () => resolve(text))
    res.on("error", reject)
    res.on("close", () => {
      if (!res.complete) reject(new Error("response cut short"))
    })
  })
}

function readStream(res: IncomingMessage, startedAt: number): Promise<StreamExchange> {
  return new Promise((resolve, reject) => {
    const status = res.statusCode ?? 0
    let firstByteMs: number | null = null
    let doneMs: number | null = null
    let errorEvent: string | null = null
    const parse = sseParser((event, data) => {
      if (event === "done" && doneMs === null) doneMs = performance.now() - startedAt
      if (event === "error") errorEvent ??= data.slice(0, 300)
    })
    res.setEncoding("utf8")
    res.on("data", (chunk: string) => {
      firstByteMs ??= performance.now() - startedAt
      parse(chunk)
    })
    res.on("end", () => resolve({ status, firstByteMs, doneMs, errorEvent }))
    res.on("error", reject)
    res.on("close", () => {
      if (!res.complete) reject(new Error("stream cut short"))
    })
  })
}

/**
 * Feeds SSE text in arbitrary chunks and calls `onEvent` with each event's name (`message` when it
 * has no `event:` line) and data (its `data:` lines joined by newlines) once the blank line that
 * ends it has arrived.
 */
export function sseParser(onEvent: (name: string, data: string) => void): (chunk: string) => void {
  let pending = ""
  let name = ""
  let data: Array<string> = []
  let fields = 0
  return (chunk) => {
    const lines = (pending + chunk).split(/\r?\n/)
    pending = lines.pop() ?? ""
    for (const line of lines) {
      if (line === "") {
        if (fields > 0) onEvent(name || "message", data.join("\n"))
        name = ""
        data = []
        fields = 0
      } else if (!line.startsWith(":")) {
        fields++
        if (line.startsWith("event:")) name = line.slice(6).trim()
        else if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5))
      }
    }
  }
}
