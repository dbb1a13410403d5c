/**
 * `npm run bench`: throughput, latency and memory of the PolyAgent HTTP edge on this machine.
 *
 * Starts the server (`node packages/http/dist/bin.js`, built by `npm run bench` first) on a free 127.0.0.1 port with a fresh data
 * directory, a random bootstrap admin key and no config file or provider keys, so it answers with
 * the offline `local` model and the figures are the gateway's own cost, not a provider's. With
 * `taskset`, the server runs on CPU 1 and this load generator on CPU 0. Then, each scenario after
 * a warm-up, with a fixed number of keep-alive connections that each send the next request as soon
 * as the last one is answered (closed loop):
 *
 * - chat_new: `POST /v1/chat`, a new session per request (32 connections).
 * - chat_session: `POST /v1/chat` naming one of 64 sessions created first, round-robin (32
 *   connections). Turns on one session are serialised by the server, and the history grows all
 *   run long, so this is the session actor path with history.
 * - stream: `POST /v1/chat/stream` (16 connections): time to the first byte of the event stream
 *   and to the end of its `event: done`.
 * - gateway: `POST /v1/chat/completions` through the OpenAI provider to the shared harness's fake
 *   upstream, against calling the fake directly and through the floor (`harness/bare-proxy.mjs`) in
 *   the same run (`gateway.ts`, `floor.ts`): added latency at 100/200/500/1000 requests/s, max
 *   throughput (also as a ratio to the floor), streaming time to first byte. This case starts its
 *   own servers (with `OPENAI_API_KEY` and `OPENAI_BASE_URL`), after the zero-config one is stopped.
 * - conns: 10,000 concurrent requests to a 5 s upstream through one server (`conns.ts`): how many
 *   are served, and the server's peak RSS.
 *
 * Reading it: req/s (streams/s) is the server's capacity at that concurrency, counting 2xx answers
 * only; the percentiles are per request, from send to the last byte. Non-2xx answers, socket
 * errors and timeouts are "errors" and make the other figures meaningless until they are zero.
 * RSS is the server's resident memory: idle 3 s after start, the highest 100 ms sample under load,
 * and at the end. Compare figures from runs on the same machine only; on 2 cores other busy
 * processes show up as noise. The output is a table, then ONE line of JSON with every figure.
 *
 * With `--postgres`, the zero-config server stores in PostgreSQL (a schema of the bench's own,
 * dropped at the end) instead of the embedded SQLite database; the gateway case is unchanged.
 *
 *   npm run bench [-- --quick] [-- --duration 20] [-- --server-cmd "node other-server.mjs"]
 *                 [-- --only gateway,conns] [-- --skip gateway] [-- --postgres [URL]]
 */
import { spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { parseArgs } from "node:util"
import { CONNS, type ConnsFigures, connsCase } from "./conns.ts"
import { COMPLETIONS_PATH, type GatewayContext, type GatewayFigures, gatewayCase } from "./gateway.ts"
import type { Target } from "./load.ts"
import { type BenchSchema, createBenchSchema, DEFAULT_POSTGRES_URL } from "./postgres.ts"
import { type Failed, renderReport, type Results } from "./report.ts"
import { type RssSampler, startRssSampler } from "./rss.ts"
import { type Bench, chatNew, chatSession, stream } from "./scenarios.ts"
import { freePort, hasCommand, type Server, ServerExited, startScript, startServer, waitHealthy } from "./server.ts"

const CHAT_CONNECTIONS = 32
const STREAM_CONNECTIONS = 16
const SESSIONS = 64
const WARMUP_S = 2
const DURATION_S = 8
const STARTUP_TIMEOUT_MS = 30_000
const REQUEST_TIMEOUT_MS = 30_000
const SETTLE_MS = 1_000
/**
 * Idle RSS is read this long after the first 200 of `/v1/health`, with no traffic before: by then
 * the garbage of start-up is returned (3 s after, it still counts ~15-30 MB, more with a larger
 * young generation).
 */
const IDLE_AFTER_MS = 10_000
const PAUSE_MS = 500
const DEFAULT_SERVER = startScript
const REPO_ROOT = resolve(import.meta.dirname, "..")

/**
 * Settings the bench does not pass on: it measures the zero-config server (embedded storage, `local`
 * model), with only `bench/polyagent.bench.yaml` as configuration. The gateway case adds exactly
 * `OPENAI_API_KEY` and `OPENAI_BASE_URL` (its fake upstream).
 */
const WITHHELD_ENV = [
  "POLYAGENT_CONFIG",
  "POSTGRES_URL",
  "REDIS_URL",
  ...["OPENAI", "ANTHROPIC", "OPENROUTER", "GLM"].flatMap((p) => [`${p}_API_KEY`, `${p}_BASE_URL`])
]

const SCENARIOS = ["chat_new", "chat_session", "stream", "gateway", "conns"] as const
/** The cases that start servers of their own, with a provider pointed at a fake upstream. */
const UPSTREAM_CASES: ReadonlyArray<Scenario> = ["gateway", "conns"]
type Scenario = (typeof SCENARIOS)[number]

const USAGE = `usage: node bench/run.ts [--quick] [--duration SECONDS] [--server-cmd "COMMAND"]
                         [--only NAMES] [--skip NAMES]
  --quick           halve warm-up and duration (${WARMUP_S / 2} s + ${DURATION_S / 2} s per scenario);
                    the gateway case measures 3 s per rate instead of 5 s
  --duration N      measured seconds per scenario (1-600; default ${DURATION_S}); not the gateway case
  --server-cmd CMD  start CMD instead of "${DEFAULT_SERVER}" (run as: sh -c "exec CMD", cwd = repo root)
  --only NAMES      run only these scenarios (comma-separated: ${SCENARIOS.join(", ")})
  --skip NAMES      run all scenarios but these
  --postgres [URL]  the zero-config server on PostgreSQL: a schema of its own in the database at URL
                    (default ${DEFAULT_POSTGRES_URL}), dropped at the end
  --workers N       with --postgres: N server processes sharing the port (server.workers), not pinned
                    to a CPU when N > 1; CPU figures are those of all of them`

interface Options {
  readonly warmupS: number
  readonly durationS: number
  readonly serverCmd: string | undefined
  readonly quick: boolean
  readonly scenarios: ReadonlyArray<Scenario>
  /** The PostgreSQL database for the zero-config server, or `undefined` for the embedded one. */
  readonly postgresUrl: string | undefined
  /** `server.workers` of the zero-config server (PostgreSQL only). */
  readonly workers: number
}

/** What the bench has to give back on the way out, however it ends. */
const owned: {
  readonly servers: Array<Server>
  readonly dirs: Array<string>
  readonly samplers: Array<RssSampler>
  readonly schemas: Array<BenchSchema>
  interrupted?: boolean
} = { servers: [], dirs: [], samplers: [], schemas: [] }

const interrupted = (): boolean => owned.interrupted === true

const log = (line: string): void => {
  process.stderr.write(`[bench] ${line}\n`)
}

function parseOptions(argv: ReadonlyArray<string>): Options {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: "boolean", default: false },
      duration: { type: "string" },
      "server-cmd": { type: "string" },
      only: { type: "string", multiple: true },
      skip: { type: "string", multiple: true },
      postgres: { type: "boolean", default: false },
      workers: { type: "string", default: "1" },
      help: { type: "boolean", short: "h", default: false }
    },
    strict: true,
    // The one positional: the URL after --postgres.
    allowPositionals: true
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  const durationS =
    values.duration === undefined ? (values.quick ? DURATION_S / 2 : DURATION_S) : Number(values.duration)
  if (!Number.isFinite(durationS) || durationS < 1 || durationS > 600)
    throw new Error("--duration: expected 1-600 seconds")
  const only = scenarioList("--only", values.only)
  const skip = scenarioList("--skip", values.skip)
  const scenarios = SCENARIOS.filter((name) => (only.length === 0 || only.includes(name)) && !skip.includes(name))
  if (scenarios.length === 0) throw new Error("--only/--skip: no scenario left to run")
  if (positionals.length > (values.postgres ? 1 : 0)) throw new Error(`unexpected argument "${positionals.at(-1)}"`)
  const workers = Number(values.workers)
  if (!Number.isInteger(workers) || workers < 1 || workers > 16) throw new Error("--workers: expected 1-16")
  if (workers > 1 && !values.postgres) throw new Error("--workers: more than one needs --postgres")
  return {
    workers,
    postgresUrl: values.postgres ? (positionals[0] ?? DEFAULT_POSTGRES_URL) : undefined,
    warmupS: values.quick ? WARMUP_S / 2 : WARMUP_S,
    durationS,
    serverCmd: values["server-cmd"],
    quick: values.quick,
    scenarios
  }
}

