/**
 * The tool-call loop through the real server, offline: an agent with tools, the `local` model
 * asking for them (`call name({...})`), the executor running them — one succeeds, one fails on
 * purpose, one times out, one throws — every result stored under its call id, and the turn
 * finishing with the model's report of the results. Streamed, the events come in order.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Agent, Session, SessionProtocol } from "@polyagent/runtime"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { readFile } from "node:fs/promises"
import OpenAI, { BadRequestError } from "openai"
import { decode, Gateway, readSse, repoRoot } from "../src/harness.ts"

const plugin = resolve(repoRoot, "tests/fixtures/test-tools-plugin.mjs")
const directives = 'call add({"a":2,"b":3}) call fail({}) call slow({}) call boom({})'

describe("the tool-call loop", () => {
  let configDir = ""
  let gateway: Gateway
  let agentId = ""

  beforeAll(async () => {
    configDir = await mkdtemp(join(tmpdir(), "polyagent-tools-"))
    const config = join(configDir, "polyagent.yaml")
    await writeFile(config, `plugins: ["${plugin}"]\ntools:\n  timeout: 3s\n`)
    gateway = await Gateway.start({ env: { POLYAGENT_CONFIG: config } })
    const created = await gateway.post("/v1/agents", {
      name: "Calculator",
      agent_type: "tool_calling",
      system_prompt: "Use your tools.",
      tools: ["add", "fail", "slow", "boom", "tick"]
    })
    assert.strictEqual(created.status, 201, created.text)
    agentId = decode(Agent.Agent, created.json).id
  })

  afterAll(async () => {
    await gateway?.dispose()
    await rm(configDir, { recursive: true, force: true })
  })

  it("runs the calls, stores each result under its call id, and finishes the turn", async () => {
    const answer = await gateway.post("/v1/chat", { message: directives, agent_id: agentId })
    assert.strictEqual(answer.status, 200, answer.text)
    const turn = decode(SessionProtocol.TurnResult, answer.json)
    const byName = new Map(turn.tool_calls.map((result) => [result.name, result]))
    const add = byName.get("add")
    assert.deepStrictEqual(add?.status === "ok" ? JSON.parse(add.result) : undefined, { sum: 5 })
    const errors = Object.fromEntries(
      ["fail", "slow", "boom"].map((name) => {
        const result = byName.get(name)
        return [name, result?.status === "error" ? result.error.type : "missing"]
      })
    )
    assert.deepStrictEqual(errors, { fail: "failed", slow: "timeout", boom: "failed" })
    assert.notInclude(answer.text, "kaboom", "a throwing tool's message stays in the logs")
    assert.include(turn.message.content, "tool results: add → ")
    assert.include(turn.message.content, '{"sum":5}')

    const session = decode(Session.Session, (await gateway.get(`/v1/sessions/${turn.session_id}`)).json)
    assert.deepStrictEqual(
      session.messages.map((message) => message.role),
      ["user", "assistant", "tool", "tool", "tool", "tool", "assistant"]
    )
    const asked = session.messages[1]?.tool_calls ?? []
    assert.deepStrictEqual(
      asked.map((call) => call.name),
      ["add", "fail", "slow", "boom"]
    )
    // Results are stored as each call finishes, so in finishing order: the slow one last.
    const answered = session.messages.slice(2, 6).map((message) => message.tool_call_id)
    assert.sameMembers(
      answered,
      asked.map((call) => call.id)
    )
    assert.strictEqual(answered.at(-1), asked[2]?.id, "the call that timed out is stored last")
  })

  it("streams tool_call and tool_result events before the answer", async () => {
    const events = await readSse(
      await gateway.stream("/v1/chat/stream", { message: 'call add({"a":1,"b":1})', agent_id: agentId })
    )
    const names = events.map((event) => event.event)
    assert.deepStrictEqual(names.slice(0, 3), ["session", "tool_call", "tool_result"])
    assert.deepStrictEqual(names.slice(-2), ["usage", "done"])
    assert.include(names, "delta")
    const done = decode(SessionProtocol.TurnResult, events.at(-1)?.data)
    assert.strictEqual(done.tool_calls.length, 1)
    assert.include(done.message.content, '{"sum":2}')
  })

  it("a kill -9 in the middle of the tool calls: after the restart the turn completes, each tool ran once", async () => {
    const ticks = join(configDir, "ticks.txt")
    await writeFile(ticks, "")
    const fast = JSON.stringify({ file: ticks, id: "fast", delay_ms: 0 })
    const slowTick = JSON.stringify({ file: ticks, id: "slow", delay_ms: 1500 })
    const created = await gateway.post("/v1/agents", {
      name: "Ticker",
      agent_type: "tool_calling",
      system_prompt: "",
      tools: ["tick"]
    })
    const ticker = decode(Agent.Agent, created.json).id
    const first = decode(
      SessionProtocol.TurnResult,
      (await gateway.post("/v1/chat", { message: "hi", agent_id: ticker })).json
    )
    const sessionId = first.session_id
    // The turn's answer never comes: the server dies while the slow call runs.
    const pending = gateway.post("/v1/chat", {
      message: `call tick(${fast}) call tick(${slowTick})`,
      session_id: sessionId
    })
    pending.catch(() => undefined)
    const fastDone = async () => (await readFile(ticks, "utf8")).includes("fast")
    for (let i = 0; i < 100 && !(await fastDone()); i++) await new Promise((r) => setTimeout(r, 20))
    assert.isTrue(await fastDone(), "the fast call finished before the crash")
    await new Promise((r) => setTimeout(r, 200))
    await gateway.crashAndRestart()

    // The restarted server finds the interrupted turn and finishes it by itself.
    let finished: Session.Session | undefined
    for (let i = 0; i < 150 && finished === undefined; i++) {
      const session = decode(Session.Session, (await gateway.get(`/v1/sessions/${sessionId}`)).json)
      const last = session.messages.at(-1)
      if (last?.role === "assistant" && last.tool_calls === null && session.messages.length > 2) finished = session
      else await new Promise((r) => setTimeout(r, 100))
    }
    assert.isDefined(finished, "the interrupted turn was completed after the restart")
    const lines = (await readFile(ticks, "utf8")).trim().split("\n").sort()
    assert.deepStrictEqual(lines, ["fast", "slow"], "each tool finished exactly once")
    const roles = finished?.messages.map((message) => message.role)
    assert.deepStrictEqual(roles, ["user", "assistant", "user", "assistant", "tool", "tool", "assistant"])
    assert.include(finished?.messages.at(-1)?.content ?? "", "tool results: tick")
  })

  it("runs an agent's server-side tools behind the OpenAI-compatible route, for the official SDK", async () => {
    const client = new OpenAI({ apiKey: gateway.adminKey, baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    const messages: Array<OpenAI.ChatCompletionMessageParam> = [{ role: "user", content: 'call add({"a":20,"b":22})' }]
    const completion = await client.chat.completions.create({ model: `agent:${agentId}`, messages })
    const answer = completion.choices[0]?.message
    assert.include(answer?.content ?? "", '{"sum":42}')
    assert.isUndefined(answer?.tool_calls, "server-side tool calls stay on the server")
    assert.strictEqual(completion.choices[0]?.finish_reason, "stop")

    const stream = await client.chat.completions.create({ model: `agent:${agentId}`, messages, stream: true })
    let text = ""
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ""
    assert.strictEqual(text, answer?.content)

    const mixed = await client.chat.completions
      .create({
        model: `agent:${agentId}`,
        messages,
        tools: [{ type: "function", function: { name: "mine", parameters: { type: "object", properties: {} } } }]
      })
      .then(
        () => undefined,
        (caught: unknown) => caught
      )
    assert.instanceOf(mixed, BadRequestError)
  })

  it("answers without tools when the agent enables none", async () => {
    const plain = decode(
      Agent.Agent,
      (await gateway.post("/v1/agents", { name: "Plain", agent_type: "chat", system_prompt: "" })).json
    )
    const turn = decode(
      SessionProtocol.TurnResult,
      (await gateway.post("/v1/chat", { message: 'call add({"a":2,"b":3})', agent_id: plain.id })).json
    )
    assert.deepStrictEqual(turn.tool_calls, [])
    assert.include(turn.message.content, "You said:")
  })
})
