/**
 * End-to-end harness: runs the real server (`npm start`, i.e. `node packages/http/dist/bin.js`,
 * which the e2e project's global setup builds) as a child process on a free port with its own
 * data directory and admin key, talks to it over a real socket with the global `fetch`, reads its
 * SSE streams, and gives each PostgreSQL run a schema of its own. Nothing here knows the server's internals.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { once } from "node:events"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { get as httpsGet } from "node:https"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"

/** The monorepo root: `npm start` runs from here (and reads `config/polyagent.yaml` there). */
export const repoRoot = resolve(import.meta.dirname, "../..")

/** The database of the PostgreSQL runs (trust auth); each run adds its own `search_path`. */
export const postgresBaseUrl = "postgres://postgres@127.0.0.1:5432/test"

/** A new admin key of the shape the server accepts: `pa_` and 40 random characters. */
export const newAdminKey = (): string => `pa_${randomBytes(30).toString("base64url").slice(0, 40)}`

/** A port nobody listens on right now (listen on 0, read the port, close). */
export const freePort = async (): Promise<number> => {
  const server = createServer()
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  const address = server.address()
  server.close()
  await once(server, "close")
  if (address === null || typeof address === "string") throw new Error("no TCP address for a free port")
  return address.port
}

// ---------------------------------------------------------------------------------------------
// Processes

/** How a process ended, with everything it printed. */
export interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

interface Running {
  readonly child: ChildProcess
  readonly exited: Promise<Exited>
  readonly output: { stdout: string; stderr: string }
}

/** The server's environment: ours, minus every setting the harness decides itself. */
const baseEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined) env[name] = value
  }
  for (const name of ["POSTGRES_URL", "REDIS_URL", "POLYAGENT_CONFIG", "POLYAGENT_ADMIN_KEY", "GATEWAY_HOST"]) {
    delete env[name]
  }
  return env
}

/** What `npm start` runs, relative to {@link repoRoot}. */
const serverEntry = "packages/http/dist/bin.js"

const spawnServer = (env: Readonly<Record<string, string>>): Running => {
  const child = spawn(process.execPath, [serverEntry], {
    cwd: repoRoot,
    env: { ...baseEnv(), ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const output = { stdout: "", stderr: "" }
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    output.stdout += chunk
  })
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    output.stderr += chunk
  })
  const exited = new Promise<Exited>((resolveExit, reject) => {
    child.once("error", reject)
    child.once("close", (code, signal) => resolveExit({ code, signal, ...output }))
  })
  return { child, exited, output }
}

/**
 * Runs `npm start` with `env` (nothing else set but the inherited environment) until it
 * exits; for start-up failures. Killed, and rejected, after `timeoutMs`.
 */
