/**
 * The real server (`npm start`) with every provider enabled and pointed at local fake servers
 * that speak OpenAI Chat Completions (OpenAI, OpenRouter, GLM) and Anthropic Messages: chat
 * and streamed chat through the session actor report the right model, provider, usage and
 * cost; an upstream 500 is a 502 without the upstream's text; the request id travels
 * upstream; and the official `openai` SDK gets an Anthropic model's answer in OpenAI's format.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { ModelHealth, SessionProtocol, Usage } from "@polyagent/runtime"
import { Schema } from "effect"
import OpenAI, { RateLimitError } from "openai"
import { AnthropicWire as Anthropic, FakeUpstream, OpenAiWire } from "@polyagent/providers/testing"
import { decode, ErrorEnvelope, Gateway, readSse, withoutBreakers } from "../src/harness.ts"

interface Case {
  readonly provider: string
  readonly model: string
  /** The fake's answer, and its usage as PolyAgent reports it. */
  readonly answer: string
  readonly usage: Usage.Usage
  /** USD per 1k tokens of `model` in config/models.yaml. */
  readonly price: Usage.Price
  readonly serverError: string
}

// The fake reports cached and reasoning shares, which are priced at their own rates.
const openAiUsage = Usage.make(OpenAiWire.usage.prompt_tokens, OpenAiWire.usage.completion_tokens, {
  cached: OpenAiWire.usage.prompt_tokens_details.cached_tokens,
  reasoning: OpenAiWire.usage.completion_tokens_details.reasoning_tokens
})
const cases: ReadonlyArray<Case> = [
  {
    provider: "openai",
    model: "gpt-4o-mini",
    answer: OpenAiWire.answerText,
    usage: openAiUsage,
    price: new Usage.Price({ input: 0.00015, output: 0.0006, cached_input: 0.000075 }),
    serverError: OpenAiWire.Scenario.serverError
  },
  {
    provider: "anthropic",
    model: "claude-haiku-4-5",
    answer: Anthropic.answerText,
    // Anthropic reports cache reads and writes apart from `input_tokens`; all of them are input.
    usage: Usage.make(
      Anthropic.usage.input_tokens +
        Anthropic.usage.cache_read_input_tokens +
        Anthropic.usage.cache_creation_input_tokens,
      Anthropic.usage.output_tokens,
      { cached: Anthropic.usage.cache_read_input_tokens }
    ),
    price: new Usage.Price({ input: 0.001, output: 0.005, cached_input: 0.0001 }),
    serverError: Anthropic.faults.serverError
  },
  {
    provider: "openrouter",
    model: "meta-llama/llama-3.3-70b-instruct",
    answer: OpenAiWire.answerText,
    usage: openAiUsage,
    price: new Usage.Price({ input: 0.00013, output: 0.0004 }),
    serverError: OpenAiWire.Scenario.serverError
  },
  {
    provider: "glm",
    model: "glm-4.7",
    answer: OpenAiWire.answerText,
    // GLM reports the cached share only.
    usage: Usage.make(OpenAiWire.usage.prompt_tokens, OpenAiWire.usage.completion_tokens, {
      cached: OpenAiWire.usage.prompt_tokens_details.cached_tokens
    }),
    price: new Usage.Price({ input: 0.0006, output: 0.0022 }),
    serverError: OpenAiWire.Scenario.serverError
  }
]

const Models = Schema.Struct({
  data: Schema.Array(Schema.Struct({ id: Schema.String, provider: Schema.String, status: Schema.String }))
})

const HealthReport = ModelHealth.HealthReport

const costOf = ({ usage, price }: Case): number => Usage.cost(usage, price)

