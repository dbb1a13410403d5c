/**
 * The three measured scenarios and the figures each one reports (snake_case: they end up in the
 * bench's JSON line). Latency figures and requests/s count 2xx answers only; everything else is an
 * error, broken down in `statuses` (`"socket"` = connection error or timeout).
 */
import { Agent } from "node:http"
import { summarize } from "./harness/lib/common.mjs"
import {
  type Exchange,
  isOk,
  type LoadPlan,
  type LoadRun,
  postJson,
  postStream,
  runClosedLoop,
  type StreamExchange,
  type Target
} from "./load.ts"
import { type CpuWindow, cpuWindow } from "./cpu.ts"
import type { RssSampler } from "./rss.ts"

/** What every scenario shares. */
export interface Bench {
  readonly target: Target
  readonly warmupMs: number
  readonly durationMs: number
  readonly proceed: () => boolean
  readonly rss: RssSampler
  /** The server's process id, for its CPU time. */
  readonly pid: number
}

/** Figures of a request/response scenario. */
export interface ChatFigures {
  readonly connections: number
  readonly duration_s: number
  /** 2xx answers to requests started in the window. */
  readonly requests: number
  readonly rps: number
  readonly mean_ms: number | null
  readonly p50_ms: number | null
  readonly p90_ms: number | null
  readonly p99_ms: number | null
  readonly max_ms: number | null
  /** Non-2xx answers plus socket errors and timeouts. */
  readonly errors: number
  readonly statuses: Readonly<Record<string, number>>
  readonly rss_peak_mb: number | null
  /** Server CPU time (user + system) in the measured window per 2xx answer: the cost of one request. */
  readonly cpu_ms_per_req: number | null
  /** Server CPU time over the window's wall time: ~100 when the one core it is pinned to is saturated. */
  readonly server_cpu_pct: number | null
}

/** Figures of the continuing-sessions scenario. */
export interface SessionFigures extends ChatFigures {
  readonly sessions: number
  /** Turns per session at the end, creation and warm-up included: the history the last turns carried. */
  readonly turns_per_session: number
}

/** Figures of the SSE scenario. */
export interface StreamFigures {
  readonly connections: number
  readonly duration_s: number
  /** Streams that answered 2xx and reached `event: done`. */
  readonly streams: number
  readonly streams_per_s: number
  readonly ttfb_p50_ms: number | null
  readonly ttfb_p99_ms: number | null
  readonly done_p50_ms: number | null
  readonly done_p99_ms: number | null
  readonly done_max_ms: number | null
  /** 2xx streams that ended without `event: done`. */
  readonly incomplete: number
  /** Non-2xx answers, socket errors, timeouts and streams with an `event: error`. */
  readonly errors: number
  /** Streams that answered 2xx but sent an `event: error` (counted in `errors`). */
  readonly error_events: number
  /** The data of the first `event: error`, to say what went wrong; `null` if there was none. */
  readonly first_error_event: string | null
  readonly statuses: Readonly<Record<string, number>>
  readonly rss_peak_mb: number | null
  /** Server CPU time in the measured window per completed stream. */
  readonly cpu_ms_per_stream: number | null
  readonly server_cpu_pct: number | null
}

export const CHAT_PATH = "/v1/chat"
export const STREAM_PATH = "/v1/chat/stream"
export const MESSAGE = "Hello, how are you today?"
const MAX_REQUESTS = 2_000_000
const SESSION_CREATE_CONCURRENCY = 8

const chatBody = (sessionId?: string): Buffer =>
  Buffer.from(
    JSON.stringify(sessionId === undefined ? { message: MESSAGE } : { message: MESSAGE, session_id: sessionId })
  )

/** `POST /v1/chat` with a new session per request. */
export async function chatNew(bench: Bench, connections: number): Promise<ChatFigures> {
  const body = chatBody()
  const peak = bench.rss.phase()
  const cpu = cpuWindow(bench.pid, bench.warmupMs, bench.durationMs)
  const run = await runClosedLoop(plan(bench, connections), (agent) =>
    postJson(agent, bench.target, CHAT_PATH, body, false)
  )
  return chatFigures(run, connections, bench, peak(), cpu)
}

/** `POST /v1/chat` on `sessions` sessions created first, named round-robin. */
export async function chatSession(bench: Bench, connections: number, sessions: number): Promise<SessionFigures> {
  const ids = await createSessions(bench.target, sessions)
  const next = roundRobin(ids.map(chatBody))
  const peak = bench.rss.phase()
  const cpu = cpuWindow(bench.pid, bench.warmupMs, bench.durationMs)
  const run = await runClosedLoop(plan(bench, connections), (agent) =>
    postJson(agent, bench.target, CHAT_PATH, next(), false)
  )
  const figures = chatFigures(run, connections, bench, peak(), cpu)
  return { ...figures, sessions, turns_per_session: Math.round(1 + run.sent / sessions) }
}

/** `POST /v1/chat/stream` with a new session per stream. */
export async function stream(bench: Bench, connections: number): Promise<StreamFigures> {
  const body = chatBody()
  const peak = bench.rss.phase()
  const cpu = cpuWindow(bench.pid, bench.warmupMs, bench.durationMs)
  const run = await runClosedLoop(plan(bench, connections), (agent) =>
    postStream(agent, bench.target, STREAM_PATH, body)
  )
  return streamFigures(run, connections, bench, peak(), cpu)
}