export const runUntilExit = async (env: Readonly<Record<string, string>>, timeoutMs = 15_000): Promise<Exited> => {
  const running = spawnServer(env)
  const timer = setTimeout(() => running.child.kill("SIGKILL"), timeoutMs)
  try {
    const exited = await running.exited
    if (exited.signal === "SIGKILL") throw new Error(`server did not exit within ${timeoutMs} ms:\n${exited.stderr}`)
    return exited
  } finally {
    clearTimeout(timer)
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/** An answer of the server: status, headers, raw text and the JSON body when there is one. */
export interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: unknown
}

/** Per-request options: extra headers, and the bearer token (`null` for none; the admin key by default). */
export interface RequestOptions {
  readonly headers?: Readonly<Record<string, string>>
  readonly token?: string | null
  readonly signal?: AbortSignal
}

const toAnswer = async (response: Response): Promise<Answer> => {
  const text = await response.text()
  let json: unknown
  try {
    json = text === "" ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.status, headers: response.headers, text, json }
}

/** The error envelope of every failure (../shared/API.md). */
export const ErrorEnvelope = Schema.Struct({
  error: Schema.Struct({ type: Schema.String, message: Schema.String, request_id: Schema.String })
})
export type ErrorEnvelope = typeof ErrorEnvelope.Type

/** A stack frame such as `at run (/app/src/x.ts:12:5)` or `at node:internal/…`, in plain or JSON-escaped text. */
export const STACK_FRAME = /\bat\s+(?:\S.*)?(?:\.[cm]?[jt]s:\d+|node:internal|<anonymous>)/

/** Decodes `value` with `schema`, throwing a readable error (test failure) when it does not fit. */
export const decode = <S extends Schema.Codec<unknown, unknown>>(schema: S, value: unknown): S["Type"] =>
  Schema.decodeUnknownSync(schema)(value)

/** Requests to one server, with `token` as bearer unless a request says otherwise. */
export interface Client {
  /** Any request; a `ReadableStream` body is sent chunked. */
  readonly request: (
    method: string,
    path: string,
    body?: RequestInit["body"],
    options?: RequestOptions
  ) => Promise<Answer>
  /** POST with a JSON body (a string is sent as it is, so malformed JSON can be sent too). */
  readonly post: (path: string, body: unknown, options?: RequestOptions) => Promise<Answer>
  readonly get: (path: string, options?: RequestOptions) => Promise<Answer>
  readonly del: (path: string, options?: RequestOptions) => Promise<Answer>
  /** POST a JSON body and answer the raw response, for SSE (read it with {@link sseEvents}). */
  readonly stream: (path: string, body: unknown, options?: RequestOptions) => Promise<Response>
}

const jsonBody = (body: unknown, options: RequestOptions): [string, RequestOptions] => [
  typeof body === "string" ? body : JSON.stringify(body),
  { ...options, headers: { "content-type": "application/json", ...options.headers } }
]

/** A {@link Client} of the server at `baseUrl` (a function, since a restarted server has a new port). */
export const makeClient = (baseUrl: string | (() => string), token: string): Client => {
  const urlOf = (path: string) => `${typeof baseUrl === "string" ? baseUrl : baseUrl()}${path}`
  const send = (method: string, path: string, body: RequestInit["body"] | undefined, options: RequestOptions) => {
    const headers = new Headers(options.headers)
    const bearer = options.token === undefined ? token : options.token
    if (bearer !== null) headers.set("authorization", `Bearer ${bearer}`)
    return fetch(urlOf(path), {
      method,
      headers,
      ...(body === undefined || body === null ? {} : { body }),
      // A stream body goes out chunked (no Content-Length); fetch requires half duplex for it.
      ...(body instanceof ReadableStream ? { duplex: "half" as const } : {}),
      ...(options.signal === undefined ? {} : { signal: options.signal })
    })
  }
  return {
    request: (method, path, body, options = {}) => send(method, path, body, options).then(toAnswer),
    post: (path, body, options = {}) => send("POST", path, ...jsonBody(body, options)).then(toAnswer),
    get: (path, options = {}) => send("GET", path, undefined, options).then(toAnswer),
    del: (path, options = {}) => send("DELETE", path, undefined, options).then(toAnswer),
    stream: (path, body, options = {}) => send("POST", path, ...jsonBody(body, options))
  }
}

// ---------------------------------------------------------------------------------------------
// A running gateway

/**
 * A configuration (for {@link StartOptions.config}) under which no circuit breaker opens: for
 * tests that make an upstream fail on purpose again and again and check each answer.
 */
export const withoutBreakers = "resilience:\n  breaker:\n    consecutive_failures: 100000\n    min_requests: 100000\n"

/** {@link withoutBreakers}, and one attempt per call: every failure a test provokes is answered as it is. */
export const withoutResilience = `${withoutBreakers}  retry:\n    max_attempts: 1\n`

/** Options of {@link Gateway.start}. */
export interface StartOptions {
  /** PostgreSQL instead of the embedded database (a URL from {@link createPgSchema}). */
  readonly postgresUrl?: string
  /** More environment variables (e.g. `POLYAGENT_CONFIG`). */
  readonly env?: Readonly<Record<string, string>>
  /** A configuration file's YAML: written in the data directory and named by `POLYAGENT_CONFIG`. */
  readonly config?: string
  /** The admin key (several processes of one cluster share theirs); a new one by default. */
  readonly adminKey?: string
  /** What `start` waits for: `GET /v1/health` answering 200 (the default), or answering at all. */
  readonly until?: "healthy" | "listening"
  /** The PEM certificate to trust when the server speaks HTTPS (`server.tls`); plain HTTP without it. */
  readonly ca?: string
}

/** The status of `GET url` over HTTPS trusting `ca` (a self-signed test certificate), or `undefined` when it failed. */
const httpsStatus = (url: string, ca: string): Promise<number | undefined> =>
  new Promise((resolveStatus) => {
    const request = httpsGet(url, { ca, timeout: 1_000 }, (response) => {
      response.resume()
      resolveStatus(response.statusCode)
    })
    request.on("timeout", () => request.destroy())
    request.on("error", () => resolveStatus(undefined))
  })

/**
 * The real server as a child process. `start` waits until `GET /v1/health` answers 200;
 * `restart` stops it and starts it again on the same data (directory or PostgreSQL schema)
 * and admin key; `stop` sends SIGTERM and awaits the exit (SIGKILL after 10 s).
 */
export class Gateway {
  private running: Running | undefined
  private currentPort = 0
  readonly adminKey: string
  readonly dataDir: string
  private readonly env: Readonly<Record<string, string>>
  private readonly client: Client
  private readonly until: "healthy" | "listening"
  private readonly ca: string | undefined

  private constructor(
    adminKey: string,
    dataDir: string,
    env: Readonly<Record<string, string>>,
    until: "healthy" | "listening",
    ca: string | undefined
  ) {
    this.ca = ca
    this.adminKey = adminKey
    this.dataDir = dataDir
    this.env = env
    this.until = until
    this.client = makeClient(() => this.url, adminKey)
  }

  static async start(options: StartOptions = {}): Promise<Gateway> {
    const dataDir = await mkdtemp(join(tmpdir(), "polyagent-e2e-"))
    const adminKey = options.adminKey ?? newAdminKey()
    const env: Record<string, string> = {
      POLYAGENT_DATA_DIR: dataDir,
      POLYAGENT_ADMIN_KEY: adminKey,
      GATEWAY_HOST: "127.0.0.1",
      ...options.env
    }
    if (options.postgresUrl !== undefined) env["POSTGRES_URL"] = options.postgresUrl
    if (options.config !== undefined) {
      env["POLYAGENT_CONFIG"] = join(dataDir, "polyagent.yaml")
      await writeFile(env["POLYAGENT_CONFIG"], options.config)
    }
    const gateway = new Gateway(adminKey, dataDir, env, options.until ?? "healthy", options.ca)
    try {
      await gateway.launch()
    } catch (error) {
      await gateway.dispose()
      throw error
    }
    return gateway
  }

  /** The base URL, e.g. `http://127.0.0.1:40123` (`https://localhost:…` with {@link StartOptions.ca}). */
  get url(): string {
    return this.ca === undefined ? `http://127.0.0.1:${this.currentPort}` : `https://localhost:${this.currentPort}`
  }

  /** The process id of the running server. */
  get pid(): number | undefined {
    return this.running?.child.pid
  }

  /** What the current process printed so far. */
  get output(): { readonly stdout: string; readonly stderr: string } {
    return this.running?.output ?? { stdout: "", stderr: "" }
  }

  private async launch(): Promise<void> {
    this.currentPort = await freePort()
    const running = spawnServer({ ...this.env, GATEWAY_PORT: String(this.currentPort) })
    this.running = running
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline) {
      if (running.child.exitCode !== null || running.child.signalCode !== null) {
        const exited = await running.exited
        throw new Error(
          `server exited during start-up (code ${exited.code}, signal ${exited.signal}):\n${exited.stderr}`
        )
      }
      const ready =
        this.ca === undefined
          ? await fetch(`${this.url}/v1/health`, { signal: AbortSignal.timeout(1_000) }).then(
              (response) => {
                const answered = this.until === "listening" || response.ok
                return response.body?.cancel().then(() => answered) ?? answered
              },
              () => false
            )
          : await httpsStatus(`${this.url}/v1/health`, this.ca).then(
              (status) => status !== undefined && (this.until === "listening" || status === 200)
            )
      if (ready) return
      await new Promise((resolveSleep) => setTimeout(resolveSleep, 100))
    }
    running.child.kill("SIGKILL")
    throw new Error(`server not healthy within 20 s:\n${running.output.stderr}`)
  }

  /** SIGTERM, then the exit (SIGKILL after `graceMs`). Answers how it ended; a no-op when stopped. */
  async stop(graceMs = 10_000): Promise<Exited | undefined> {
    const running = this.running
    if (running === undefined) return undefined
    this.running = undefined
    if (running.child.exitCode !== null || running.child.signalCode !== null) return running.exited
    running.child.kill("SIGTERM")
    const timer = setTimeout(() => running.child.kill("SIGKILL"), graceMs)
    try {
      return await running.exited
    } finally {
      clearTimeout(timer)
    }
  }

  /** Starts the server again after {@link kill} or {@link stop}, on the same data and admin key. */
  async relaunch(): Promise<void> {
    if (this.running === undefined) await this.launch()
  }

  /** Kills the server with SIGKILL: no shutdown at all. */
  async kill(): Promise<void> {
    const running = this.running
    this.running = undefined
    if (running === undefined) return
    running.child.kill("SIGKILL")
    await running.exited
  }

  /** Kills the server with SIGKILL (no shutdown at all) and starts it again on the same data. */
  async crashAndRestart(): Promise<void> {
    await this.kill()
    await this.launch()
  }

  /** Stops the server and starts it again with the same data and admin key (on a new port). */
  async restart(): Promise<Exited | undefined> {
    const exited = await this.stop()
    await this.launch()
    return exited
  }

  /** Stops the server and removes its data directory. */
  async dispose(): Promise<void> {
    await this.stop()
    await rm(this.dataDir, { recursive: true, force: true })
  }

  request(method: string, path: string, body?: RequestInit["body"], options?: RequestOptions): Promise<Answer> {
    return this.client.request(method, path, body, options)
  }

  post(path: string, body: unknown, options?: RequestOptions): Promise<Answer> {
    return this.client.post(path, body, options)
  }

  get(path: string, options?: RequestOptions): Promise<Answer> {
    return this.client.get(path, options)
  }

  del(path: string, options?: RequestOptions): Promise<Answer> {
    return this.client.del(path, options)
  }

  stream(path: string, body: unknown, options?: RequestOptions): Promise<Response> {
    return this.client.stream(path, body, options)
  }
}

