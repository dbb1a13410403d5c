/**
 * API keys, roles and tenants through the real server: admins create and revoke keys; a key's
 * role bounds what it may do; a resource of another tenant answers exactly like one that
 * does not exist.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Agent, SessionProtocol } from "@polyagent/runtime"
import { Schema } from "effect"
import { decode, ErrorEnvelope, Gateway, makeClient } from "../src/harness.ts"

const CreatedKey = Schema.Struct({
  id: Schema.String,
  key: Schema.String,
  role: Schema.String,
  tenant: Schema.String,
  name: Schema.String
})

const ListedKey = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  role: Schema.String,
  tenant: Schema.String,
  prefix: Schema.NullOr(Schema.String),
  created_at: Schema.String,
  expires_at: Schema.NullOr(Schema.String),
  last_used_at: Schema.NullOr(Schema.String),
  models: Schema.NullOr(Schema.Array(Schema.String)),
  rate_limit: Schema.NullOr(Schema.Struct({ requests_per_minute: Schema.Number, burst: Schema.Number })),
  budget_usd: Schema.NullOr(Schema.Number)
})
const KeyList = Schema.Struct({ data: Schema.Array(ListedKey) })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The envelope without its request id, to compare two answers. */
const withoutRequestId = (json: unknown) => {
  const { error } = decode(ErrorEnvelope, json)
  return { type: error.type, message: error.message }
}

const typeOf = (json: unknown) => decode(ErrorEnvelope, json).error.type