/** Creates `count` sessions with one turn each; fails on the first answer without a `session_id`. */
export async function createSessions(target: Target, count: number): Promise<Array<string>> {
  const agent = new Agent({ keepAlive: true, maxSockets: SESSION_CREATE_CONCURRENCY })
  const body = chatBody()
  const ids: Array<string> = []
  try {
    for (let batch = 0; batch < count; batch += SESSION_CREATE_CONCURRENCY) {
      const size = Math.min(SESSION_CREATE_CONCURRENCY, count - batch)
      const answers = await Promise.all(
        Array.from({ length: size }, () => postJson(agent, target, CHAT_PATH, body, true))
      )
      for (const answer of answers) ids.push(sessionIdOf(answer))
    }
  } finally {
    agent.destroy()
  }
  return ids
}

function sessionIdOf(answer: Exchange): string {
  const parsed = isOk(answer.status) ? parseJson(answer.body) : undefined
  if (
    typeof parsed === "object" &&
    parsed !== null &&
    "session_id" in parsed &&
    typeof parsed.session_id === "string"
  ) {
    return parsed.session_id
  }
  throw new Error(`creating a session: HTTP ${answer.status || "socket error"} ${answer.body.slice(0, 300)}`)
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function roundRobin<A>(items: ReadonlyArray<A>): () => A {
  let index = 0
  return () => {
    const item = items[index++ % items.length]
    if (item === undefined) throw new Error("roundRobin over no items")
    return item
  }
}

const plan = (bench: Bench, connections: number): LoadPlan => ({
  connections,
  warmupMs: bench.warmupMs,
  durationMs: bench.durationMs,
  maxRequests: MAX_REQUESTS,
  proceed: bench.proceed
})

function chatFigures(
  run: LoadRun<Exchange>,
  connections: number,
  bench: Bench,
  rssPeak: number | null,
  cpu: CpuWindow
): ChatFigures {
  const ok = run.samples.filter((s) => isOk(s.status))
  const cpuMs = cpu.used()
  const latency = summarize(ok.map((s) => s.totalMs))
  return {
    connections,
    duration_s: bench.durationMs / 1000,
    requests: ok.length,
    rps: perSecond(ok.length, run.windowMs),
    mean_ms: round2(latency.mean),
    p50_ms: round2(latency.p50),
    p90_ms: round2(latency.p90),
    p99_ms: round2(latency.p99),
    max_ms: round2(latency.max),
    errors: run.samples.length - ok.length,
    statuses: countKeys(run.samples.map((s) => statusKey(s.status))),
    rss_peak_mb: rssPeak,
    cpu_ms_per_req: perAnswer(cpuMs, ok.length),
    server_cpu_pct: cpuPercent(cpuMs, bench.durationMs)
  }
}

function streamFigures(
  run: LoadRun<StreamExchange>,
  connections: number,
  bench: Bench,
  rssPeak: number | null,
  cpu: CpuWindow
): StreamFigures {
  const cpuMs = cpu.used()
  const failedInStream = run.samples.filter((s) => isOk(s.status) && s.errorEvent !== null)
  const answered = run.samples.filter((s) => isOk(s.status) && s.errorEvent === null)
  const done = answered.flatMap((s) => (s.doneMs === null ? [] : [s.doneMs]))
  const ttfb = summarize(answered.flatMap((s) => (s.firstByteMs === null ? [] : [s.firstByteMs])))
  const total = summarize(done)
  return {
    connections,
    duration_s: bench.durationMs / 1000,
    streams: done.length,
    streams_per_s: perSecond(done.length, run.windowMs),
    ttfb_p50_ms: round2(ttfb.p50),
    ttfb_p99_ms: round2(ttfb.p99),
    done_p50_ms: round2(total.p50),
    done_p99_ms: round2(total.p99),
    done_max_ms: round2(total.max),
    incomplete: answered.length - done.length,
    errors: run.samples.length - answered.length,
    error_events: failedInStream.length,
    first_error_event: failedInStream[0]?.errorEvent ?? null,
    statuses: countKeys(
      run.samples.map((s) => (s.errorEvent === null ? statusKey(s.status) : `${s.status} + event: error`))
    ),
    rss_peak_mb: rssPeak,
    cpu_ms_per_stream: perAnswer(cpuMs, done.length),
    server_cpu_pct: cpuPercent(cpuMs, bench.durationMs)
  }
}

const statusKey = (status: number): string => (status === 0 ? "socket" : String(status))

function countKeys(keys: ReadonlyArray<string>): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1
  return counts
}

const perSecond = (count: number, windowMs: number): number => Math.round((count / (windowMs / 1000)) * 10) / 10
const round2 = (x: number | null): number | null => (x === null ? null : Math.round(x * 100) / 100)
const perAnswer = (cpuMs: number | null, answers: number): number | null =>
  cpuMs === null || answers === 0 ? null : Math.round((cpuMs / answers) * 1000) / 1000
const cpuPercent = (cpuMs: number | null, windowMs: number): number | null =>
  cpuMs === null ? null : Math.round((cpuMs / windowMs) * 1000) / 10
