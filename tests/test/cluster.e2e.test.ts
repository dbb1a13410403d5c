/**
 * Three server processes on one PostgreSQL as one cluster, over real sockets: they start
 * together with one admin key; any process answers for any session; a stream from a process
 * that does not own the session is not held back by Nagle's algorithm; a process killed with
 * SIGKILL under traffic loses no answered turn and its sessions answer again within 10 s; a
 * process stopped with SIGTERM under traffic fails no request.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createPgSchema, decode, Gateway, newAdminKey, type PgSchema, sseEvents } from "../src/harness.ts"

const Turn = Schema.Struct({ session_id: Schema.String })
const Stored = Schema.Struct({
  messages: Schema.Array(Schema.Struct({ role: Schema.String, content: Schema.String }))
})
const KeyList = Schema.Struct({ data: Schema.Array(Schema.Struct({ id: Schema.String })) })

const SESSIONS = 300
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The socket error under a failed fetch, e.g. `ECONNREFUSED`. */
const codeOf = (error: unknown) =>
  error instanceof TypeError ? (error.cause as { code?: string } | undefined)?.code : undefined

describe("a cluster of three processes on one PostgreSQL", () => {
  let schema: PgSchema
  let configDir = ""
  let nodes: Array<Gateway> = []
  /** The processes requests may go to. */
  let up: Array<Gateway> = []
  /** A process being stopped: it closes its idle keep-alive connections, which a request may race. */
  let leaving: Gateway | undefined
  const sessions: Array<string> = []
  /** Per session, the message of every turn answered 200, in the order they were answered. */
  const answered = new Map<string, Array<string>>()

  beforeAll(async () => {
    schema = await createPgSchema()
    configDir = await mkdtemp(join(tmpdir(), "polyagent-cluster-"))
    const config = join(configDir, "polyagent.yaml")
    await writeFile(config, "models:\n  local:\n    chunk_delay: 5 millis\n")
    const adminKey = newAdminKey()
    // All three at once, on an empty schema, with the same bootstrap key.
    nodes = await Promise.all(
      [0, 1, 2].map(() => Gateway.start({ postgresUrl: schema.url, adminKey, env: { POLYAGENT_CONFIG: config } }))
    )
    up = [...nodes]
  }, 120_000)

  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.dispose()))
    await schema?.drop()
    await rm(configDir, { recursive: true, force: true })
  })

  /** Why turns were answered 503, for the failure message. */
  const reasons = new Map<string, number>()

  const anyNode = () => up[Math.floor(Math.random() * up.length)] as Gateway

  /**
   * One turn, retried until it is answered 200: a 503 (the session is moving, a process went
   * away mid-turn) is tried again with the same idempotency key, as is a connection a dead
   * process refused. Anything else fails the test. Answers what happened on the way.
   */
  const turn = async (session: string, message: string) => {
    let unavailable = 0
    const started = Date.now()
    for (;;) {
      const node = anyNode()
      try {
        const answer = await node.post(
          "/v1/chat",
          { message, session_id: session },
          { headers: { "idempotency-key": message }, signal: AbortSignal.timeout(30_000) }
        )
        if (answer.status === 200) {
          answered.get(session)?.push(message)
          return { unavailable, ms: Date.now() - started }
        }
        assert.strictEqual(answer.status, 503, `turn "${message}" on ${node.url}: ${answer.text}`)
        unavailable += 1
        const reason = `${node === leaving ? "leaving" : "other"}: ${answer.text.replace(/"request_id":"[^"]*"/, "")}`
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
      } catch (error) {
        // A connection the server never took, as a balancer would see it: the process is gone
        // (killed while the request was on its socket, or no longer listening), or it is
        // stopping and reset an idle keep-alive connection before reading the request.
        const code = codeOf(error)
        const notTaken = code === "ECONNREFUSED" || !up.includes(node) || (node === leaving && code === "ECONNRESET")
        if (!notTaken) throw error
      }
      await sleep(50)
    }
  }

  /**
   * Every session, turn after turn (about 300 turns/s over the three processes), until `stop` is
   * called; `stop` answers the turns' outcomes.
   */
  const traffic = (tag: string) => {
    const state = { stopped: false }
    const running = Promise.all(
      sessions.map(async (session, i) => {
        const outcomes: Array<{ readonly unavailable: number; readonly ms: number; readonly at: number }> = []
        for (let n = 0; !state.stopped; n++) {
          const at = Date.now()
          outcomes.push({ ...(await turn(session, `${tag} s${i} t${n}`)), at })
          // A user reads the answer before the next turn: steady traffic, not a saturated machine.
          await sleep(750 + Math.random() * 500)
        }
        return outcomes
      })
    )
    return {
      stop: async () => {
        state.stopped = true
        return (await running).flat()
      }
    }
  }

  it("starts three processes together on an empty database, with one admin key", async () => {
    for (const node of nodes) assert.strictEqual((await node.get("/v1/health")).status, 200)
    const keys = decode(KeyList, (await nodes[0]?.get("/v1/keys"))?.json)
    assert.strictEqual(keys.data.length, 1, "the shared bootstrap key is stored once")
    for (let i = 0; i < SESSIONS; i++) {
      const answer = await nodes[i % 3]?.post("/v1/chat", { message: `hello ${i}` })
      assert.strictEqual(answer?.status, 200, answer?.text)
      const { session_id } = decode(Turn, answer?.json)
      sessions.push(session_id)
      answered.set(session_id, [`hello ${i}`])
    }
    // Any process answers for any session.
    for (const [i, session] of sessions.slice(0, 30).entries()) await turn(session, `any s${i}`)
  }, 120_000)

  it("streams through a process that does not own the session without Nagle delays", async () => {
    const gaps: Array<number> = []
    for (const session of sessions.slice(0, 6)) {
      for (const node of nodes) {
        const response = await node.stream("/v1/chat/stream", {
          message: `stream ${"word ".repeat(40)}`,
          session_id: session
        })
        assert.strictEqual(response.status, 200)
        if (response.body === null) return assert.fail("no body")
        let last = 0
        let done = false
        for await (const event of sseEvents(response.body)) {
          const now = performance.now()
          if (event.event === "delta") {
            if (last !== 0) gaps.push(now - last)
            last = now
          }
          if (event.event === "done") done = true
        }
        assert.isTrue(done)
        answered.get(session)?.push(`stream ${"word ".repeat(40)}`)
      }
    }
    gaps.sort((a, b) => a - b)
    const p50 = gaps[Math.floor(gaps.length / 2)] ?? Infinity
    const p95 = gaps[Math.floor(gaps.length * 0.95)] ?? Infinity
    // Chunks come every 5 ms; with Nagle's algorithm on a runner's socket they came ~40-90 ms apart.
    assert.isBelow(p50, 10, `median gap ${p50.toFixed(1)} ms`)
    assert.isBelow(p95, 20, `95th percentile gap ${p95.toFixed(1)} ms`)
  }, 60_000)

  it("loses no answered turn when a process is killed with SIGKILL, and moves its sessions within 10 s", async () => {
    const running = traffic("kill")
    await sleep(2_000)
    const victim = nodes[0] as Gateway
    up = up.filter((node) => node !== victim)
    const killedAt = Date.now()
    await victim.kill()
    await sleep(12_000)
    const outcomes = await running.stop()
    const after = outcomes.filter((outcome) => outcome.at >= killedAt)
    assert.isAbove(after.length, SESSIONS, "traffic went on after the kill")
    const slowest = Math.max(...after.map((outcome) => outcome.ms))
    assert.isBelow(slowest, 10_000, "a session of the killed process answered again within 10 s")
    await victim.relaunch()
    up = [...nodes]
  }, 90_000)

  it("fails no request when a process is stopped with SIGTERM under traffic", async () => {
    reasons.clear()
    const running = traffic("term")
    await sleep(2_000)
    const stopping = nodes[1] as Gateway
    leaving = stopping
    const exited = await stopping.stop(30_000)
    up = up.filter((node) => node !== stopping)
    const lines = (exited?.stdout ?? "").split("\n").filter((line) => !line.includes(" request "))
    assert.strictEqual(exited?.code, 0, `${exited?.stderr}\n${lines.slice(-40).join("\n")}`)
    await sleep(3_000)
    const outcomes = await running.stop()
    const failed = outcomes.filter((outcome) => outcome.unavailable > 0)
    assert.strictEqual(failed.length, 0, `${failed.length} turns were answered 503 first: ${[...reasons].join("; ")}`)
    leaving = undefined
    await stopping.relaunch()
    up = [...nodes]
  }, 90_000)

  it("stored every answered turn exactly once, in order", async () => {
    for (const session of sessions) {
      const stored = decode(Stored, (await anyNode().get(`/v1/sessions/${session}`)).json)
      const users = stored.messages.filter((message) => message.role === "user").map((message) => message.content)
      assert.deepStrictEqual(users, answered.get(session), `session ${session}`)
      const answers = stored.messages.filter((message) => message.role === "assistant")
      assert.strictEqual(answers.length, users.length, `session ${session}: one answer per turn`)
    }
  }, 60_000)
})
