/**
 * `GET /v1/usage` and keys' budgets through the real server on PostgreSQL: the ledger summed by
 * model, key, day and tenant, filtered by dates and times; a user sees their own key's usage, an
 * admin their tenant's, the operator every tenant; bad parameters answer 400. `POST /v1/keys`
 * takes a key's `budget_usd` and the key list shows it.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import {
  type Client,
  createPgSchema,
  decode,
  ErrorEnvelope,
  Gateway,
  makeClient,
  type PgSchema
} from "../src/harness.ts"

const CreatedKey = Schema.Struct({ id: Schema.String, key: Schema.String, budget_usd: Schema.NullOr(Schema.Number) })
const Listed = Schema.Struct({
  data: Schema.Array(Schema.Struct({ id: Schema.String, budget_usd: Schema.NullOr(Schema.Number) }))
})
const Report = Schema.Struct({
  data: Schema.Array(
    Schema.Struct({
      model: Schema.optional(Schema.String),
      key: Schema.optional(Schema.NullOr(Schema.String)),
      day: Schema.optional(Schema.String),
      tenant: Schema.optional(Schema.String),
      requests: Schema.Number,
      prompt_tokens: Schema.Number,
      completion_tokens: Schema.Number,
      cost_usd: Schema.Number
    })
  )
})

// One ledger row: tenant, key, model, UTC time, tokens, cost, request.
const row = (tenant: string, key: string | null, model: string, at: string, cost: number, request: string) =>
  `('${tenant}', ${key === null ? "NULL" : `'${key}'`}, '${model}', 'fake', '${at.slice(0, 10)}', 100, 20, 10, 0,
    ${cost}, '${request}', NULL, '${at}')`

const report = async (client: Pick<Client, "get">, query: string) => {
  const answer = await client.get(`/v1/usage?${query}`)
  assert.strictEqual(answer.status, 200, answer.text)
  return decode(Report, answer.json).data
}

describe("usage and budgets", () => {
  let schema: PgSchema
  let gateway: Gateway
  let user: typeof CreatedKey.Type
  let acmeAdmin: typeof CreatedKey.Type

  const newKey = async (body: object) => {
    const answer = await gateway.post("/v1/keys", body)
    assert.strictEqual(answer.status, 201, answer.text)
    return decode(CreatedKey, answer.json)
  }

  beforeAll(async () => {
    schema = await createPgSchema()
    gateway = await Gateway.start({ postgresUrl: schema.url })
    user = await newKey({ role: "user", name: "app", budget_usd: 5 })
    acmeAdmin = await newKey({ role: "admin", tenant: "acme" })
    const [admin] = await schema.query("SELECT id FROM api_keys WHERE tenant = 'default' AND role = 'admin'")
    const adminId = String(admin?.["id"])
    await schema.query(`INSERT INTO usage_ledger (tenant, key_id, model, provider, day, prompt_tokens,
      completion_tokens, cached_tokens, reasoning_tokens, cost_usd, request_id, session_id, created_at) VALUES
      ${[
        row("default", user.id, "gpt-a", "2026-12-01T10:00:00.000Z", 0.25, "r1"),
        // A request that failed over: two models, one request.
        row("default", user.id, "gpt-a", "2026-12-02T10:00:00.000Z", 0.125, "r2"),
        row("default", user.id, "gpt-b", "2026-12-02T10:00:01.000Z", 0.5, "r2"),
        row("default", adminId, "gpt-b", "2026-12-03T23:59:59.000Z", 1, "r3"),
        row("acme", acmeAdmin.id, "gpt-a", "2026-12-02T12:00:00.000Z", 2, "r4")
      ].join(",")}`)
  })

  afterAll(async () => {
    await gateway?.dispose()
    await schema?.drop()
  })

  it("POST /v1/keys stores a key's budget_usd, and the key list shows it", async () => {
    assert.strictEqual(user.budget_usd, 5)
    assert.isNull(acmeAdmin.budget_usd)
    const listed = decode(Listed, (await gateway.get("/v1/keys")).json).data
    assert.strictEqual(listed.find((key) => key.id === user.id)?.budget_usd, 5)
    for (const budget of [-1, "ten"]) {
      const refused = await gateway.post("/v1/keys", { role: "user", budget_usd: budget })
      assert.strictEqual(refused.status, 400, refused.text)
      assert.strictEqual(decode(ErrorEnvelope, refused.json).error.type, "invalid_request")
    }
  })

  it("an admin sees their tenant's usage by model, key and day; requests count once per group", async () => {
    const byModel = await report(gateway, "group_by=model")
    assert.deepStrictEqual(
      byModel.map((g) => [g.model, g.requests, g.prompt_tokens, g.completion_tokens, g.cost_usd]),
      [
        ["gpt-a", 2, 200, 40, 0.375],
        ["gpt-b", 2, 200, 40, 1.5]
      ]
    )
    const byKey = await report(gateway, "group_by=key")
    assert.strictEqual(byKey.length, 2)
    assert.deepStrictEqual(
      byKey.find((g) => g.key === user.id),
      { key: user.id, requests: 2, prompt_tokens: 300, completion_tokens: 60, cost_usd: 0.875 }
    )
    const byDay = await report(gateway, "group_by=day")
    assert.deepStrictEqual(
      byDay.map((g) => [g.day, g.requests, g.cost_usd]),
      [
        ["2026-12-01", 1, 0.25],
        ["2026-12-02", 1, 0.625],
        ["2026-12-03", 1, 1]
      ]
    )
    // The default is by model.
    assert.deepStrictEqual(await report(gateway, ""), byModel)
  })

  it("filters by dates (both included) and by ISO times (to excluded)", async () => {
    const days = await report(gateway, "group_by=day&from=2026-12-02&to=2026-12-03")
    assert.deepStrictEqual(
      days.map((g) => g.day),
      ["2026-12-02", "2026-12-03"]
    )
    const times = await report(gateway, "group_by=model&from=2026-12-02T10:00:00Z&to=2026-12-02T10:00:01Z")
    assert.deepStrictEqual(
      times.map((g) => [g.model, g.cost_usd]),
      [["gpt-a", 0.125]]
    )
    assert.deepStrictEqual(await report(gateway, "group_by=model&from=2027-01-01"), [])
  })

  it("a user sees their own key's usage only", async () => {
    const client = makeClient(gateway.url, user.key)
    const byTenant = await report(client, "group_by=tenant")
    assert.deepStrictEqual(
      byTenant.map((g) => [g.tenant, g.requests, g.cost_usd]),
      [["default", 2, 0.875]]
    )
    const byKey = await report(client, "group_by=key")
    assert.deepStrictEqual(
      byKey.map((g) => g.key),
      [user.id]
    )
  })

  it("the operator sees every tenant by tenant; another tenant's admin sees only theirs", async () => {
    const all = await report(gateway, "group_by=tenant")
    assert.deepStrictEqual(
      all.map((g) => [g.tenant, g.cost_usd]),
      [
        ["acme", 2],
        ["default", 1.875]
      ]
    )
    const acme = await report(makeClient(gateway.url, acmeAdmin.key), "group_by=tenant")
    assert.deepStrictEqual(
      acme.map((g) => [g.tenant, g.cost_usd]),
      [["acme", 2]]
    )
  })

  it("answers 400 for a bad group_by, a date that is none, and an empty range", async () => {
    for (const query of [
      "group_by=week",
      "from=2026-13-01",
      "from=2026-02-30",
      "to=yesterday",
      "from=2026-12-02T10:00:00",
      "from=2026-12-03&to=2026-12-02"
    ]) {
      const answer = await gateway.get(`/v1/usage?${query}`)
      assert.strictEqual(answer.status, 400, `${query}: ${answer.text}`)
      const { error } = decode(ErrorEnvelope, answer.json)
      assert.strictEqual(error.type, "invalid_request")
      assert.match(error.message, /^(group_by|from|to) /)
    }
  })
})
