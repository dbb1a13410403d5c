/**
 * The gateway case of `npm run bench`: what PolyAgent adds on top of calling a provider directly.
 * `POST /v1/chat/completions` (model `gpt-4o-mini`) goes through the server's OpenAI provider to
 * the shared harness's fake upstream (`harness/fake-upstream.mjs`), and the same load is sent to
 * the fake directly in the same run; the harness's `run.mjs` measures both
 * (`--tests latency,throughput,stream`) and `compare.mjs` gives the deltas.
 *
 * Two fakes and two servers, because the harness's figures need two upstream speeds:
 *
 * - "slow": a fake with a 20 ms latency before the first byte, streams of 20 chunks 5 ms apart,
 *   and a server whose `OPENAI_BASE_URL` points at it. Latency (open loop at 100/500/1000 rps,
 *   corrected for coordinated omission) and streaming (time to the response headers, to the first
 *   `data:` event and to `[DONE]`) run against these, as the harness's reference figures did.
 * - "fast": a fake that answers at once (0 ms) and a server pointed at it. Max throughput (`wrk`,
 *   64 connections, closed loop) runs against these.
 *
 * The servers get exactly `OPENAI_API_KEY` and `OPENAI_BASE_URL` on top of the zero-config
 * environment the rest of the bench uses. With `taskset` and 2+ CPUs both servers run on CPU 1
 * (one serves while the other idles), and the fakes, the load generators and this process on
 * CPU 0: the server has one core to itself, and direct and gateway runs share the same fakes on the
 * same core, so the difference between them is the gateway hop. Max throughput uses `wrk` when
 * installed, else `autocannon` (a devDependency); without either, this bench's own closed-loop
 * generator (`load.ts`), and `throughput.tool` says which.
 */
import { randomBytes } from "node:crypto"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { Agent } from "node:http"
import { join, resolve } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { type FloorLatency, type FloorThroughput, floorLatency, floorThroughput, startFloor } from "./floor.ts"
import { summarize } from "./harness/lib/common.mjs"
import { isOk, postJson, runClosedLoop, type Target } from "./load.ts"
import { type RssSampler, startRssSampler } from "./rss.ts"
import { freePort, hasCommand, type Server, startServer, waitHealthy } from "./server.ts"

export const MODEL = "gpt-4o-mini"
export const COMPLETIONS_PATH = "/v1/chat/completions"
export const RATES: ReadonlyArray<number> = [100, 200, 500, 1000]
const UPSTREAM_LATENCY_MS = 20
const STREAM_CHUNKS = 20
const CHUNK_INTERVAL_MS = 5
const LATENCY_CONNECTIONS = 64
const THROUGHPUT_CONNECTIONS = 64
const STREAM_CONCURRENCY = 50
const STREAM_ROUNDS = 3
const LATENCY_WARMUP_S = 1
const WARMUP_MS = 1_000
const WARMUP_CONNECTIONS = 8
const WARMUP_STREAMS = 16
const STARTUP_TIMEOUT_MS = 30_000
const REQUEST_TIMEOUT_MS = 30_000
/** Slack on top of a harness run's planned duration before it is stopped. */
const HARNESS_SLACK_MS = 60_000
const ERROR_BODY_CHARS = 500

const HARNESS_DIR = resolve(import.meta.dirname, "harness")
const RUN_MJS = join(HARNESS_DIR, "run.mjs")
const COMPARE_MJS = join(HARNESS_DIR, "compare.mjs")
const FAKE_MJS = join(HARNESS_DIR, "fake-upstream.mjs")
const OPENAI_BODY = join(HARNESS_DIR, "bodies", "openai.json")