// ---------------------------------------------------------------------------------------------
// Server-sent events

/** One server-sent event; `data` is parsed JSON when it is JSON, else the raw text. */
export interface SseEvent {
  readonly event: string
  readonly data: unknown
}

const parseData = (raw: string): unknown => {
  try {
    return JSON.parse(raw)
  } catch {
    return raw
  }
}

/**
 * The events of an SSE body as they arrive (`event:` and `data:` fields; comments and
 * other fields ignored; an event without `event:` is a `message`). Stop iterating and
 * abort the request to disconnect.
 */
export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  let buffer = ""
  let event = ""
  let data: Array<string> = []
  for await (const chunk of body.pipeThrough(new TextDecoderStream())) {
    buffer += chunk
    let newline = buffer.search(/\r\n|\r|\n/)
    while (newline !== -1) {
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1))
      newline = buffer.search(/\r\n|\r|\n/)
      if (line === "") {
        if (data.length > 0 || event !== "")
          yield { event: event === "" ? "message" : event, data: parseData(data.join("\n")) }
        event = ""
        data = []
        continue
      }
      const colon = line.indexOf(":")
      if (colon === 0) continue
      const field = colon === -1 ? line : line.slice(0, colon)
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "")
      if (field === "event") event = value
      if (field === "data") data.push(value)
    }
  }
}