/** `--only a,b --only c` as scenario names; an unknown name is an error. */
function scenarioList(flag: string, values: ReadonlyArray<string> | undefined): Array<Scenario> {
  const names = (values ?? []).flatMap((value) => value.split(",")).map((name) => name.trim())
  return names
    .filter((name) => name !== "")
    .map((name) => {
      const known = SCENARIOS.find((scenario) => scenario === name)
      if (known === undefined) throw new Error(`${flag}: unknown scenario "${name}" (${SCENARIOS.join(", ")})`)
      return known
    })
}

/** Bad arguments: the message and the usage, exit status 2. */
function parseOptionsOrExit(argv: ReadonlyArray<string>): Options {
  try {
    return parseOptions(argv)
  } catch (error) {
    process.stderr.write(`${messageOf(error)}\n${USAGE}\n`)
    process.exit(2)
  }
}

/** Pins this process (all its threads) to CPU 0 so the server can have CPU 1 to itself. */
function pinLoadGenerator(): { server_cpu: number; loadgen_cpu: number } | null {
  if (cpus().length < 2 || !hasCommand("taskset")) return null
  const pinned = spawnSync("taskset", ["-a", "-p", "-c", "0", String(process.pid)], { stdio: "ignore" })
  return pinned.status === 0 ? { server_cpu: 1, loadgen_cpu: 0 } : null
}

function serverEnv(port: number, dataDir: string, adminKey: string): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env }
  for (const name of WITHHELD_ENV) delete env[name]
  return {
    ...env,
    GATEWAY_PORT: String(port),
    GATEWAY_HOST: "127.0.0.1",
    POLYAGENT_DATA_DIR: dataDir,
    POLYAGENT_ADMIN_KEY: adminKey,
    POLYAGENT_CONFIG: resolve(REPO_ROOT, "bench/polyagent.bench.yaml")
  }
}

/** Ctrl-C or SIGTERM arrived: the signal handler cleans up and exits, nothing is reported. */
class Interrupted extends Error {}

/**
 * Runs one scenario; its failure becomes `{ error }` unless the server itself is gone (`alive`
 * false) or the bench was interrupted.
 */
async function attempt<F>(name: string, alive: () => boolean, run: () => Promise<F>): Promise<F | Failed> {
  if (interrupted()) throw new Interrupted()
  log(name)
  try {
    const figures = await run()
    if (interrupted()) throw new Interrupted()
    if (!alive()) throw new ServerExited(`the server exited during ${name}`)
    await sleep(PAUSE_MS)
    return figures
  } catch (error) {
    if (interrupted()) throw new Interrupted()
    if (error instanceof ServerExited || error instanceof Interrupted || !alive()) throw error
    log(`${name} failed: ${messageOf(error)}`)
    return { error: messageOf(error) }
  }
}

