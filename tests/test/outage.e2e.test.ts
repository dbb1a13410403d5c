/**
 * PostgreSQL going away under a running server, through a TCP proxy in front of it: a server
 * that starts while the database is down answers 503 (health `down`, never 401) and becomes
 * ready by itself; while serving, a refused, cut or frozen database makes requests answer 503
 * within 5 s — none hangs, none is a 401 or a 500 — and service comes back within 5 s of the
 * database. Every turn answered 200 stays stored.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { createPgSchema, decode, ErrorEnvelope, Gateway, type PgSchema } from "../src/harness.ts"
import { type Mode, TcpProxy } from "../src/TcpProxy.ts"

const Turn = Schema.Struct({ session_id: Schema.String })
const Stored = Schema.Struct({ messages: Schema.Array(Schema.Struct({ role: Schema.String, content: Schema.String })) })
const Down = Schema.Struct({
  status: Schema.Literal("down"),
  components: Schema.Struct({ storage: Schema.Literal("down") })
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `probe` every 200 ms until it answers true; answers how long that took. */
const until = async (probe: () => Promise<boolean>, limitMs: number) => {
  const started = Date.now()
  while (Date.now() - started < limitMs) {
    if (await probe()) return Date.now() - started
    await sleep(200)
  }
  return assert.fail(`not within ${limitMs} ms`)
}

describe("PostgreSQL outages", () => {
  let schema: PgSchema
  let proxy: TcpProxy
  let gateway: Gateway | undefined
  let session = ""
  /** Every message answered 200 in `session`, in order. */
  const answered: Array<string> = []

  beforeAll(async () => {
    schema = await createPgSchema()
    proxy = await TcpProxy.start({ host: "127.0.0.1", port: 5432 })
  })

  afterAll(async () => {
    await gateway?.dispose()
    await proxy?.close()
    await schema?.drop()
  })

  const server = () => {
    if (gateway === undefined) throw new Error("the server is not running")
    return gateway
  }

  /** A turn in `session`, timed; remembered when answered 200. */
  const chat = async (message: string) => {
    const started = Date.now()
    const answer = await server().post(
      "/v1/chat",
      { message, session_id: session },
      // Tried again after a 503, a turn that was stored after all is not stored twice.
      { headers: { "idempotency-key": message }, signal: AbortSignal.timeout(15_000) }
    )
    if (answer.status === 200) answered.push(message)
    return { ...answer, ms: Date.now() - started }
  }

  it("starts while the database is down: 503 everywhere, never 401, and ready by itself when it returns", async () => {
    await proxy.set("refuse")
    const url = `postgres://postgres@127.0.0.1:${proxy.port}/test?options=${encodeURIComponent(`-c search_path=${schema.name}`)}`
    gateway = await Gateway.start({ postgresUrl: url, until: "listening" })
    const health = await server().get("/v1/health")
    assert.strictEqual(health.status, 503)
    decode(Down, health.json)
    for (const token of [server().adminKey, "pa_not_a_key_at_all_000000000", null]) {
      const answer = await server().post("/v1/chat", { message: "hi" }, { token })
      assert.strictEqual(answer.status, 503, answer.text)
      assert.strictEqual(decode(ErrorEnvelope, answer.json).error.type, "unavailable")
      assert.isNotNull(answer.headers.get("x-request-id"))
    }
    // The operator sees why: one warning with the cause, and a request line for each 503.
    const { stdout } = server().output
    assert.match(stdout, /WARN storage is unreachable; answering 503 until it is not .*reason=".*ECONNREFUSED/)
    assert.match(stdout, /request method=POST route=\/v1\/chat status=503 /)
    await proxy.set("pass")
    const ready = await until(async () => (await server().get("/v1/health")).status === 200, 10_000)
    assert.isBelow(ready, 5_000, "ready within 5 s of the database's return")
    const first = await server().post("/v1/chat", { message: "first" })
    assert.strictEqual(first.status, 200, first.text)
    session = decode(Turn, first.json).session_id
    answered.push("first")
  }, 60_000)

  const outage = (mode: Exclude<Mode, "pass">) =>
    it(`answers 503 within 5 s while the database is ${{ refuse: "refused", cut: "cut off", freeze: "frozen" }[mode]}, and recovers within 5 s`, async () => {
      assert.strictEqual((await chat(`before ${mode}`)).status, 200)
      await proxy.set(mode)
      const during: Array<{ readonly status: number; readonly ms: number }> = []
      for (let i = 0; i < 6; i++) {
        const answer = await chat(`during ${mode} ${i}`)
        during.push(answer)
        if (answer.status !== 200) {
          assert.strictEqual(answer.status, 503, answer.text)
          assert.strictEqual(decode(ErrorEnvelope, answer.json).error.type, "unavailable")
        }
        await sleep(500)
      }
      for (const { ms } of during) assert.isBelow(ms, 5_000, "no request waits more than 5 s")
      if (mode !== "cut") {
        // A cut database is reconnected at once; a refused or frozen one is down for good.
        assert.strictEqual(during.at(-1)?.status, 503)
        const health = await server().get("/v1/health")
        assert.strictEqual(health.status, 503)
        decode(Down, health.json)
        // A key that cannot be looked up is not a bad key.
        const unknown = await server().get("/v1/sessions/sess_x", { token: "pa_never_issued_key_0000000000" })
        assert.strictEqual(unknown.status, 503, unknown.text)
      }
      if (mode !== "cut") assert.include(server().output.stdout, "storage is down; answering 503 until it is back")
      await proxy.set("pass")
      const recovered = await until(async () => (await chat(`after ${mode}`)).status === 200, 15_000)
      assert.isBelow(recovered, 5_000, "service is back within 5 s of the database")
    }, 60_000)

  outage("refuse")
  outage("cut")
  outage("freeze")

  it("kept every turn that was answered 200", async () => {
    const stored = decode(Stored, (await server().get(`/v1/sessions/${session}`)).json)
    const users = stored.messages.filter((message) => message.role === "user").map((message) => message.content)
    for (const message of answered) assert.include(users, message)
    assert.strictEqual(new Set(users).size, users.length, "no turn is stored twice")
  })
})
