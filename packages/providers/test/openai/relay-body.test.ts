/**
 * The relay's upstream body: the client's Chat Completions body with the model id and `stream`
 * set, each quirk of the server applied, every other field passed on as sent, the input untouched.
 */
import { assert, describe, it } from "@effect/vitest"
import { openAiQuirks, type Quirks } from "../../src/openai/Config.ts"
import { upstreamBody } from "../../src/openai/relay.ts"

// GLM's quirks: `max_tokens`, temperature up to 1, no `user`, no `stream_options`, only `auto`.
const glm: Quirks = {
  ...openAiQuirks,
  streamOptions: false,
  maxTokensParam: "max_tokens",
  toolChoice: "auto",
  maxTemperature: 1,
  sendUser: false
}

const messages = [{ role: "user", content: "hi" }]

// The two token-limit fields of a body.
const fields = (body: Record<string, unknown>) => [body["max_tokens"], body["max_completion_tokens"]]

const weather = { type: "function", function: { name: "get_weather", parameters: { type: "object" } } }
const time = { type: "function", function: { name: "get_time", parameters: { type: "object" } } }

describe("upstreamBody", () => {
  it("sets the model id and passes every other field as the client sent it", () => {
    const body = {
      model: "my-alias",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is this?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=", detail: "low" } }
          ]
        }
      ],
      response_format: { type: "json_schema", json_schema: { name: "answer", schema: { type: "object" } } },
      seed: 42,
      logprobs: true,
      top_logprobs: 3,
      top_p: 0.5,
      stop: ["END"],
      n: 2,
      metadata: { team: "search" },
      vendor_extension: { anything: [1, 2, 3] }
    }
    const { model: _, ...rest } = body
    assert.deepStrictEqual(upstreamBody(body, "gpt-4o", openAiQuirks, false), { ...rest, model: "gpt-4o" })
  })

  it("asks for a stream when streamed, and never when not, whatever the client said", () => {
    assert.strictEqual(upstreamBody({ messages }, "gpt-4o", openAiQuirks, true)["stream"], true)
    assert.strictEqual(upstreamBody({ messages, stream: false }, "gpt-4o", openAiQuirks, true)["stream"], true)
    const completion = upstreamBody({ messages, stream: true }, "gpt-4o", openAiQuirks, false)
    assert.isFalse("stream" in completion)
  })

  it("asks a server that takes stream_options for the usage of a stream (to meter it), keeping the client's options", () => {
    const declined = { messages, stream_options: { include_usage: false, include_obfuscation: false } }
    assert.deepStrictEqual(upstreamBody(declined, "gpt-4o", openAiQuirks, true)["stream_options"], {
      include_usage: true,
      include_obfuscation: false
    })
    assert.deepStrictEqual(upstreamBody({ messages }, "gpt-4o", openAiQuirks, true)["stream_options"], {
      include_usage: true
    })
  })

  it("drops stream_options for a server without them, and from a completion (OpenAI rejects it there)", () => {
    const body = { messages, stream_options: { include_usage: true } }
    assert.isFalse("stream_options" in upstreamBody(body, "glm-4.6", glm, true))
    assert.isFalse("stream_options" in upstreamBody(body, "gpt-4o", openAiQuirks, false))
  })

  it("sends the token limit under the field the server knows, whichever field the client used", () => {
    assert.deepStrictEqual(fields(upstreamBody({ messages, max_tokens: 300 }, "gpt-4o", openAiQuirks, false)), [
      undefined,
      300
    ])
    assert.deepStrictEqual(
      fields(upstreamBody({ messages, max_completion_tokens: 300 }, "gpt-4o", openAiQuirks, false)),
      [undefined, 300]
    )
    assert.deepStrictEqual(fields(upstreamBody({ messages, max_completion_tokens: 300 }, "glm-4.6", glm, false)), [
      300,
      undefined
    ])
    assert.deepStrictEqual(fields(upstreamBody({ messages, max_tokens: 300 }, "glm-4.6", glm, false)), [300, undefined])
    assert.deepStrictEqual(fields(upstreamBody({ messages }, "glm-4.6", glm, false)), [undefined, undefined])
  })

  it("takes the field the server knows when the client sent both", () => {
    const both = { messages, max_tokens: 100, max_completion_tokens: 200 }
    const openai = upstreamBody(both, "gpt-4o", openAiQuirks, false)
    assert.deepStrictEqual([openai["max_tokens"], openai["max_completion_tokens"]], [undefined, 200])
    const zhipu = upstreamBody(both, "glm-4.6", glm, false)
    assert.deepStrictEqual([zhipu["max_tokens"], zhipu["max_completion_tokens"]], [100, undefined])
  })

  it("keeps temperature within what the server accepts", () => {
    const temperature = (value: number, quirks: Quirks) =>
      upstreamBody({ messages, temperature: value }, "m", quirks, false)["temperature"]
    assert.strictEqual(temperature(1.8, glm), 1)
    assert.strictEqual(temperature(1.8, openAiQuirks), 1.8)
    assert.strictEqual(temperature(2.5, openAiQuirks), 2)
    assert.strictEqual(temperature(0.3, glm), 0.3)
    assert.strictEqual(temperature(-1, openAiQuirks), 0)
    assert.isFalse("temperature" in upstreamBody({ messages }, "m", glm, false))
  })

  it("sends user only to a server that takes it", () => {
    assert.strictEqual(upstreamBody({ messages, user: "user-42" }, "gpt-4o", openAiQuirks, false)["user"], "user-42")
    assert.isFalse("user" in upstreamBody({ messages, user: "user-42" }, "glm-4.6", glm, false))
  })

  it("passes any tool choice to a server that knows them all", () => {
    const named = { type: "function", function: { name: "get_time" } }
    for (const choice of ["auto", "required", "none", named]) {
      const body = { messages, tools: [weather, time], tool_choice: choice, parallel_tool_calls: false }
      const upstream = upstreamBody(body, "gpt-4o", openAiQuirks, false)
      assert.deepStrictEqual(
        [upstream["tools"], upstream["tool_choice"], upstream["parallel_tool_calls"]],
        [[weather, time], choice, false]
      )
    }
  })

  it("only asks for a forced tool choice of a server that knows only auto", () => {
    const required = upstreamBody({ messages, tools: [weather, time], tool_choice: "required" }, "glm-4.6", glm, false)
    assert.deepStrictEqual([required["tools"], required["tool_choice"]], [[weather, time], "auto"])
    const named = upstreamBody(
      { messages, tools: [weather, time], tool_choice: { type: "function", function: { name: "get_time" } } },
      "glm-4.6",
      glm,
      false
    )
    assert.deepStrictEqual([named["tools"], named["tool_choice"]], [[time], "auto"])
    const auto = upstreamBody({ messages, tools: [weather], tool_choice: "auto" }, "glm-4.6", glm, false)
    assert.deepStrictEqual([auto["tools"], auto["tool_choice"]], [[weather], "auto"])
    const unchosen = upstreamBody({ messages, tools: [weather] }, "glm-4.6", glm, false)
    assert.deepStrictEqual([unchosen["tools"], "tool_choice" in unchosen], [[weather], false])
  })

  it("sends tool_choice none to a server that knows only auto as no tools at all", () => {
    const body = { messages, tools: [weather], tool_choice: "none", parallel_tool_calls: true }
    const upstream = upstreamBody(body, "glm-4.6", glm, false)
    assert.deepStrictEqual(upstream, { messages, model: "glm-4.6" })
  })

  it("does not modify the client's body", () => {
    const body = {
      model: "alias",
      messages,
      stream: true,
      stream_options: { include_usage: true },
      max_completion_tokens: 10,
      temperature: 1.9,
      user: "u",
      tools: [weather, time],
      tool_choice: { type: "function", function: { name: "get_time" } }
    }
    const before = structuredClone(body)
    upstreamBody(Object.freeze(body), "glm-4.6", glm, false)
    upstreamBody(body, "gpt-4o", openAiQuirks, true)
    assert.deepStrictEqual(body, before)
  })
})
