/**
 * Model health shared between two server processes on one PostgreSQL, with and without Redis:
 * upstream 429s relayed through the first process open the model's breaker, and the second
 * process's `GET /v1/models/{id}/health` says `circuit: "open"` within a few sync intervals.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { ModelHealth } from "@polyagent/runtime"
import { FakeUpstream, OpenAiWire } from "@polyagent/providers/testing"
import { Redis } from "ioredis"
import { randomBytes } from "node:crypto"
import { createPgSchema, decode, Gateway, newAdminKey, type PgSchema } from "../src/harness.ts"

const REDIS_URL = "redis://127.0.0.1:6379"
const SYNC_MS = 200
const model = "gpt-4o-mini"

const healthOf = async (gateway: Gateway) =>
  decode(ModelHealth.HealthReport, (await gateway.get(`/v1/models/${model}/health`)).json)

describe.each([
  ["PostgreSQL", false],
  ["Redis", true]
])("health shared by two processes through %s", (_name, redis) => {
  let fake: FakeUpstream.FakeUpstream
  let schema: PgSchema
  let nodes: Array<Gateway> = []
  const prefix = `test:health:${randomBytes(6).toString("hex")}:`

  beforeAll(async () => {
    fake = await FakeUpstream.start(OpenAiWire.routes("/v1"))
    schema = await createPgSchema()
    const config = [
      "resilience:",
      "  breaker:",
      "    open_base: 60s",
      "  shared_state:",
      `    sync_interval: ${SYNC_MS} millis`,
      `    redis_prefix: "${prefix}"`,
      ""
    ].join("\n")
    const env: Record<string, string> = {
      OPENAI_API_KEY: "sk-openai-test-key",
      OPENAI_BASE_URL: `${fake.url}/v1`
    }
    if (redis) env["REDIS_URL"] = REDIS_URL
    const adminKey = newAdminKey()
    nodes = await Promise.all([0, 1].map(() => Gateway.start({ postgresUrl: schema.url, adminKey, env, config })))
  }, 120_000)

  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.dispose()))
    await schema?.drop()
    await fake?.close()
    if (redis) {
      const client = new Redis(REDIS_URL)
      await client.del(`${prefix}windows`, `${prefix}breakers`)
      client.disconnect()
    }
  })

  it("opens the breaker on the first process's 429s; the second says open within the sync interval", async () => {
    const [first, second] = nodes
    if (first === undefined || second === undefined) return assert.fail("two processes")
    assert.strictEqual((await healthOf(second)).circuit, "closed")
    for (let i = 0; i < 5; i++) {
      const answer = await first.post("/v1/chat/completions", {
        model,
        messages: [{ role: "user", content: `hello ${OpenAiWire.Scenario.rateLimited}` }]
      })
      assert.strictEqual(answer.status, 429, answer.text)
    }
    const opened = await healthOf(first)
    assert.strictEqual(opened.circuit, "open")
    assert.strictEqual(opened.status, "unavailable")
    const started = Date.now()
    let seen = await healthOf(second)
    // The opening is published at once, the window at the next sync.
    while ((seen.circuit !== "open" || seen.requests < 5) && Date.now() - started < 10 * SYNC_MS) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      seen = await healthOf(second)
    }
    assert.strictEqual(seen.circuit, "open", `not open on the second process after ${Date.now() - started} ms`)
    assert.strictEqual(seen.status, "unavailable")
    assert.isAtLeast(seen.requests, 5, "the first process's window is shared too")
    const listed = await second.get("/v1/models")
    assert.include(listed.text, `"id":"${model}"`)
  })
})
