/**
 * Routing through the real server, against fake OpenAI and Anthropic upstreams: an upstream 429
 * answers 429 with `Retry-After` on every route; a model's fallbacks take over before its first
 * token and after it (the stream goes on, and says so on `/v1/chat/stream`); the answer names the
 * model that gave it (`X-PolyAgent-Model`, the stored turn); `agent:<id>` runs the runtime's agent
 * turn, `remember` included.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Agent, Session, SessionProtocol } from "@polyagent/runtime"
import { AnthropicWire, FakeUpstream, OpenAiWire } from "@polyagent/providers/testing"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { decode, Gateway, readSse } from "../src/harness.ts"

const config = `
routing:
  fallbacks:
    gpt-4o-mini: [claude-haiku-4-5]
  routes:
    cheapest:
      strategy: cost
      candidates: [gpt-5.4-nano, gpt-4o-mini]
`

describe("routing", () => {
  let openai: FakeUpstream.FakeUpstream
  let anthropic: FakeUpstream.FakeUpstream
  let gateway: Gateway
  let dir = ""

  beforeAll(async () => {
    openai = await FakeUpstream.start(OpenAiWire.routes("/v1"))
    anthropic = await FakeUpstream.start(AnthropicWire.routes())
    dir = await mkdtemp(join(tmpdir(), "polyagent-routing-"))
    await writeFile(join(dir, "polyagent.yaml"), config)
    gateway = await Gateway.start({
      env: {
        POLYAGENT_CONFIG: join(dir, "polyagent.yaml"),
        OPENAI_API_KEY: "sk-test",
        OPENAI_BASE_URL: `${openai.url}/v1`,
        ANTHROPIC_API_KEY: "sk-ant-test",
        ANTHROPIC_BASE_URL: anthropic.url
      }
    })
  })

  afterAll(async () => {
    await gateway?.dispose()
    await openai?.close()
    await anthropic?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it("an upstream 429 is a 429 with Retry-After on every route", async () => {
    const message = `hi ${OpenAiWire.Scenario.rateLimited}`
    const answers = [
      await gateway.post("/v1/chat", { message, model: "gpt-5.4-nano" }),
      await gateway.post("/v1/chat/completions", {
        model: "gpt-5.4-nano",
        messages: [{ role: "user", content: message }]
      }),
      await gateway.post("/v1/chat/completions", {
        model: "gpt-5.4-nano",
        stream: true,
        messages: [{ role: "user", content: message }]
      })
    ]
    for (const answer of answers) {
      assert.strictEqual(answer.status, 429, answer.text)
      assert.strictEqual(answer.headers.get("retry-after"), "7")
      assert.strictEqual((answer.json as { error: { type: string } }).error.type, "rate_limited")
    }
    const stream = await gateway.stream("/v1/chat/stream", { message, model: "gpt-5.4-nano" })
    assert.strictEqual(stream.status, 429)
    assert.strictEqual(stream.headers.get("retry-after"), "7")
  })

  it("a model's fallback answers when it fails before its first token, and the answer names it", async () => {
    const message = `hi ${OpenAiWire.Scenario.rateLimited}`
    const chat = await gateway.post("/v1/chat", { message, model: "gpt-4o-mini" })
    assert.strictEqual(chat.status, 200, chat.text)
    const turn = decode(SessionProtocol.TurnResult, chat.json)
    assert.strictEqual(turn.model, "claude-haiku-4-5")
    assert.strictEqual(turn.message.content, AnthropicWire.answerText)
    assert.strictEqual(chat.headers.get("x-polyagent-model"), "claude-haiku-4-5")

    const completion = await gateway.post("/v1/chat/completions", {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: message }]
    })
    assert.strictEqual(completion.status, 200, completion.text)
    assert.strictEqual(completion.headers.get("x-polyagent-model"), "claude-haiku-4-5")
    const body = completion.json as { model: string; choices: Array<{ message: { content: string } }> }
    assert.strictEqual(body.choices[0]?.message.content, AnthropicWire.answerText)
  })

  it("a stream cut after its first token goes on with the fallback: one answer, a failover event, both models stored", async () => {
    const message = `hi ${OpenAiWire.Scenario.drop}`
    const response = await gateway.stream("/v1/chat/stream", { message, model: "gpt-4o-mini" })
    assert.strictEqual(response.status, 200)
    assert.strictEqual(response.headers.get("x-polyagent-model"), "gpt-4o-mini")
    const events = await readSse(response)
    const names = events.map((event) => event.event)
    assert.deepStrictEqual(names.filter((name) => name === "failover").length, 1, names.join(","))
    const failover = events.find((event) => event.event === "failover")
    assert.deepStrictEqual(failover?.data, { from: "gpt-4o-mini", to: "claude-haiku-4-5" })
    const text = events.flatMap((event) =>
      event.event === "delta" ? [(event.data as { content: string }).content] : []
    )
    assert.strictEqual(text.join(""), `Hel${AnthropicWire.answerText}`)
    const done = decode(SessionProtocol.TurnResult, events.at(-1)?.data)
    assert.strictEqual(done.message.content, `Hel${AnthropicWire.answerText}`)
    assert.strictEqual(done.model, "claude-haiku-4-5")
    // The fallback was asked to continue the text so far.
    assert.include(JSON.stringify(anthropic.received.at(-1)?.body), "Continue it exactly where it stops")

    const stored = decode(Session.Session, (await gateway.get(`/v1/sessions/${done.session_id}`)).json)
    const answer = stored.messages.at(-1)
    assert.strictEqual(answer?.content, `Hel${AnthropicWire.answerText}`)
    assert.deepStrictEqual(answer?.models, ["gpt-4o-mini", "claude-haiku-4-5"])
  })

  it("a relayed completion stream cut after its first token simply continues on the fallback", async () => {
    const response = await gateway.stream("/v1/chat/completions", {
      model: "gpt-4o-mini",
      stream: true,
      messages: [{ role: "user", content: `hi ${OpenAiWire.Scenario.drop}` }]
    })
    assert.strictEqual(response.status, 200)
    const events = await readSse(response)
    const content = events
      .flatMap((event) => {
        const data = event.data as { choices?: Array<{ delta?: { content?: string } }> }
        return typeof data === "object" ? (data.choices ?? []).map((choice) => choice.delta?.content ?? "") : []
      })
      .join("")
    assert.strictEqual(content, `Hel${AnthropicWire.answerText}`)
    assert.strictEqual(events.filter((event) => event.data === "[DONE]").length, 1)
    assert.isFalse(events.some((event) => event.event === "error"))
  })

  it("a route orders its candidates by its strategy", async () => {
    const answer = await gateway.post("/v1/chat", { message: "hello", model: "cheapest" })
    assert.strictEqual(answer.status, 200, answer.text)
    assert.strictEqual(decode(SessionProtocol.TurnResult, answer.json).model, "gpt-4o-mini")
    const unknown = await gateway.post("/v1/chat", { message: "hello", model: "nope" })
    assert.strictEqual(unknown.status, 404)
  })

  it("agent:<id> on /v1/chat/completions runs the runtime's agent turn: remember works there too", async () => {
    const created = await gateway.post("/v1/agents", {
      name: "Barista",
      agent_type: "chat",
      system_prompt: "Be kind.",
      model: "local",
      memory: { enabled: true }
    })
    assert.strictEqual(created.status, 201, created.text)
    const agent = decode(Agent.Agent, created.json)
    const ask = (content: string) =>
      gateway.post("/v1/chat/completions", {
        model: `agent:${agent.id}`,
        user: "u-routing",
        messages: [{ role: "user", content }]
      })
    const stored = await ask('call remember({"fact":"likes oolong"})')
    assert.strictEqual(stored.status, 200, stored.text)
    assert.strictEqual(stored.headers.get("x-polyagent-model"), "local")
    const later = await ask("hello again")
    const body = later.json as { model: string; choices: Array<{ message: { content: string } }> }
    assert.strictEqual(body.model, `agent:${agent.id}`)
    assert.include(body.choices[0]?.message.content ?? "", "likes oolong")
  })
})