/** What the gateway case needs from `run.ts`. */
export interface GatewayContext {
  readonly repoRoot: string
  /** `--server-cmd`, or `undefined` for PolyAgent itself. */
  readonly serverCmd: string | undefined
  /** The zero-config server environment (no provider keys) for a port, data directory and admin key. */
  readonly serverEnv: (port: number, dataDir: string, adminKey: string) => Record<string, string | undefined>
  /** Server on CPU 1, everything else on CPU 0 (`run.ts` has pinned this process already). */
  readonly pinned: boolean
  readonly quick: boolean
  /** Registers a child process for `run.ts` to stop on exit, error or Ctrl-C. */
  readonly adopt: (child: Server) => void
  /** A fresh temporary directory that `run.ts` removes on the way out. */
  readonly tempDir: () => string
  readonly proceed: () => boolean
  readonly log: (line: string) => void
}

/** One side of a comparison. */
export interface LatencySide {
  readonly p50_ms: number | null
  readonly p90_ms: number | null
  readonly p99_ms: number | null
  readonly achieved_rps: number | null
  /** Measured requests that failed: socket errors, non-2xx, unfinished. */
  readonly errors: number | null
}

export interface LatencyRow extends FloorLatency {
  readonly rate_rps: number
  readonly direct: LatencySide
  readonly gateway: LatencySide
  readonly added_p50_ms: number | null
  readonly added_p90_ms: number | null
  readonly added_p99_ms: number | null
}

export interface ThroughputSide {
  readonly rps: number | null
  readonly p50_ms: number | null
  readonly p99_ms: number | null
  readonly errors: number | null
}

export interface StreamSide {
  readonly ttfb_p50_ms: number | null
  readonly ttfb_p99_ms: number | null
  readonly first_data_p50_ms: number | null
  readonly first_data_p99_ms: number | null
  readonly total_p50_ms: number | null
  readonly total_p99_ms: number | null
  /** Streams without `[DONE]`, non-200 answers and socket errors. */
  readonly incomplete: number | null
}

export interface Aim {
  readonly figure: string
  readonly value: number | null
  readonly aim: string
  readonly met: boolean | null
}

/** A request sent before (or after) the load, to show what the target answers. */
export interface Probe {
  readonly target: string
  readonly stream: boolean
  readonly status: number
  /** The first 500 characters of a non-2xx (or incomplete) answer; `null` when it was fine. */
  readonly error_body: string | null
}

/** Everything the gateway case reports; folded into the bench's JSON line as `gateway`. */
export interface GatewayFigures {
  readonly setup: {
    readonly path: string
    readonly model: string
    readonly upstream_latency_ms: number
    readonly stream_chunks: number
    readonly chunk_interval_ms: number
    readonly throughput_upstream_latency_ms: number
    readonly latency_connections: number
    readonly latency_warmup_s: number
    readonly latency_duration_s: number
    readonly throughput_duration_s: number
    readonly pinning: string
  }
  readonly latency: ReadonlyArray<LatencyRow>
  readonly throughput: FloorThroughput & {
    readonly tool: string
    readonly connections: number
    readonly direct: ThroughputSide
    readonly gateway: ThroughputSide
    /** gateway rps / direct rps. */
    readonly ratio: number | null
  }
  readonly stream: {
    readonly concurrency: number
    readonly rounds: number
    readonly direct: StreamSide
    readonly gateway: StreamSide
    readonly added_ttfb_p50_ms: number | null
    readonly added_ttfb_p99_ms: number | null
    readonly added_first_data_p50_ms: number | null
    readonly added_first_data_p99_ms: number | null
    readonly added_total_p50_ms: number | null
    readonly added_total_p99_ms: number | null
  }
  readonly aims: ReadonlyArray<Aim>
  readonly errors: {
    /** Failed measured requests through the gateway: latency (all rates), throughput, streams. */
    readonly gateway: number
    readonly direct: number
    /** HTTP statuses of every gateway request of the latency test, warm-up included. */
    readonly gateway_latency_statuses: Readonly<Record<string, number>>
    /** Test-level failures reported by `run.mjs` (e.g. `throughput_error`). */
    readonly harness: Readonly<Record<string, string>>
    /** The first non-2xx answer seen by the probes before or after the load, or `null`. */
    readonly first_error: Probe | null
  }
  readonly rss_mb: {
    readonly latency_stream_server: { readonly idle: number | null; readonly peak: number | null }
    readonly throughput_server: { readonly idle: number | null; readonly peak: number | null }
  }
  readonly startup_ms: number
  readonly loadavg: { readonly direct: ReadonlyArray<number>; readonly gateway: ReadonlyArray<number> }
  readonly elapsed_s: number
}

