/**
 * Budgets through the real server on PostgreSQL, against a fake OpenAI: every model call is
 * admitted and charged by the router, on `/v1/chat` and on `/v1/chat/completions` (the fast lane
 * included). 200 concurrent requests against a nearly spent budget overspend it by at most one
 * request's cost, the rest answer `402 budget_exceeded`; the ledger's sum is the stored turns'.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { SessionProtocol } from "@polyagent/runtime"
import { FakeUpstream, OpenAiWire } from "@polyagent/providers/testing"
import { createPgSchema, decode, Gateway, makeClient, type PgSchema } from "../src/harness.ts"

const CreatedKey = Schema.Struct({ id: Schema.String, key: Schema.String })

describe("budgets", () => {
  let fake: FakeUpstream.FakeUpstream
  let schema: PgSchema
  let gateway: Gateway

  beforeAll(async () => {
    fake = await FakeUpstream.start(OpenAiWire.routes("/v1"))
    schema = await createPgSchema()
    gateway = await Gateway.start({
      postgresUrl: schema.url,
      env: { OPENAI_API_KEY: "sk-test", OPENAI_BASE_URL: `${fake.url}/v1` }
    })
  })

  afterAll(async () => {
    await gateway?.dispose()
    await schema?.drop()
    await fake?.close()
  })

  /** A key of its own tenant (so that its sessions are the tenant's), with `budget_usd`. */
  const newKey = async (tenant: string, budget: number) => {
    const answer = await gateway.post("/v1/keys", { role: "user", tenant, budget_usd: budget })
    assert.strictEqual(answer.status, 201, answer.text)
    return makeClient(gateway.url, decode(CreatedKey, answer.json).key)
  }

  const sumOf = async (query: string) => Number((await schema.query(query))[0]?.["sum"] ?? 0)

  /** The ledger's sum for `tenant` once it reaches `atLeast`: calls without a budget are charged in the background. */
  const ledgerOf = async (tenant: string, atLeast: number) => {
    const query = `SELECT SUM(cost_usd) AS sum FROM usage_ledger WHERE tenant = '${tenant}'`
    let sum = await sumOf(query)
    for (let tries = 0; tries < 50 && sum < atLeast - 1e-9; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      sum = await sumOf(query)
    }
    return sum
  }

  it("200 concurrent turns against a nearly spent budget overspend it by at most one turn; the ledger is the stored turns'", async () => {
    // What one turn costs, on a key without a budget.
    const probe = await newKey("budget-probe", 1000)
    const first = await probe.post("/v1/chat", { message: "hello", model: "gpt-4o-mini" })
    assert.strictEqual(first.status, 200, first.text)
    const cost = decode(SessionProtocol.TurnResult, first.json).cost_usd
    assert.isAbove(cost, 0)

    const budget = cost * 2.5
    const client = await newKey("budget-race", budget)
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => client.post("/v1/chat", { message: `hello ${i}`, model: "gpt-4o-mini" }))
    )
    const served = answers.filter((answer) => answer.status === 200)
    const refused = answers.filter((answer) => answer.status === 402)
    assert.strictEqual(served.length + refused.length, 200, answers.map((a) => a.status).join(","))
    assert.isAtLeast(served.length, 1)
    for (const answer of refused) {
      assert.strictEqual((answer.json as { error: { type: string } }).error.type, "budget_exceeded")
    }
    // Then one at a time, a turn that fits is never refused, until one crosses the line.
    for (let i = 0; i < 5; i++) {
      const answer = await client.post("/v1/chat", { message: `one more ${i}`, model: "gpt-4o-mini" })
      if (answer.status === 402) break
      assert.strictEqual(answer.status, 200, answer.text)
      served.push(answer)
    }
    const spent = served.reduce((sum, answer) => sum + decode(SessionProtocol.TurnResult, answer.json).cost_usd, 0)
    assert.isAtLeast(spent, budget - 1e-9, `spent ${spent} of ${budget}: a turn that fitted was refused`)
    assert.isAtMost(spent, budget + cost + 1e-9, `spent ${spent} of ${budget} (one turn: ${cost})`)

    // The ledger holds exactly what the stored turns cost.
    const ledger = await ledgerOf("budget-race", spent)
    const stored = await sumOf(
      "SELECT SUM(cost_usd) AS sum FROM messages WHERE tenant = 'budget-race' AND role = 'assistant'"
    )
    assert.closeTo(ledger, spent, 1e-9)
    assert.closeTo(stored, spent, 1e-9)
  })

  it("a spent budget answers 402 on /v1/chat/completions too, relayed on the fast lane or not", async () => {
    const client = await newKey("budget-relay", 0.000001)
    const ask = (stream: boolean) =>
      client.post("/v1/chat/completions", {
        model: "gpt-4o-mini",
        stream,
        messages: [{ role: "user", content: "hello" }]
      })
    // The first call is admitted (nothing spent yet) and crosses the line; then every call is refused.
    assert.strictEqual((await ask(false)).status, 200)
    for (const stream of [false, true, false]) {
      const answer = await ask(stream)
      assert.strictEqual(answer.status, 402, answer.text)
      assert.strictEqual((answer.json as { error: { type: string } }).error.type, "budget_exceeded")
    }
    const ledger = await ledgerOf("budget-relay", 1e-9)
    assert.isAbove(ledger, 0)
  })
})