describe("providers through the real server", () => {
  let openAiFake: FakeUpstream.FakeUpstream
  let anthropicFake: FakeUpstream.FakeUpstream
  let gateway: Gateway

  beforeAll(async () => {
    openAiFake = await FakeUpstream.start({
      ...OpenAiWire.routes("/v1"),
      ...OpenAiWire.routes("/api/v1"),
      ...OpenAiWire.routes("/api/paas/v4", { flavor: "glm" })
    })
    anthropicFake = await FakeUpstream.start(Anthropic.routes())
    gateway = await Gateway.start({
      // These tests make upstreams fail on purpose, again and again: breakers must not open here.
      config: withoutBreakers,
      env: {
        OPENAI_API_KEY: "sk-openai-test-key",
        OPENAI_BASE_URL: `${openAiFake.url}/v1`,
        OPENROUTER_API_KEY: "sk-or-test-key",
        OPENROUTER_BASE_URL: `${openAiFake.url}/api/v1`,
        GLM_API_KEY: "glm-test-key",
        GLM_BASE_URL: `${openAiFake.url}/api/paas/v4`,
        ANTHROPIC_API_KEY: "sk-ant-test-key",
        ANTHROPIC_BASE_URL: anthropicFake.url
      }
    })
  })

  afterAll(async () => {
    await gateway?.dispose()
    await openAiFake?.close()
    await anthropicFake?.close()
  })

  const fakeOf = (testCase: Case) => (testCase.provider === "anthropic" ? anthropicFake : openAiFake)

  describe.each(cases)("$provider ($model)", (testCase) => {
    it("answers a chat turn with the model's provider, usage and cost", async () => {
      const answer = await gateway.post("/v1/chat", { message: "hello", model: testCase.model })
      assert.strictEqual(answer.status, 200, answer.text)
      const turn = decode(SessionProtocol.TurnResult, answer.json)
      assert.strictEqual(turn.message.content, testCase.answer)
      assert.strictEqual(turn.model, testCase.model)
      assert.strictEqual(turn.provider, testCase.provider)
      assert.deepStrictEqual({ ...turn.usage }, { ...testCase.usage })
      assert.strictEqual(turn.cost_usd, costOf(testCase))
      const upstream = fakeOf(testCase).received.at(-1)
      assert.strictEqual(upstream?.headers["x-request-id"], answer.headers.get("x-request-id"))
    })

    it("streams a chat turn through the session actor", async () => {
      const events = await readSse(await gateway.stream("/v1/chat/stream", { message: "hello", model: testCase.model }))
      const names = events.map((event) => event.event)
      assert.strictEqual(names[0], "session")
      assert.deepStrictEqual(names.slice(-2), ["usage", "done"])
      const deltas = events.flatMap((event) =>
        event.event === "delta" && typeof event.data === "object" && event.data !== null && "content" in event.data
          ? [String(event.data.content)]
          : []
      )
      assert.isAbove(deltas.length, 1)
      const done = decode(SessionProtocol.TurnResult, events.at(-1)?.data)
      assert.strictEqual(deltas.join(""), testCase.answer)
      assert.strictEqual(done.message.content, testCase.answer)
      assert.strictEqual(done.provider, testCase.provider)
      assert.strictEqual(done.cost_usd, costOf(testCase))
    })

    it("answers an upstream 500 with 502 upstream_error and none of the upstream's text", async () => {
      const answer = await gateway.post("/v1/chat", { message: `hello ${testCase.serverError}`, model: testCase.model })
      assert.strictEqual(answer.status, 502, answer.text)
      const envelope = decode(ErrorEnvelope, answer.json)
      assert.strictEqual(envelope.error.type, "upstream_error")
      assert.match(envelope.error.message, /failed: overloaded/)
      for (const leaked of ["sk-", "test-key", "Internal", "server error", "api_error"]) {
        assert.notInclude(answer.text, leaked)
      }
    })
  })

  it("serves each model's health, fed by its calls and probes, and lists the same status in /v1/models", async () => {
    for (const testCase of cases) {
      const path = `/v1/models/${encodeURIComponent(testCase.model)}/health`
      let report = decode(HealthReport, (await gateway.get(path)).json)
      // The first probes run at start-up; the calls of the tests above count too.
      for (let attempt = 0; attempt < 50 && report.requests === 0; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        report = decode(HealthReport, (await gateway.get(path)).json)
      }
      assert.strictEqual(report.id, testCase.model)
      assert.isAbove(report.requests, 0)
      assert.strictEqual(report.circuit, "closed")
      assert.strictEqual(report.window_s, 60)
      const listed = decode(Models, (await gateway.get("/v1/models")).json).data
      assert.strictEqual(listed.find((entry) => entry.id === testCase.model)?.status, report.status)
    }
    const unknown = await gateway.get("/v1/models/no-such-model/health")
    assert.strictEqual(unknown.status, 404, unknown.text)
    assert.strictEqual(decode(ErrorEnvelope, unknown.json).error.type, "not_found")
  })

  it("relays /v1/chat/completions to OpenAI-family models: the client's fields go upstream, the answer comes back", async () => {
    const client = new OpenAI({ apiKey: gateway.adminKey, baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    for (const model of ["gpt-4o-mini", "glm-4.7"]) {
      const before = openAiFake.received.length
      const completion = await client.chat.completions.create(
        { model, messages: [{ role: "user", content: "hello" }], seed: 7, max_tokens: 20 },
        { headers: { "x-request-id": `relay-${model}` } }
      )
      assert.strictEqual(completion.choices[0]?.message.content, OpenAiWire.answerText)
      assert.strictEqual(completion.usage?.prompt_tokens, OpenAiWire.usage.prompt_tokens)
      const sent = openAiFake.received[before]
      const body = sent?.body as Record<string, unknown>
      // Fields PolyAgent does not know pass through; the token limit follows the provider's quirks.
      assert.strictEqual(body.seed, 7)
      assert.strictEqual(body[model === "glm-4.7" ? "max_tokens" : "max_completion_tokens"], 20)
      assert.strictEqual(sent?.headers["x-request-id"], `relay-${model}`)
    }

    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hello" }],
      stream: true,
      stream_options: { include_usage: true }
    })
    let text = ""
    let usage: OpenAI.CompletionUsage | undefined
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ""
      usage = chunk.usage ?? usage
    }
    assert.strictEqual(text, OpenAiWire.answerText)
    assert.strictEqual(usage?.completion_tokens, OpenAiWire.usage.completion_tokens)
  })

  const newKey = async () => {
    const created = await fetch(`${gateway.url}/v1/keys`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${gateway.adminKey}` },
      body: JSON.stringify({ role: "user", name: "lane" })
    })
    return (await created.json()) as { id: string; key: string }
  }

  const post = (content: string, stream: boolean, signal?: AbortSignal) =>
    fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      ...(signal === undefined ? {} : { signal }),
      headers: { "content-type": "application/json", authorization: `Bearer ${gateway.adminKey}` },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }], stream })
    })

  it("answers relayed failures with the envelope, never the upstream's text", async () => {
    const limited = await post(`please ${OpenAiWire.Scenario.rateLimited}`, false)
    assert.strictEqual(limited.status, 429)
    assert.isNotNull(limited.headers.get("retry-after"))
    assert.match(limited.headers.get("x-request-id") ?? "", /^req_/)
    assert.strictEqual(decode(ErrorEnvelope, await limited.json()).error.type, "rate_limited")

    const failed = await post(`please ${OpenAiWire.Scenario.serverError}`, false)
    assert.strictEqual(failed.status, 502)
    const text = await failed.text()
    assert.strictEqual(decode(ErrorEnvelope, JSON.parse(text)).error.type, "upstream_error")
    assert.notInclude(text, "sk-openai-test-key")

    const malformed = await post(`please ${OpenAiWire.Scenario.malformed}`, false)
    assert.strictEqual(malformed.status, 502)

    // Cut mid-stream: what arrived is passed on, then an `error` event ends the stream.
    const dropped = await post(`please ${OpenAiWire.Scenario.drop}`, true)
    assert.strictEqual(dropped.status, 200)
    const events = await dropped.text()
    assert.include(events, "event: error")
    assert.include(events, "upstream_error")
  })

  it("answers a relayed request the same before and after its key is verified (the fast lane)", async () => {
    // A new key is verified by the full stack on its first request, then served by the fast lane.
    for (const stream of [false, true]) {
      const { id, key } = await newKey()
      const ask = (requestId: string, content = "hello") =>
        fetch(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${key}`, "x-request-id": requestId },
          body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }], stream })
        })
      for (const requestId of ["first-1", "second-2"]) {
        const answer = await ask(requestId)
        assert.strictEqual(answer.status, 200)
        assert.strictEqual(answer.headers.get("x-request-id"), requestId)
        assert.include(answer.headers.get("content-type") ?? "", stream ? "text/event-stream" : "application/json")
        const text = await answer.text()
        assert.include(text, stream ? "[DONE]" : OpenAiWire.answerText)
        assert.strictEqual(openAiFake.received.at(-1)?.headers["x-request-id"], requestId)
      }
      // A rate limit before the first byte keeps its status, streamed or not, by the lane too.
      const limited = await ask("limited-3", `please ${OpenAiWire.Scenario.rateLimited}`)
      assert.strictEqual(limited.status, 429)
      assert.isNotNull(limited.headers.get("retry-after"))
      assert.strictEqual(limited.headers.get("x-request-id"), "limited-3")
      assert.strictEqual(decode(ErrorEnvelope, await limited.json()).error.type, "rate_limited")

      // Revoked: the lane forgets the key at once too.
      const revoked = await fetch(`${gateway.url}/v1/keys/${id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${gateway.adminKey}` }
      })
      assert.strictEqual(revoked.status, 200)
      assert.strictEqual((await ask("fourth-4")).status, 401)
    }
  })

  it("answers a streamed request that fails before its first byte with the failure's status", async () => {
    // A new key: the full stack serves its first request.
    const { key } = await newKey()
    const client = new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    const error = await client.chat.completions
      .create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: `please ${OpenAiWire.Scenario.rateLimited}` }],
        stream: true
      })
      .then(
        () => undefined,
        (caught: unknown) => caught
      )
    assert.instanceOf(error, RateLimitError)
  })

  it("aborts the upstream request when a relayed request's client goes away", async () => {
    const index = openAiFake.received.length
    const controller = new AbortController()
    const pending = post(`wait ${OpenAiWire.Scenario.hang}`, false, controller.signal).catch(() => undefined)
    await new Promise((resolve) => setTimeout(resolve, 300))
    const abortedAt = Date.now()
    controller.abort()
    await pending
    const closedAt = await openAiFake.closedEarly(index, 1000)
    assert.isAtMost(closedAt - abortedAt, 1000)
  })

  it("lets the official openai SDK talk to an Anthropic model in OpenAI's format", async () => {
    const client = new OpenAI({ apiKey: gateway.adminKey, baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    const completion = await client.chat.completions.create({
      model: "claude-haiku-4-5",
      messages: [{ role: "user", content: "hello" }]
    })
    assert.strictEqual(completion.choices[0]?.message.content, Anthropic.answerText)
    assert.strictEqual(completion.model, "claude-haiku-4-5")
    const stream = await client.chat.completions.create({
      model: "claude-haiku-4-5",
      messages: [{ role: "user", content: `weather? ${Anthropic.scenarios.tool}` }],
      tools: [
        {
          type: "function",
          function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } }
        }
      ],
      stream: true
    })
    let name = ""
    let args = ""
    let finish: string | null = null
    for await (const chunk of stream) {
      for (const call of chunk.choices[0]?.delta.tool_calls ?? []) {
        name += call.function?.name ?? ""
        args += call.function?.arguments ?? ""
      }
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    assert.strictEqual(name, "get_weather")
    assert.deepStrictEqual(JSON.parse(args), Anthropic.weatherInput)
    assert.strictEqual(finish, "tool_calls")
  })
})
