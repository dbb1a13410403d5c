/**
 * A/B experiments through the real server on PostgreSQL: feedback on sessions
 * (`POST /v1/feedback`, any role, 404 for a session of another tenant or none, 400 for bad
 * input), per-arm results (`GET /v1/experiments/{id}`, builder only, 404 for an experiment that is
 * not configured, zeros without data), outcomes of turns the router sends through an experiment,
 * and the nullable `task_type` of stored messages. Some outcomes are written directly as rows of
 * `experiment_outcomes`, to check the figures on known data.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Experiments, Session, SessionProtocol } from "@polyagent/runtime"
import { Schema } from "effect"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createPgSchema, decode, ErrorEnvelope, Gateway, makeClient, type PgSchema } from "../src/harness.ts"

const CreatedKey = Schema.Struct({ key: Schema.String })
const typeOf = (json: unknown) => decode(ErrorEnvelope, json).error.type

describe("A/B experiments over HTTP", () => {
  let configDir = ""
  let schema: PgSchema | undefined
  let gateway: Gateway
  let sessionId = ""

  beforeAll(async () => {
    configDir = await mkdtemp(join(tmpdir(), "polyagent-experiments-"))
    const config = join(configDir, "polyagent.yaml")
    await writeFile(
      config,
      [
        "routing:",
        "  routes:",
        "    local-route: { strategy: ordered, candidates: [local] }",
        "  experiments:",
        "    local-split:",
        "      arms: { local: 70, local-route: 30 }",
        "    untouched:",
        "      arms: { local: 1 }"
      ].join("\n")
    )
    schema = await createPgSchema()
    gateway = await Gateway.start({ postgresUrl: schema.url, env: { POLYAGENT_CONFIG: config } })
    const chat = await gateway.post("/v1/chat", { message: "hello" })
    assert.strictEqual(chat.status, 200, chat.text)
    sessionId = decode(SessionProtocol.TurnResult, chat.json).session_id
  })

  afterAll(async () => {
    await gateway?.dispose()
    await schema?.drop()
    await rm(configDir, { recursive: true, force: true })
  })

  const keyOf = async (body: object) => {
    const created = await gateway.post("/v1/keys", body)
    assert.strictEqual(created.status, 201, created.text)
    return makeClient(gateway.url, decode(CreatedKey, created.json).key)
  }

  it("stores the feedback of any role on its tenant's session: 201", async () => {
    const user = await keyOf({ role: "user" })
    const answer = await user.post("/v1/feedback", { session_id: sessionId, score: 0.5, comment: "good, 很好" })
    assert.strictEqual(answer.status, 201, answer.text)
    assert.deepStrictEqual(answer.json, { session_id: sessionId, score: 0.5, comment: "good, 很好" })
    const bare = await gateway.post("/v1/feedback", { session_id: sessionId, score: -1 })
    assert.strictEqual(bare.status, 201, bare.text)
    assert.deepStrictEqual(bare.json, { session_id: sessionId, score: -1, comment: null })
  })

  it("answers 404 for a session of another tenant or one that does not exist", async () => {
    const other = await keyOf({ role: "admin", tenant: "other" })
    const foreign = await other.post("/v1/feedback", { session_id: sessionId, score: 1 })
    assert.strictEqual(foreign.status, 404, foreign.text)
    assert.strictEqual(typeOf(foreign.json), "not_found")
    const missing = await gateway.post("/v1/feedback", { session_id: "sess_nope", score: 1 })
    assert.strictEqual(missing.status, 404, missing.text)
    assert.include(decode(ErrorEnvelope, missing.json).error.message, "sess_nope")
  })

  it("answers 400 with a field-level message for bad feedback", async () => {
    const cases: ReadonlyArray<[unknown, string]> = [
      [{ session_id: sessionId, score: 2 }, "score"],
      [{ session_id: sessionId, score: "5" }, "score"],
      [{ session_id: sessionId }, "score"],
      [{ score: 1 }, "session_id"],
      [{ session_id: "../etc", score: 1 }, "session_id"],
      [{ session_id: sessionId, score: 1, comment: "x".repeat(2_001) }, "comment"]
    ]
    for (const [body, field] of cases) {
      const answer = await gateway.post("/v1/feedback", body)
      assert.strictEqual(answer.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${answer.text}`)
      assert.strictEqual(typeOf(answer.json), "invalid_request")
      assert.include(decode(ErrorEnvelope, answer.json).error.message, field)
    }
    const malformed = await gateway.request("POST", "/v1/feedback", "{not json", {
      headers: { "content-type": "application/json" }
    })
    assert.strictEqual(malformed.status, 400, malformed.text)
    const anonymous = await gateway.post("/v1/feedback", { session_id: sessionId, score: 1 }, { token: null })
    assert.strictEqual(anonymous.status, 401)
  })

  it("serves per-arm results to builders; the session's feedback joins its arm", async () => {
    if (schema === undefined) return assert.fail("no schema")
    const rows = [
      ["o1", "local", sessionId, "r1", 1, 120, 0.002],
      ["o2", "local", sessionId, "r2", 1, 80, 0.002],
      ["o3", "local", null, "r3", 0, 5, 0],
      ["o4", "local-route", "sess_elsewhere", "r4", 1, 40, 0.001]
    ]
      .map(
        ([id, arm, session, request, ok, latency, cost]) =>
          `('default', '${id}', 'local-split', '${arm}', ${session === null ? "NULL" : `'${session}'`}, '${request}', ${ok}, ${latency}, ${cost}, '2026-01-01T00:00:00.000Z')`
      )
      .join(", ")
    await schema.query(`INSERT INTO experiment_outcomes
      (tenant, id, experiment, arm, session_id, request_id, ok, latency_ms, cost_usd, created_at) VALUES ${rows}`)

    const results = await gateway.get("/v1/experiments/local-split")
    assert.strictEqual(results.status, 200, results.text)
    const { id, arms } = decode(Experiments.ExperimentResults, results.json)
    assert.strictEqual(id, "local-split")
    const [local, echo] = arms
    assert.deepStrictEqual(
      [local?.target, local?.weight, local?.sessions, local?.requests, local?.errors, local?.latency_ms],
      ["local", 70, 1, 3, 1, { p50: 80, p95: 120 }]
    )
    assert.approximately(local?.error_rate ?? 0, 1 / 3, 1e-9)
    assert.approximately(local?.cost_usd.total ?? 0, 0.004, 1e-9)
    // The two feedbacks of the first tests: 0.5 and -1.
    assert.deepStrictEqual(local?.feedback, { count: 2, mean_score: -0.25 })
    assert.deepStrictEqual(
      [echo?.target, echo?.weight, echo?.requests, echo?.feedback.count],
      ["local-route", 30, 1, 0]
    )

    const untouched = await gateway.get("/v1/experiments/untouched")
    assert.strictEqual(untouched.status, 200, untouched.text)
    const zeros = decode(Experiments.ExperimentResults, untouched.json).arms
    assert.deepStrictEqual(
      zeros.map((arm) => [arm.target, arm.requests, arm.cost_usd.total, arm.latency_ms.p50]),
      [["local", 0, 0, 0]]
    )

    const unknown = await gateway.get("/v1/experiments/not-configured")
    assert.strictEqual(unknown.status, 404, unknown.text)
    assert.strictEqual(typeOf(unknown.json), "not_found")

    const user = await keyOf({ role: "user" })
    const forbidden = await user.get("/v1/experiments/local-split")
    assert.strictEqual(forbidden.status, 403, forbidden.text)
    assert.strictEqual(typeOf(forbidden.json), "forbidden")
    const builder = await keyOf({ role: "builder" })
    assert.strictEqual((await builder.get("/v1/experiments/local-split")).status, 200)
    // Another tenant's builder sees its own tenant's figures: none.
    const other = await keyOf({ role: "builder", tenant: "elsewhere" })
    const theirs = decode(Experiments.ExperimentResults, (await other.get("/v1/experiments/local-split")).json)
    assert.deepStrictEqual(
      theirs.arms.map((arm) => arm.requests),
      [0, 0]
    )
  })

  it("records the outcome of every turn routed through an experiment, in the session's one arm", async () => {
    const tenant = await keyOf({ role: "admin", tenant: "live" })
    const first = await tenant.post("/v1/chat", { message: "hello", model: "local-split" })
    assert.strictEqual(first.status, 200, first.text)
    const live = decode(SessionProtocol.TurnResult, first.json).session_id
    for (const message of ["and again", "once more"]) {
      const turn = await tenant.post("/v1/chat", { message, model: "local-split", session_id: live })
      assert.strictEqual(turn.status, 200, turn.text)
    }
    assert.strictEqual((await tenant.post("/v1/feedback", { session_id: live, score: 1 })).status, 201)
    // Outcomes are written in the background, after the answers: wait for all three.
    const resultsOf = async () => {
      const answer = await tenant.get("/v1/experiments/local-split")
      assert.strictEqual(answer.status, 200, answer.text)
      return { answer, arms: decode(Experiments.ExperimentResults, answer.json).arms }
    }
    let { answer, arms } = await resultsOf()
    for (let tries = 0; tries < 50 && arms.reduce((sum, arm) => sum + arm.requests, 0) < 3; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      ;({ answer, arms } = await resultsOf())
    }
    const used = arms.filter((arm) => arm.requests > 0)
    assert.lengthOf(used, 1, answer.text)
    assert.deepStrictEqual(
      [used[0]?.requests, used[0]?.sessions, used[0]?.errors, used[0]?.feedback],
      [3, 1, 0, { count: 1, mean_score: 1 }]
    )
    assert.isAbove(used[0]?.latency_ms.p95 ?? 0, 0)
  })

  it("stores the task type `auto` detected with the answer; other turns have none", async () => {
    const answer = await gateway.get(`/v1/sessions/${sessionId}`)
    assert.strictEqual(answer.status, 200, answer.text)
    const session = decode(Session.Session, answer.json)
    assert.deepStrictEqual(
      session.messages.map((message) => [message.role, message.task_type]),
      [
        ["user", null],
        ["assistant", null]
      ]
    )
    const auto = await gateway.post("/v1/chat", { message: "```ts\nconst x: number = 1\n``` fix this", model: "auto" })
    assert.strictEqual(auto.status, 200, auto.text)
    const turn = decode(SessionProtocol.TurnResult, auto.json)
    const stored = decode(Session.Session, (await gateway.get(`/v1/sessions/${turn.session_id}`)).json)
    assert.strictEqual(stored.messages.at(-1)?.task_type, "code")
  })
})
