/**
 * `POST /v1/chat/completions` driven by the official `openai` SDK, unchanged, against the whole
 * server in-process: the offline `local` model, and a scripted model that calls the client's
 * tools, fails like a provider, or is rate limited — streamed and not.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { LocalModel } from "@polyagent/providers"
import { Server } from "@polyagent/http"
import { AppConfig, ModelCatalog, Usage } from "@polyagent/runtime"
import { Context, Duration, Effect, Exit, Layer, Option, Redacted, Scope, Stream } from "effect"
import { AiError, LanguageModel, type Prompt, type Response } from "effect/ai"
import { HttpServer } from "effect/http"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import OpenAI, { APIError, NotFoundError, RateLimitError } from "openai"
import { newAdminKey } from "../src/harness.ts"

const PROVIDER_TEXT = "upstream says: invalid key sk-live-SECRET"

const info = new ModelCatalog.ModelInfo({
  id: "scripted",
  provider: "scripted",
  description: "Calls get_weather when given tools; fails or rate-limits on request",
  offline: true,
  capabilities: new ModelCatalog.Capabilities({ tools: true, vision: false, streaming: true, context_window: 8192 }),
  cost_per_1k_tokens: new Usage.Price({ input: 0, output: 0 }),
  price_date: null
})

const lastUser = (prompt: Prompt.Prompt): string =>
  prompt.content
    .filter((message) => message.role === "user")
    .flatMap((message) => message.content.flatMap((part) => (part.type === "text" ? [part.text] : [])))
    .at(-1) ?? ""

/** What the tool results in the prompt said, as `name=result`. */
const toolResults = (prompt: Prompt.Prompt): Array<string> =>
  prompt.content.flatMap((message) =>
    message.role === "tool"
      ? message.content.flatMap((part) => (part.type === "tool-result" ? [`${part.name}=${String(part.result)}`] : []))
      : []
  )

const usage = {
  inputTokens: { uncached: 7, total: 7, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 5, text: 5, reasoning: 0 }
}

const failure = (last: string) =>
  AiError.make({
    module: "Scripted",
    method: "call",
    reason: last.startsWith("limit")
      ? new AiError.RateLimitError({ retryAfter: Duration.seconds(7) })
      : new AiError.InternalProviderError({ description: PROVIDER_TEXT })
  })

const scripted = LanguageModel.make({
  generateText: ({ prompt, tools }) => {
    const last = lastUser(prompt)
    if (last.startsWith("fail") || last.startsWith("limit")) return Effect.fail(failure(last))
    if (tools.length > 0) {
      return Effect.succeed<Array<Response.PartEncoded>>([
        { type: "tool-call", id: "call_1", name: "get_weather", params: { city: "Paris" } },
        { type: "finish", reason: "tool-calls", usage }
      ])
    }
    const text = `results: ${toolResults(prompt).join(", ")}`
    return Effect.succeed<Array<Response.PartEncoded>>([
      { type: "text", text },
      { type: "finish", reason: "stop", usage }
    ])
  },
  streamText: ({ prompt, tools }) => {
    const last = lastUser(prompt)
    if (last.startsWith("fail")) return Stream.fail(failure(last))
    if (tools.length === 0)
      return Stream.make<Array<Response.StreamPartEncoded>>({ type: "finish", reason: "stop", usage })
    return Stream.make<Array<Response.StreamPartEncoded>>(
      { type: "tool-params-start", id: "call_1", name: "get_weather" },
      { type: "tool-params-delta", id: "call_1", delta: '{"city":' },
      { type: "tool-params-delta", id: "call_1", delta: '"Paris"}' },
      { type: "tool-params-end", id: "call_1" },
      { type: "tool-call", id: "call_1", name: "get_weather", params: { city: "Paris" } },
      { type: "finish", reason: "tool-calls", usage }
    )
  }
})

const weatherTool: OpenAI.ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
  }
}