describe("keys, roles and tenants", () => {
  let gateway: Gateway

  beforeAll(async () => {
    gateway = await Gateway.start()
  })

  afterAll(async () => {
    await gateway?.dispose()
  })

  const newKey = async (body: object) => {
    const answer = await gateway.post("/v1/keys", body)
    assert.strictEqual(answer.status, 201, answer.text)
    return decode(CreatedKey, answer.json)
  }

  it("a user key chats and reads agents, but changes nothing and manages no keys", async () => {
    const user = makeClient(gateway.url, (await newKey({ role: "user", name: "app" })).key)
    assert.strictEqual((await user.post("/v1/chat", { message: "hi" })).status, 200)
    assert.strictEqual((await user.get("/v1/agents")).status, 200)
    const create = await user.post("/v1/agents", { name: "x", agent_type: "chat", system_prompt: "" })
    assert.strictEqual(create.status, 403, create.text)
    assert.strictEqual(typeOf(create.json), "forbidden")
    assert.strictEqual((await user.get("/v1/keys")).status, 403)
    assert.strictEqual((await user.post("/v1/keys", { role: "admin" })).status, 403)
  })

  it("lists keys without their secret, and a revoked key no longer authenticates", async () => {
    const created = await newKey({ role: "builder", name: "ci" })
    const listed = await gateway.get("/v1/keys")
    assert.strictEqual(listed.status, 200, listed.text)
    assert.include(listed.text, created.id)
    assert.notInclude(listed.text, created.key)
    assert.notInclude(listed.text, "hash")
    const builder = makeClient(gateway.url, created.key)
    assert.strictEqual((await builder.get("/v1/agents")).status, 200)
    const revoked = await gateway.del(`/v1/keys/${created.id}`)
    assert.strictEqual(revoked.status, 200, revoked.text)
    const after = await builder.get("/v1/agents")
    assert.strictEqual(after.status, 401)
    assert.strictEqual(typeOf(after.json), "unauthenticated")
    assert.strictEqual((await gateway.del(`/v1/keys/${created.id}`)).status, 404)
  })

  it("keeps tenants apart: another tenant's agent or session answers 404", async () => {
    const acmeAdmin = makeClient(gateway.url, (await newKey({ role: "admin", tenant: "acme" })).key)
    const agent = decode(
      Agent.Agent,
      (await acmeAdmin.post("/v1/agents", { name: "Acme bot", agent_type: "chat", system_prompt: "Acme only." })).json
    )
    const session = decode(SessionProtocol.TurnResult, (await acmeAdmin.post("/v1/chat", { message: "hello" })).json)

    const fromDefault = [
      await gateway.get(`/v1/agents/${agent.id}`),
      await gateway.get(`/v1/sessions/${session.session_id}`),
      await gateway.post("/v1/chat", { message: "hi", session_id: session.session_id }),
      await gateway.post("/v1/chat", { message: "hi", agent_id: agent.id })
    ]
    for (const answer of fromDefault) {
      assert.strictEqual(answer.status, 404, answer.text)
      assert.strictEqual(typeOf(answer.json), "not_found")
    }
    const defaultAgents = await gateway.get("/v1/agents")
    assert.notInclude(defaultAgents.text, agent.id)

    // An admin of another tenant makes keys of its own tenant only.
    const escalate = await acmeAdmin.post("/v1/keys", { role: "admin", tenant: "default" })
    assert.strictEqual(escalate.status, 403, escalate.text)
    assert.strictEqual((await acmeAdmin.post("/v1/keys", { role: "user" })).status, 201)
  })

  const listed = async (id: string, path = "/v1/keys") => {
    const answer = await gateway.get(path)
    assert.strictEqual(answer.status, 200, answer.text)
    return decode(KeyList, answer.json).data.find((key) => key.id === id)
  }

  it("lists a key's prefix, expiry, models, rate limit and last use, never the key", async () => {
    const created = await newKey({
      role: "user",
      name: "shown",
      expires_in_days: 30,
      models: ["local"],
      rate_limit: { requests_per_minute: 120, burst: 20 }
    })
    const before = await listed(created.id)
    assert.isDefined(before)
    assert.strictEqual(before?.prefix, created.key.slice(0, 11))
    assert.strictEqual(before?.prefix?.startsWith("pa_"), true)
    assert.deepStrictEqual(before?.models, ["local"])
    assert.deepStrictEqual(before?.rate_limit, { requests_per_minute: 120, burst: 20 })
    assert.strictEqual(before?.last_used_at, null)
    const days = (Date.parse(before?.expires_at ?? "") - Date.now()) / 86_400_000
    assert.approximately(days, 30, 0.01)
    assert.notInclude((await gateway.get("/v1/keys")).text, created.key)

    // Used once: last_used_at is written in the background, soon after.
    assert.strictEqual((await makeClient(gateway.url, created.key).get("/v1/models")).status, 200)
    let after = await listed(created.id)
    for (let i = 0; i < 50 && after?.last_used_at === null; i++) {
      await sleep(100)
      after = await listed(created.id)
    }
    assert.isString(after?.last_used_at)
  })

  it("refuses an expired key with the generic 401, and bad expiries, models and rate limits with 400", async () => {
    const soon = new Date(Date.now() + 1500).toISOString()
    const created = await newKey({ role: "user", expires_at: soon })
    const client = makeClient(gateway.url, created.key)
    assert.strictEqual((await client.get("/v1/agents")).status, 200)
    await sleep(Date.parse(soon) - Date.now() + 200)
    const expired = await client.get("/v1/agents")
    assert.strictEqual(expired.status, 401, expired.text)
    assert.strictEqual(typeOf(expired.json), "unauthenticated")
    assert.notInclude(expired.text, "expire")
    // The fast lane refuses it too (it hands the unknown key to the stack).
    const completion = await client.post("/v1/chat/completions", {
      model: "local",
      messages: [{ role: "user", content: "x" }]
    })
    assert.strictEqual(completion.status, 401)

    for (const body of [
      { role: "user", expires_at: "2001-01-01T00:00:00Z" },
      { role: "user", expires_at: "tomorrow" },
      { role: "user", expires_at: "2099-01-01T00:00:00Z", expires_in_days: 3 },
      { role: "user", expires_in_days: 0 },
      { role: "user", models: ["local", "no-such-model"] },
      { role: "user", models: [] },
      { role: "user", rate_limit: { requests_per_minute: 0, burst: 5 } }
    ]) {
      const answer = await gateway.post("/v1/keys", body)
      assert.strictEqual(answer.status, 400, `${JSON.stringify(body)}: ${answer.text}`)
      assert.strictEqual(typeOf(answer.json), "invalid_request")
    }
  })

  it("holds a key to its models on every chat route, the fast lane answering as the stack", async () => {
    const key = (await newKey({ role: "user", models: ["local"] })).key
    const client = makeClient(gateway.url, key)
    assert.strictEqual((await client.post("/v1/chat", { message: "hi" })).status, 200)
    const chat = await client.post("/v1/chat", { message: "hi", model: "gpt-4o-mini" })
    assert.strictEqual(chat.status, 403, chat.text)
    assert.strictEqual(typeOf(chat.json), "forbidden")
    const stream = await client.post("/v1/chat/stream", { message: "hi", model: "gpt-4o-mini" })
    assert.strictEqual(stream.status, 403, stream.text)

    const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }
    // The first request of the key is the stack's (the lane knows only verified keys), the second the lane's.
    const viaStack = await client.post("/v1/chat/completions", body)
    const viaLane = await client.post("/v1/chat/completions", body)
    assert.strictEqual(viaStack.status, 403, viaStack.text)
    assert.strictEqual(viaLane.status, 403, viaLane.text)
    assert.deepStrictEqual(withoutRequestId(viaLane.json), withoutRequestId(viaStack.json))
    assert.include(withoutRequestId(viaLane.json).message, "not allowed for this API key")
    const allowed = await client.post("/v1/chat/completions", { ...body, model: "local" })
    assert.strictEqual(allowed.status, 200, allowed.text)
  })

  it("lets the operator list and revoke another tenant's keys, and nobody else", async () => {
    const globexAdmin = await newKey({ role: "admin", tenant: "globex" })
    const globexUser = await newKey({ role: "user", tenant: "globex" })
    const listedForOperator = await listed(globexUser.id, "/v1/keys?tenant=globex")
    assert.strictEqual(listedForOperator?.tenant, "globex")
    assert.isUndefined(await listed(globexUser.id), "the operator's own listing is its tenant's")

    const asGlobex = makeClient(gateway.url, globexAdmin.key)
    const defaultKey = await newKey({ role: "user", name: "default's" })
    // A tenant admin neither lists nor revokes the default tenant's keys: another tenant's key is not found.
    assert.strictEqual((await asGlobex.get("/v1/keys?tenant=default")).status, 403)
    const touch = await asGlobex.del(`/v1/keys/${defaultKey.id}`)
    assert.strictEqual(touch.status, 404, touch.text)
    assert.strictEqual(typeOf(touch.json), "not_found")
    assert.notInclude((await asGlobex.get("/v1/keys")).text, defaultKey.id)
    // …and manages its own.
    assert.include((await asGlobex.get("/v1/keys")).text, globexUser.id)

    const revoked = await gateway.del(`/v1/keys/${globexUser.id}`)
    assert.strictEqual(revoked.status, 200, revoked.text)
    assert.strictEqual((await makeClient(gateway.url, globexUser.key).get("/v1/agents")).status, 401)
    assert.isUndefined(await listed(globexUser.id, "/v1/keys?tenant=globex"))
  })
})