export interface GatewayOutcome {
  readonly figures: GatewayFigures
  /** `compare.mjs`'s markdown table, for the human-readable report. */
  readonly compareTable: string
}

type Json = Record<string, unknown>

/** Runs the whole gateway case; stops its children before it returns or throws. */
export async function gatewayCase(ctx: GatewayContext): Promise<GatewayOutcome> {
  const startedAt = performance.now()
  const children: Array<Server> = []
  const adopt = (child: Server): Server => {
    children.push(child)
    ctx.adopt(child)
    return child
  }
  const samplers: Array<RssSampler> = []
  try {
    return await measure(ctx, adopt, samplers, startedAt)
  } finally {
    for (const sampler of samplers) sampler.stop()
    await Promise.all(children.map((child) => child.stop()))
  }
}

async function measure(
  ctx: GatewayContext,
  adopt: (child: Server) => Server,
  samplers: Array<RssSampler>,
  startedAt: number
): Promise<GatewayOutcome> {
  const dir = ctx.tempDir()
  const bodyFile = join(dir, "openai.json")
  const body = { ...(JSON.parse(readFileSync(OPENAI_BODY, "utf8")) as Json), model: MODEL }
  writeFileSync(bodyFile, JSON.stringify(body))
  const cpu0 = ctx.pinned ? 0 : null
  const cpu1 = ctx.pinned ? 1 : null

  const slowFake = await startFake(adopt, UPSTREAM_LATENCY_MS, cpu0)
  const fastFake = await startFake(adopt, 0, cpu0)
  ctx.log(`gateway: fake upstreams on 127.0.0.1:${slowFake.port} (20 ms) and :${fastFake.port} (0 ms)`)

  const slowFloor = await startFloor(adopt, slowFake.port, cpu1)
  const fastFloor = await startFloor(adopt, fastFake.port, cpu1)
  ctx.log(`gateway: the floor (harness/bare-proxy.mjs) on 127.0.0.1:${slowFloor.port} and :${fastFloor.port}`)

  const adminKey = `pa_bench_${randomBytes(16).toString("hex")}`
  const serverStart = performance.now()
  const slowGw = await startGateway(ctx, adopt, slowFake.port, adminKey, cpu1)
  const fastGw = await startGateway(ctx, adopt, fastFake.port, adminKey, cpu1)
  const startupMs = performance.now() - serverStart
  ctx.log(
    `gateway: servers on 127.0.0.1:${slowGw.port} (pid ${slowGw.server.pid}) and :${fastGw.port} (pid ${fastGw.server.pid})`
  )
  const slowRss = startRssSampler(slowGw.server.pid)
  const fastRss = startRssSampler(fastGw.server.pid)
  samplers.push(slowRss, fastRss)
  const idle = { slow: slowRss.now(), fast: fastRss.now() }

  const auth = { authorization: `Bearer ${adminKey}`, "content-type": "application/json" }
  const json = { "content-type": "application/json" }
  const bodyBuf = Buffer.from(JSON.stringify(body))
  const streamBuf = Buffer.from(JSON.stringify({ ...body, stream: true }))
  const targets = {
    slowFake: target(slowFake.port, json),
    fastFake: target(fastFake.port, json),
    slowGw: target(slowGw.port, auth),
    fastGw: target(fastGw.port, auth)
  }

  const probes = await Promise.all([
    probe("gateway (20 ms upstream)", targets.slowGw, bodyBuf, false),
    probe("gateway (20 ms upstream)", targets.slowGw, streamBuf, true),
    probe("gateway (0 ms upstream)", targets.fastGw, bodyBuf, false),
    probe("fake upstream (direct)", targets.slowFake, bodyBuf, false)
  ])
  for (const p of probes)
    if (p.error_body !== null) ctx.log(`gateway: probe of ${p.target} answered ${p.status}: ${p.error_body}`)

  ctx.log("gateway: warming the servers up (1 s each)")
  await warmUp(ctx, targets.slowGw, bodyBuf, streamBuf)
  await warmUp(ctx, targets.fastGw, bodyBuf, streamBuf)

  const useHarnessThroughput =
    hasCommand("wrk") ||
    [HARNESS_DIR, ctx.repoRoot].some((dir) => existsSync(join(dir, "node_modules/.bin/autocannon")))
  const tests = useHarnessThroughput ? "latency,throughput,stream" : "latency,stream"
  const latencyDurationS = ctx.quick ? 3 : 5
  const throughputDurationS = ctx.quick ? 3 : 5
  const harnessArgs = [
    ["--path", COMPLETIONS_PATH],
    ["--body", bodyFile],
    ["--tests", tests],
    ["--rates", RATES.join(",")],
    ["--duration", latencyDurationS],
    ["--warmup", LATENCY_WARMUP_S],
    ["--connections", LATENCY_CONNECTIONS],
    ["--tput-connections", THROUGHPUT_CONNECTIONS],
    ["--tput-duration", throughputDurationS],
    ["--stream-concurrency", STREAM_CONCURRENCY],
    ["--stream-rounds", STREAM_ROUNDS],
    ...(ctx.pinned ? [["--loadgen-cpu", 0]] : [])
  ].flat()
  const plannedMs =
    RATES.length * (LATENCY_WARMUP_S + latencyDurationS + 1) * 1000 + (throughputDurationS + 1) * 1000 + 5_000

  /** One harness run against a slow (latency, stream) and a fast (throughput) target. */
  const side = (what: string, label: string, slowPort: number, fastPort: number, extra: ReadonlyArray<string> = []) => {
    ctx.log(`gateway: run.mjs --tests ${tests} ${what} (~${Math.round(plannedMs / 1000)} s)`)
    const urls = ["--url", `http://127.0.0.1:${slowPort}`, "--throughput-url", `http://127.0.0.1:${fastPort}`]
    return runHarness(ctx, adopt, label, plannedMs, [...harnessArgs, ...urls, ...extra])
  }
  const direct = await side("against the fakes directly", "direct", slowFake.port, fastFake.port)
  const floor = await side("through the floor, bare-proxy.mjs", "floor", slowFloor.port, fastFloor.port)
  const gateway = await side("through the gateway", "polyagent", slowGw.port, fastGw.port, [
    "--header",
    `Authorization: Bearer ${adminKey}`
  ])

  if (!useHarnessThroughput) {
    ctx.log(`gateway: max throughput with load.ts (no wrk or autocannon), ${throughputDurationS} s each`)
    Object.assign(direct, await nodeThroughput(ctx, targets.fastFake, bodyBuf, throughputDurationS))
    Object.assign(floor, await nodeThroughput(ctx, target(fastFloor.port, json), bodyBuf, throughputDurationS))
    Object.assign(gateway, await nodeThroughput(ctx, targets.fastGw, bodyBuf, throughputDurationS))
  }

  const directFile = join(dir, "direct.json")
  const gatewayFile = join(dir, "gateway.json")
  writeFileSync(directFile, `${JSON.stringify(direct)}\n`)
  writeFileSync(gatewayFile, `${JSON.stringify(gateway)}\n`)
  const compared = await runToEnd(ctx, adopt, [process.execPath, COMPARE_MJS, directFile, gatewayFile], 15_000)
  if (compared.code !== 0) throw new Error(`compare.mjs exited ${compared.code}: ${compared.stderr.slice(-500)}`)

  const figures = figuresOf(direct, gateway, floor, {
    tool: useHarnessThroughput ? str(gateway, "tput_tool") : "node (bench/load.ts)",
    latencyDurationS,
    throughputDurationS,
    pinned: ctx.pinned,
    startupMs
  })
  const gatewayErrors = figures.errors.gateway
  const after =
    gatewayErrors > 0
      ? await Promise.all([
          probe("gateway (20 ms upstream), after the load", targets.slowGw, bodyBuf, false),
          probe("gateway (20 ms upstream), after the load", targets.slowGw, streamBuf, true),
          probe("gateway (0 ms upstream), after the load", targets.fastGw, bodyBuf, false)
        ])
      : []
  const firstError = [...probes, ...after].find((p) => p.error_body !== null) ?? null
  return {
    figures: {
      ...figures,
      errors: { ...figures.errors, first_error: firstError },
      rss_mb: {
        latency_stream_server: { idle: idle.slow, peak: slowRss.peak() },
        throughput_server: { idle: idle.fast, peak: fastRss.peak() }
      },
      elapsed_s: Math.round((performance.now() - startedAt) / 100) / 10
    },
    compareTable: compareRows(compared.stdout)
  }
}