describe("POST /v1/chat/completions with the official openai SDK", () => {
  let scope: Scope.Closeable
  let client: OpenAI
  let baseUrl = ""
  let adminKey = ""
  let dataDir = ""

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "polyagent-completions-"))
    adminKey = newAdminKey()
    scope = await Effect.runPromise(Scope.make())
    const url = await Effect.runPromise(
      Effect.gen(function* () {
        const config = yield* AppConfig.make({
          server: { port: 0 },
          storage: { dataDir },
          security: { adminKey: Option.some(Redacted.make(adminKey)) }
        })
        const models = Layer.effect(
          ModelCatalog.ModelCatalog,
          Effect.gen(function* () {
            const local = { info: LocalModel.info, languageModel: yield* LocalModel.make() }
            return ModelCatalog.make([local, { info, languageModel: yield* scripted }], "local")
          })
        )
        const context = yield* Layer.buildWithScope(Server.layer(config, { models }), scope)
        return HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
      })
    )
    baseUrl = url
    client = new OpenAI({ apiKey: adminKey, baseURL: `${url}/v1`, maxRetries: 0 })
  })

  afterAll(async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await rm(dataDir, { recursive: true, force: true })
  })

  it("answers a conversation, with usage", async () => {
    const completion = await client.chat.completions.create({
      model: "local",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
        { role: "user", content: "and now?" }
      ]
    })
    assert.strictEqual(completion.object, "chat.completion")
    assert.strictEqual(completion.model, "local")
    const content = completion.choices[0]?.message.content ?? ""
    assert.include(content, "2 user messages")
    assert.include(content, '"and now?"')
    assert.strictEqual(completion.choices[0]?.finish_reason, "stop")
    const total = (completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0)
    assert.isAbove(total, 0)
    assert.strictEqual(completion.usage?.total_tokens, total)
  })

  it("streams the same answer in chunks, usage last", async () => {
    const messages: Array<OpenAI.ChatCompletionMessageParam> = [{ role: "user", content: "stream this" }]
    const whole = await client.chat.completions.create({ model: "local", messages })
    const stream = await client.chat.completions.create({
      model: "local",
      messages,
      stream: true,
      stream_options: { include_usage: true }
    })
    let text = ""
    let chunks = 0
    let finish: string | null = null
    let streamedUsage: OpenAI.CompletionUsage | undefined
    for await (const chunk of stream) {
      chunks++
      text += chunk.choices[0]?.delta.content ?? ""
      finish = chunk.choices[0]?.finish_reason ?? finish
      streamedUsage = chunk.usage ?? streamedUsage
    }
    assert.isAbove(chunks, 3)
    assert.strictEqual(text, whole.choices[0]?.message.content)
    assert.strictEqual(finish, "stop")
    assert.deepStrictEqual(streamedUsage, whole.usage)
  })

  it("passes the client's tools to the model and returns its tool calls", async () => {
    const completion = await client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "weather in Paris?" }],
      tools: [weatherTool]
    })
    const choice = completion.choices[0]
    assert.strictEqual(choice?.finish_reason, "tool_calls")
    const call = choice?.message.tool_calls?.[0]
    assert.strictEqual(call?.type, "function")
    if (call?.type !== "function") return
    assert.strictEqual(call.function.name, "get_weather")
    assert.deepStrictEqual(JSON.parse(call.function.arguments), { city: "Paris" })
    assert.strictEqual(call.id, "call_1")
  })

  it("streams tool calls with their arguments in pieces", async () => {
    const stream = await client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "weather in Paris?" }],
      tools: [weatherTool],
      stream: true
    })
    const calls = new Map<number, { id: string; name: string; arguments: string }>()
    let finish: string | null = null
    for await (const chunk of stream) {
      for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
        const call = calls.get(delta.index) ?? { id: "", name: "", arguments: "" }
        calls.set(delta.index, {
          id: delta.id ?? call.id,
          name: delta.function?.name ?? call.name,
          arguments: call.arguments + (delta.function?.arguments ?? "")
        })
      }
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    assert.deepStrictEqual([...calls.values()], [{ id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' }])
    assert.strictEqual(finish, "tool_calls")
  })

  it("hands tool results back to the model under the tool's name", async () => {
    const completion = await client.chat.completions.create({
      model: "scripted",
      messages: [
        { role: "user", content: "weather in Paris?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }
          ]
        },
        { role: "tool", tool_call_id: "call_1", content: "sunny, 21°C" }
      ]
    })
    assert.strictEqual(completion.choices[0]?.message.content, "results: get_weather=sunny, 21°C")
  })

  it("runs an agent named as agent:<id>: its system prompt and model, streamed or not", async () => {
    const created = await fetch(`${baseUrl}/v1/agents`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "Terse", agent_type: "chat", system_prompt: "Be terse.", model: "local" })
    })
    assert.strictEqual(created.status, 201)
    const { id } = (await created.json()) as { id: string }
    const completion = await client.chat.completions.create({
      model: `agent:${id}`,
      messages: [{ role: "user", content: "hello" }]
    })
    assert.strictEqual(completion.model, `agent:${id}`)
    assert.include(completion.choices[0]?.message.content ?? "", 'System prompt: "Be terse."')
    const stream = await client.chat.completions.create({
      model: `agent:${id}`,
      messages: [{ role: "user", content: "hello" }],
      stream: true
    })
    let text = ""
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ""
    assert.strictEqual(text, completion.choices[0]?.message.content)
    const missing = await client.chat.completions
      .create({ model: "agent:agent_nope", messages: [{ role: "user", content: "x" }] })
      .then(
        () => undefined,
        (caught: unknown) => caught
      )
    assert.instanceOf(missing, NotFoundError)
  })

  const post = (body: string, headers: Record<string, string>) =>
    fetch(`${baseUrl}/v1/chat/completions`, { method: "POST", body, headers }).then(async (response) => ({
      status: response.status,
      body: (await response.json()) as { error: { type: string; message: string; request_id: string } }
    }))

  it("answers bad requests with the envelope: 401 without a key, 400 for a bad body", async () => {
    const json = { "content-type": "application/json", authorization: `Bearer ${adminKey}` }
    const valid = JSON.stringify({ model: "local", messages: [{ role: "user", content: "hi" }] })

    const anonymous = await post(valid, { "content-type": "application/json" })
    assert.strictEqual(anonymous.status, 401)
    assert.strictEqual(anonymous.body.error.type, "unauthenticated")

    for (const [body, headers, says] of [
      ["{not json", json, "not valid JSON"],
      [valid, { ...json, "content-type": "text/plain" }, "must be JSON"],
      [JSON.stringify({ model: "local", messages: [] }), json, "messages"],
      [JSON.stringify({ model: "local", messages: [{ role: "user", content: "hi" }], temperature: 9 }), json, "2"],
      ["[1, 2]", json, "invalid body"]
    ] as const) {
      const answer = await post(body, headers)
      assert.strictEqual(answer.status, 400, body)
      assert.strictEqual(answer.body.error.type, "invalid_request")
      assert.include(answer.body.error.message, says)
      assert.match(answer.body.error.request_id, /^req_/)
    }
  })

  it("answers an unknown model with 404 not_found", async () => {
    const error = await client.chat.completions
      .create({ model: "gpt-99", messages: [{ role: "user", content: "x" }] })
      .then(
        () => undefined,
        (caught: unknown) => caught
      )
    assert.instanceOf(error, NotFoundError)
  })

  it("turns a provider failure into 502 upstream_error without the provider's text", async () => {
    const error = await client.chat.completions
      .create({ model: "scripted", messages: [{ role: "user", content: "fail please" }] })
      .then(
        () => undefined,
        (caught: unknown) => caught
      )
    assert.instanceOf(error, APIError)
    if (!(error instanceof APIError)) return
    assert.strictEqual(error.status, 502)
    assert.notInclude(JSON.stringify(error.error), "sk-live")
    assert.notInclude(error.message, PROVIDER_TEXT)
  })

  it("passes a provider's rate limit on as 429 with Retry-After", async () => {
    const error = await client.chat.completions
      .create({ model: "scripted", messages: [{ role: "user", content: "limit me" }] })
      .then(
        () => undefined,
        (caught: unknown) => caught
      )
    assert.instanceOf(error, RateLimitError)
    if (!(error instanceof RateLimitError)) return
    assert.strictEqual(error.headers.get("retry-after"), "7")
  })

  it("ends a stream that fails upstream with an error the SDK raises", async () => {
    const stream = await client.chat.completions.create({
      model: "scripted",
      messages: [{ role: "user", content: "fail while streaming" }],
      tools: [weatherTool],
      stream: true
    })
    const error = await (async () => {
      for await (const _ of stream) {
        // drain
      }
    })().then(
      () => undefined,
      (caught: unknown) => caught
    )
    assert.instanceOf(error, APIError)
    assert.notInclude(String(error), PROVIDER_TEXT)
  })
})
