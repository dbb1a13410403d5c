/**
 * Per-user memory through the real server: an agent with memory stores a fact about a user
 * (the `remember` tool, called here by the offline model) and recalls it in that user's later
 * sessions, and only in theirs.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Agent, SessionProtocol } from "@polyagent/runtime"
import { decode, Gateway } from "../src/harness.ts"

describe("per-user memory", () => {
  let gateway: Gateway

  beforeAll(async () => {
    gateway = await Gateway.start()
  })

  afterAll(async () => {
    await gateway?.dispose()
  })

  it("remembers a fact for one user and recalls it in that user's next sessions only", async () => {
    const agent = decode(
      Agent.Agent,
      (
        await gateway.post("/v1/agents", {
          name: "Barista",
          agent_type: "chat",
          system_prompt: "Be kind.",
          memory: { enabled: true }
        })
      ).json
    )
    const chat = async (message: string, user: string) => {
      const answer = await gateway.post("/v1/chat", { message, agent_id: agent.id, metadata: { user_id: user } })
      assert.strictEqual(answer.status, 200, answer.text)
      return decode(SessionProtocol.TurnResult, answer.json)
    }

    const stored = await chat('call remember({"fact":"likes green tea"})', "u1")
    assert.deepStrictEqual(
      stored.tool_calls.map((result) => [result.name, result.status]),
      [["remember", "ok"]]
    )

    const later = await chat("hello again", "u1")
    assert.include(later.message.content, "likes green tea")
    assert.notStrictEqual(later.session_id, stored.session_id, "a new session")

    const stranger = await chat("hello", "u2")
    assert.notInclude(stranger.message.content, "green tea")
  })
})