/**
 * `compare.mjs`'s table without the rows this case has no figures for: the many-connections test
 * is not run, and `run.mjs` gets no `--pid` (two servers take turns; RSS is sampled here instead).
 */
const compareRows = (table: string): string =>
  table
    .trim()
    .split("\n")
    .filter((line) => !/undefined conns|RSS|VmHWM/.test(line))
    .join("\n")

const target = (port: number, headers: Record<string, string>): Target => ({
  host: "127.0.0.1",
  port,
  headers,
  timeoutMs: REQUEST_TIMEOUT_MS
})

export async function startFake(
  adopt: (child: Server) => Server,
  latencyMs: number,
  cpu: number | null
): Promise<{ port: number; server: Server }> {
  const port = await freePort()
  const argv = [process.execPath, FAKE_MJS, "--host", "127.0.0.1", "--port", String(port)]
  argv.push("--latency", String(latencyMs), "--chunks", String(STREAM_CHUNKS))
  argv.push("--chunk-interval", String(CHUNK_INTERVAL_MS))
  // The fake also reads FAKE_* variables (FAKE_FAULT among them): it gets none, so it behaves as the flags say.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("FAKE_")))
  const server = adopt(startServer({ command: undefined, argv, cwd: HARNESS_DIR, env, cpu }))
  await healthy(server, port, "/healthz", `the fake upstream (${latencyMs} ms)`)
  return { port, server }
}