/** Every event of an SSE response, read to its end. */
export const readSse = async (response: Response): Promise<Array<SseEvent>> => {
  if (response.body === null) return []
  const events: Array<SseEvent> = []
  for await (const event of sseEvents(response.body)) events.push(event)
  return events
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** A schema of its own for one PostgreSQL run; `url` makes the server use it. */
export interface PgSchema {
  readonly name: string
  readonly url: string
  /** The tables the server created in the schema. */
  readonly tables: () => Promise<ReadonlyArray<string>>
  /** The rows of a query run in the schema (`SELECT … FROM cluster_runners`). */
  readonly query: (text: string) => Promise<ReadonlyArray<Record<string, unknown>>>
  readonly drop: () => Promise<void>
}

const withPg = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>): Promise<A> =>
  Effect.runPromise(
    Effect.gen(function* () {
      return yield* f(yield* SqlClient.SqlClient)
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(postgresBaseUrl) })), Effect.orDie)
  )

/** Creates `e2e_<random>` in the test database; the URL selects it with `options=-c search_path=…`. */
export const createPgSchema = async (): Promise<PgSchema> => {
  const name = `e2e_${randomBytes(6).toString("hex")}`
  await withPg((sql) => sql`CREATE SCHEMA ${sql(name)}`)
  return {
    name,
    url: `${postgresBaseUrl}?options=${encodeURIComponent(`-c search_path=${name}`)}`,
    tables: () =>
      withPg((sql) =>
        sql<{ readonly table_name: string }>`SELECT table_name FROM information_schema.tables
                                          WHERE table_schema = ${name} ORDER BY table_name`.pipe(
          Effect.map((rows) => rows.map((row) => row.table_name))
        )
      ),
    query: (text) =>
      withPg((sql) =>
        sql.withTransaction(
          Effect.andThen(sql`SET LOCAL search_path TO ${sql(name)}`, sql.unsafe<Record<string, unknown>>(text))
        )
      ),
    drop: () => withPg((sql) => sql`DROP SCHEMA IF EXISTS ${sql(name)} CASCADE`).then(() => undefined)
  }
}