/** A fresh temporary directory, removed on the way out. */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "polyagent-bench-"))
  owned.dirs.push(dir)
  return dir
}

type LocalResults = Pick<Results, "chat_new" | "chat_session" | "stream" | "rss_mb" | "startup_ms">

const SKIPPED_LOCAL: LocalResults = {
  chat_new: null,
  chat_session: null,
  stream: null,
  rss_mb: { idle: null, peak: null, end: null, hwm: null },
  startup_ms: null
}

async function main(options: Options): Promise<{ results: Results; gatewayTable: string }> {
  const pinned = pinLoadGenerator()
  const label = options.serverCmd ?? DEFAULT_SERVER
  const local = options.scenarios.some((name) => !UPSTREAM_CASES.includes(name))
    ? await runLocal(options, label, pinned !== null)
    : SKIPPED_LOCAL
  const context: GatewayContext = {
    repoRoot: REPO_ROOT,
    serverCmd: options.serverCmd,
    serverEnv,
    pinned: pinned !== null,
    quick: options.quick,
    adopt: (child) => owned.servers.push(child),
    tempDir,
    proceed: () => !interrupted(),
    log
  }
  let gateway: GatewayFigures | Failed | null = null
  let gatewayTable = ""
  if (options.scenarios.includes("gateway")) {
    const outcome = await attempt(
      `gateway: ${COMPLETIONS_PATH} via the openai provider to a fake upstream, vs the floor and the fake directly`,
      () => true,
      () => gatewayCase(context)
    )
    gateway = "error" in outcome ? outcome : outcome.figures
    gatewayTable = "error" in outcome ? "" : outcome.compareTable
  }
  const conns: ConnsFigures | Failed | null = options.scenarios.includes("conns")
    ? await attempt(
        `conns: ${CONNS} concurrent requests to a 5 s upstream through one server`,
        () => true,
        () => connsCase(context, openFileLimit())
      )
    : null
  const results: Results = {
    scenarios: options.scenarios,
    ...local,
    gateway,
    conns,
    server: label,
    storage: options.postgresUrl === undefined ? "sqlite" : "postgresql",
    workers: options.workers,
    pinned,
    warmup_s: options.warmupS,
    duration_s: options.durationS,
    node: process.version,
    cpus: cpus().length
  }
  return { results, gatewayTable }
}