export async function startGateway(
  ctx: GatewayContext,
  adopt: (child: Server) => Server,
  fakePort: number,
  adminKey: string,
  cpu: number | null
): Promise<{ port: number; server: Server }> {
  const port = await freePort()
  const env = {
    ...ctx.serverEnv(port, ctx.tempDir(), adminKey),
    OPENAI_API_KEY: "bench-fake-upstream",
    OPENAI_BASE_URL: `http://127.0.0.1:${fakePort}/v1`
  }
  const server = adopt(startServer({ command: ctx.serverCmd, cwd: ctx.repoRoot, env, cpu }))
  await healthy(server, port, "/v1/health", `the server pointed at 127.0.0.1:${fakePort}`)
  return { port, server }
}

/** Waits for `GET path` to answer 200; a child that died says so with its stderr. */
async function healthy(server: Server, port: number, path: string, what: string): Promise<void> {
  try {
    await waitHealthy(server, port, STARTUP_TIMEOUT_MS, path)
  } catch (error) {
    const output = server.output()
    const said = (output.stderr || output.stdout).slice(-2_000)
    throw new Error(`${what}: ${error instanceof Error ? error.message : String(error)}\n${said}`, { cause: error })
  }
}

/** One request; a non-2xx answer (or a stream without `[DONE]`) keeps the start of its body. */
async function probe(name: string, to: Target, body: Buffer, stream: boolean): Promise<Probe> {
  const agent = new Agent({ keepAlive: false })
  try {
    const answer = await postJson(agent, to, COMPLETIONS_PATH, body, true)
    const fine = isOk(answer.status) && (!stream || answer.body.includes("[DONE]"))
    return {
      target: name,
      stream,
      status: answer.status,
      error_body: fine ? null : answer.body.slice(0, ERROR_BODY_CHARS) || "(empty body or socket error)"
    }
  } finally {
    agent.destroy()
  }
}

