/**
 * `/v1/agents` over a real socket against the real server, and a chat that runs with an
 * agent: its system prompt reaches the model (the offline `local` model quotes it).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Agent, SessionProtocol } from "@polyagent/runtime"
import { Schema } from "effect"
import { decode, ErrorEnvelope, Gateway } from "../src/harness.ts"

const AgentList = Schema.Struct({ data: Schema.Array(Agent.Agent) })

describe("/v1/agents", () => {
  let gateway: Gateway

  beforeAll(async () => {
    gateway = await Gateway.start()
  })

  afterAll(async () => {
    await gateway?.dispose()
  })

  it("creates, reads, lists, changes and deletes an agent", async () => {
    const created = await gateway.post("/v1/agents", {
      name: "Tutor",
      agent_type: "chat",
      system_prompt: "You teach maths.",
      parameters: { temperature: 0.2 }
    })
    assert.strictEqual(created.status, 201, created.text)
    const agent = decode(Agent.Agent, created.json)
    assert.match(agent.id, /^agent_/)
    assert.strictEqual(agent.model, null)
    assert.isFalse(agent.tools_enabled)

    const read = await gateway.get(`/v1/agents/${agent.id}`)
    assert.deepStrictEqual(decode(Agent.Agent, read.json), agent)
    const listed = decode(AgentList, (await gateway.get("/v1/agents")).json)
    assert.include(
      listed.data.map((entry) => entry.id),
      agent.id
    )

    const patched = await gateway.request("PATCH", `/v1/agents/${agent.id}`, JSON.stringify({ name: "Maths tutor" }), {
      headers: { "content-type": "application/json" }
    })
    assert.strictEqual(patched.status, 200, patched.text)
    const changed = decode(Agent.Agent, patched.json)
    assert.strictEqual(changed.name, "Maths tutor")
    assert.strictEqual(changed.system_prompt, "You teach maths.")

    const deleted = await gateway.del(`/v1/agents/${agent.id}`)
    assert.strictEqual(deleted.status, 200, deleted.text)
    const gone = await gateway.get(`/v1/agents/${agent.id}`)
    assert.strictEqual(gone.status, 404)
    assert.strictEqual(decode(ErrorEnvelope, gone.json).error.type, "not_found")
  })

  it("refuses a malformed agent with the envelope", async () => {
    const answer = await gateway.post("/v1/agents", { name: "", agent_type: "robot", system_prompt: "x" })
    assert.strictEqual(answer.status, 400, answer.text)
    assert.strictEqual(decode(ErrorEnvelope, answer.json).error.type, "invalid_request")
  })

  it("runs a chat with the agent's system prompt, keeps the agent for the session, refuses another", async () => {
    const agent = decode(
      Agent.Agent,
      (await gateway.post("/v1/agents", { name: "Brief", agent_type: "chat", system_prompt: "Answer briefly." })).json
    )
    const first = await gateway.post("/v1/chat", { message: "hello", agent_id: agent.id })
    assert.strictEqual(first.status, 200, first.text)
    const turn = decode(SessionProtocol.TurnResult, first.json)
    assert.include(turn.message.content, 'System prompt: "Answer briefly."')
    const second = decode(
      SessionProtocol.TurnResult,
      (await gateway.post("/v1/chat", { message: "and now?", session_id: turn.session_id })).json
    )
    assert.include(second.message.content, 'System prompt: "Answer briefly."')
    assert.include(second.message.content, "2 user messages")

    const other = await gateway.post("/v1/chat", { message: "x", session_id: turn.session_id, agent_id: "agent_other" })
    assert.strictEqual(other.status, 409, other.text)
    assert.strictEqual(decode(ErrorEnvelope, other.json).error.type, "conflict")

    const unknown = await gateway.post("/v1/chat", { message: "x", agent_id: "agent_missing" })
    assert.strictEqual(unknown.status, 404, unknown.text)
  })
})