/** The zero-config server and the scenarios that use it; the server is stopped at the end. */
async function runLocal(options: Options, label: string, pinned: boolean): Promise<LocalResults> {
  const port = await freePort()
  const adminKey = `pa_bench_${randomBytes(16).toString("hex")}`
  const dataDir = tempDir()
  const schema = options.postgresUrl === undefined ? undefined : await createBenchSchema(options.postgresUrl)
  if (schema !== undefined) {
    owned.schemas.push(schema)
    log(`PostgreSQL: schema ${schema.name}`)
  }
  // Several workers get both CPUs: pinned to one, they could not scale at all.
  const pinServer = pinned && options.workers === 1
  const workers = options.workers === 1 ? "" : `, ${options.workers} workers on every CPU`
  log(`starting ${label} on 127.0.0.1:${port}${pinServer ? " (CPU 1; load generator on CPU 0)" : ""}${workers}`)
  const env = { ...serverEnv(port, dataDir, adminKey), POLYAGENT_WORKERS: String(options.workers) }
  const server = startServer({
    command: options.serverCmd,
    cwd: REPO_ROOT,
    env: schema === undefined ? env : { ...env, POSTGRES_URL: schema.serverUrl },
    cpu: pinServer ? 1 : null
  })
  owned.servers.push(server)
  log(`server pid ${server.pid}`)
  const startupMs = await waitHealthy(server, port, STARTUP_TIMEOUT_MS)
  const rss = startRssSampler(server.pid)
  owned.samplers.push(rss)
  await sleep(IDLE_AFTER_MS)
  const idle = rss.now()
  const target: Target = {
    host: "127.0.0.1",
    port,
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    timeoutMs: REQUEST_TIMEOUT_MS
  }
  const bench: Bench = {
    target,
    warmupMs: options.warmupS * 1000,
    durationMs: options.durationS * 1000,
    proceed: () => server.alive() && !interrupted(),
    rss,
    pid: server.pid
  }
  const each = `${options.warmupS} s warm-up + ${options.durationS} s`
  const runs = (name: Scenario) => options.scenarios.includes(name)
  const alive = () => server.alive()
  const chat_new = runs("chat_new")
    ? await attempt(`chat_new: ${CHAT_CONNECTIONS} connections, ${each}`, alive, () => chatNew(bench, CHAT_CONNECTIONS))
    : null
  const chat_session = runs("chat_session")
    ? await attempt(`chat_session: ${SESSIONS} sessions, ${CHAT_CONNECTIONS} connections, ${each}`, alive, () =>
        chatSession(bench, CHAT_CONNECTIONS, SESSIONS)
      )
    : null
  const streamed = runs("stream")
    ? await attempt(`stream: ${STREAM_CONNECTIONS} connections, ${each}`, alive, () =>
        stream(bench, STREAM_CONNECTIONS)
      )
    : null
  await sleep(SETTLE_MS)
  const rss_mb = { idle, peak: rss.peak(), end: rss.now(), hwm: rss.highWater() }
  rss.stop()
  await server.stop()
  return { chat_new, chat_session, stream: streamed, rss_mb, startup_ms: Math.round(startupMs) }
}

/** This shell's `ulimit -n`, which the server inherits. */
const openFileLimit = (): string => spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).stdout.trim()

/** Stops the samplers and every child, removes the temporary directories; safe to call more than once. */
async function cleanup(): Promise<void> {
  for (const sampler of owned.samplers) sampler.stop()
  await Promise.all(owned.servers.map((server) => server.stop()))
  removeDirs()
  // After the servers: a running server would hold the schema's tables.
  const schemas = owned.schemas.splice(0)
  await Promise.all(
    schemas.map((schema) =>
      schema.drop().catch((error: unknown) => log(`could not drop schema ${schema.name}: ${messageOf(error)}`))
    )
  )
}

function removeDirs(): void {
  for (const dir of owned.dirs) rmSync(dir, { recursive: true, force: true })
}

/** Ctrl-C and SIGTERM stop the children first; a second signal, or any exit, kills them outright. */
function installCleanup(): void {
  process.on("exit", () => {
    for (const server of owned.servers) server.kill()
    removeDirs()
  })
  let signalled = false
  const onSignal = (code: number) => () => {
    if (signalled) process.exit(code)
    signalled = true
    owned.interrupted = true
    log("interrupted: stopping the server and the other children")
    void cleanup().finally(() => process.exit(code))
  }
  process.on("SIGINT", onSignal(130))
  process.on("SIGTERM", onSignal(143))
}

function reportFailure(error: unknown): void {
  log(`failed: ${messageOf(error)}`)
  const output = owned.servers[0]?.output()
  if (output === undefined) return
  if (output.stderr !== "") process.stderr.write(`--- server stderr (last 64 KiB) ---\n${output.stderr}\n`)
  else if (output.stdout !== "")
    process.stderr.write(`--- server stdout (last 64 KiB; stderr was empty) ---\n${output.stdout}\n`)
  else process.stderr.write("--- the server wrote nothing ---\n")
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

installCleanup()
const options = parseOptionsOrExit(process.argv.slice(2))
try {
  const { results, gatewayTable } = await main(options)
  console.log(renderReport(results, gatewayTable))
  console.log(JSON.stringify(results))
} catch (error) {
  if (!interrupted()) reportFailure(error)
  process.exitCode = 1
} finally {
  await cleanup()
}