/** A second of closed-loop requests and a few streams, so the measured runs meet a warm JIT. */
async function warmUp(ctx: GatewayContext, to: Target, body: Buffer, stream: Buffer): Promise<void> {
  await runClosedLoop(
    { connections: WARMUP_CONNECTIONS, warmupMs: 0, durationMs: WARMUP_MS, maxRequests: 100_000, proceed: ctx.proceed },
    (agent) => postJson(agent, to, COMPLETIONS_PATH, body, false)
  )
  const agent = new Agent({ keepAlive: true, maxSockets: WARMUP_STREAMS })
  try {
    await Promise.all(
      Array.from({ length: WARMUP_STREAMS }, () => postJson(agent, to, COMPLETIONS_PATH, stream, false))
    )
  } finally {
    agent.destroy()
  }
}

/** Max throughput without `wrk`: 64 keep-alive connections, closed loop, from this process. */
async function nodeThroughput(ctx: GatewayContext, to: Target, body: Buffer, durationS: number): Promise<Json> {
  const run = await runClosedLoop(
    {
      connections: THROUGHPUT_CONNECTIONS,
      warmupMs: 1_000,
      durationMs: durationS * 1000,
      maxRequests: 2_000_000,
      proceed: ctx.proceed
    },
    (agent) => postJson(agent, to, COMPLETIONS_PATH, body, false)
  )
  const ok = run.samples.filter((s) => isOk(s.status))
  const latency = summarize(ok.map((s) => s.totalMs))
  return {
    tput_rps: Math.round((ok.length / (run.windowMs / 1000)) * 10) / 10,
    tput_p50_ms: latency.p50,
    tput_p99_ms: latency.p99,
    tput_errors: run.samples.length - ok.length,
    tput_tool: "node (bench/load.ts)",
    tput_connections: THROUGHPUT_CONNECTIONS
  }
}

/** `run.mjs` with `args`; its progress table goes to stderr, its JSON line is returned. */
export async function runHarness(
  ctx: GatewayContext,
  adopt: (child: Server) => Server,
  label: string,
  plannedMs: number,
  args: ReadonlyArray<string | number>
): Promise<Json> {
  const argv = [process.execPath, RUN_MJS, "--label", label, ...args.map(String)]
  const result = await runToEnd(ctx, adopt, argv, plannedMs + HARNESS_SLACK_MS)
  const lines = result.stdout.trim().split("\n")
  const last = lines.at(-1) ?? ""
  if (result.code !== 0 || !last.startsWith("{"))
    throw new Error(`run.mjs (${label}) exited ${result.code}: ${(result.stderr || result.stdout).slice(-1_000)}`)
  process.stderr.write(`${lines.slice(0, -1).join("\n")}\n`)
  if (result.stderr.trim() !== "") process.stderr.write(`[run.mjs ${label}] ${result.stderr.trim()}\n`)
  return JSON.parse(last) as Json
}

/** Runs a child in a process group of its own to the end; stops the group after `timeoutMs`. */
async function runToEnd(
  ctx: GatewayContext,
  adopt: (child: Server) => Server,
  argv: ReadonlyArray<string>,
  timeoutMs: number
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = adopt(
    startServer({ command: undefined, argv, group: true, cwd: HARNESS_DIR, env: { ...process.env }, cpu: null })
  )
  const timedOut = sleep(timeoutMs, "timeout" as const, { ref: false })
  const ended = await Promise.race([child.exited, timedOut])
  if (ended === "timeout") {
    await child.stop()
    throw new Error(`${argv.slice(1, 2).join(" ")} did not finish within ${timeoutMs / 1000} s`)
  }
  if (!ctx.proceed()) throw new Error("interrupted")
  const output = child.output()
  return { code: ended, stdout: output.stdout, stderr: output.stderr }
}

