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
})