function figuresOf(
  d: Json,
  g: Json,
  f: Json,
  run: { tool: string; latencyDurationS: number; throughputDurationS: number; pinned: boolean; startupMs: number }
): Omit<GatewayFigures, "rss_mb" | "elapsed_s"> {
  const latency = RATES.map((rate): LatencyRow => {
    const side = (j: Json): LatencySide => ({
      p50_ms: num(j, `lat${rate}_p50_ms`),
      p90_ms: num(j, `lat${rate}_p90_ms`),
      p99_ms: num(j, `lat${rate}_p99_ms`),
      achieved_rps: num(j, `lat${rate}_achieved_rps`),
      errors: num(j, `lat${rate}_errors`)
    })
    const direct = side(d)
    const gateway = side(g)
    return {
      rate_rps: rate,
      direct,
      gateway,
      ...floorLatency(side(f), gateway),
      added_p50_ms: delta(direct.p50_ms, gateway.p50_ms),
      added_p90_ms: delta(direct.p90_ms, gateway.p90_ms),
      added_p99_ms: delta(direct.p99_ms, gateway.p99_ms)
    }
  })
  const tput = (j: Json): ThroughputSide => ({
    rps: num(j, "tput_rps"),
    p50_ms: num(j, "tput_p50_ms"),
    p99_ms: num(j, "tput_p99_ms"),
    errors: num(j, "tput_errors")
  })
  const throughput = {
    tool: run.tool,
    connections: THROUGHPUT_CONNECTIONS,
    direct: tput(d),
    gateway: tput(g),
    ratio: ratioOf(num(d, "tput_rps"), num(g, "tput_rps")),
    ...floorThroughput(tput(f), tput(g))
  }
  const streamSide = (j: Json): StreamSide => ({
    ttfb_p50_ms: num(j, "stream_ttfb_p50_ms"),
    ttfb_p99_ms: num(j, "stream_ttfb_p99_ms"),
    first_data_p50_ms: num(j, "stream_first_event_p50_ms"),
    first_data_p99_ms: num(j, "stream_first_event_p99_ms"),
    total_p50_ms: num(j, "stream_total_p50_ms"),
    total_p99_ms: num(j, "stream_total_p99_ms"),
    incomplete: num(j, "stream_incomplete")
  })
  const sd = streamSide(d)
  const sg = streamSide(g)
  const stream = {
    concurrency: STREAM_CONCURRENCY,
    rounds: STREAM_ROUNDS,
    direct: sd,
    gateway: sg,
    added_ttfb_p50_ms: delta(sd.ttfb_p50_ms, sg.ttfb_p50_ms),
    added_ttfb_p99_ms: delta(sd.ttfb_p99_ms, sg.ttfb_p99_ms),
    added_first_data_p50_ms: delta(sd.first_data_p50_ms, sg.first_data_p50_ms),
    added_first_data_p99_ms: delta(sd.first_data_p99_ms, sg.first_data_p99_ms),
    added_total_p50_ms: delta(sd.total_p50_ms, sg.total_p50_ms),
    added_total_p99_ms: delta(sd.total_p99_ms, sg.total_p99_ms)
  }
  const at1000 = latency.find((row) => row.rate_rps === 1000)?.added_p99_ms ?? null
  const aims: ReadonlyArray<Aim> = [
    aim("added p99 @1000 rps (ms)", at1000, "<= 5", (x) => x <= 5),
    aim("gateway max throughput, 0 ms upstream (rps)", throughput.gateway.rps, ">= 10000", (x) => x >= 10_000),
    aim("stream TTFB (headers) added, p50 (ms)", stream.added_ttfb_p50_ms, "<= 2", (x) => x <= 2),
    aim("stream first data event added, p50 (ms)", stream.added_first_data_p50_ms, "<= 2", (x) => x <= 2)
  ]
  const failures = (j: Json): number =>
    RATES.reduce((sum, rate) => sum + (num(j, `lat${rate}_errors`) ?? 0), 0) +
    (num(j, "tput_errors") ?? 0) +
    (num(j, "stream_incomplete") ?? 0)
  const harness: Record<string, string> = {}
  for (const [side, j] of [
    ["direct", d],
    ["gateway", g]
  ] as const)
    for (const test of ["latency", "throughput", "stream"]) {
      const message = j[`${test}_error`]
      if (typeof message === "string") harness[`${side}_${test}`] = message
    }
  return {
    setup: {
      path: COMPLETIONS_PATH,
      model: MODEL,
      upstream_latency_ms: UPSTREAM_LATENCY_MS,
      stream_chunks: STREAM_CHUNKS,
      chunk_interval_ms: CHUNK_INTERVAL_MS,
      throughput_upstream_latency_ms: 0,
      latency_connections: LATENCY_CONNECTIONS,
      latency_warmup_s: LATENCY_WARMUP_S,
      latency_duration_s: run.latencyDurationS,
      throughput_duration_s: run.throughputDurationS,
      pinning: run.pinned
        ? "server on CPU 1; fake upstreams, load generators and the bench on CPU 0"
        : "no CPU pinning (taskset or a second CPU missing)"
    },
    latency,
    throughput,
    stream,
    aims,
    errors: {
      gateway: failures(g),
      direct: failures(d),
      gateway_latency_statuses: latencyStatuses(g),
      harness,
      first_error: null
    },
    startup_ms: Math.round(run.startupMs),
    loadavg: { direct: loadavgOf(d), gateway: loadavgOf(g) }
  }
}

function aim(figure: string, value: number | null, text: string, met: (x: number) => boolean): Aim {
  return { figure, value, aim: text, met: value === null ? null : met(value) }
}

/** Sums the `statuses` of every latency run in `run.mjs`'s raw `runs`. */
function latencyStatuses(j: Json): Record<string, number> {
  const counts: Record<string, number> = {}
  const runs = j["runs"]
  if (typeof runs !== "object" || runs === null) return counts
  for (const [key, reps] of Object.entries(runs)) {
    if (!key.startsWith("latency_") || !Array.isArray(reps)) continue
    for (const rep of reps as ReadonlyArray<unknown>) {
      const statuses = typeof rep === "object" && rep !== null ? (rep as Json)["statuses"] : undefined
      if (typeof statuses !== "object" || statuses === null) continue
      for (const [status, count] of Object.entries(statuses))
        if (typeof count === "number") counts[status] = (counts[status] ?? 0) + count
    }
  }
  return counts
}

const firstNumber = (x: unknown): number | null => (Array.isArray(x) && typeof x[0] === "number" ? x[0] : null)

function loadavgOf(j: Json): ReadonlyArray<number> {
  const start = j["loadavg_start"]
  const end = j["loadavg_end"]
  return [firstNumber(start), firstNumber(end)].flatMap((x) => (x === null ? [] : [x]))
}

const num = (j: Json, key: string): number | null => {
  const value = j[key]
  return typeof value === "number" && Number.isFinite(value) ? value : null
}
const str = (j: Json, key: string): string => {
  const value = j[key]
  return typeof value === "string" ? value : "unknown"
}
const round2 = (x: number): number => Math.round(x * 100) / 100
const delta = (direct: number | null, gateway: number | null): number | null =>
  direct === null || gateway === null ? null : round2(gateway - direct)
const ratioOf = (direct: number | null, gateway: number | null): number | null =>
  direct === null || gateway === null || direct === 0 ? null : Math.round((gateway / direct) * 1000) / 1000
