import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import { Response, Tool } from "effect/ai"
import { Usage as RuntimeUsage } from "@polyagent/runtime"
import * as ChatCompletions from "../src/ChatCompletions.ts"

describe("ChatCompletions", () => {
  it("reports usage as the runtime bills it, with the cached and reasoning shares", () => {
    const usage = new Response.Usage({
      inputTokens: { total: 19, cacheRead: 4, uncached: 15, cacheWrite: undefined },
      outputTokens: { total: 10, reasoning: 2, text: 8 }
    })
    const converted = ChatCompletions.usageOf(usage)
    assert.deepStrictEqual(
      { ...converted },
      {
        prompt_tokens: 19,
        completion_tokens: 10,
        total_tokens: 29,
        prompt_tokens_details: { cached_tokens: 4 },
        completion_tokens_details: { reasoning_tokens: 2 }
      }
    )
    assert.deepStrictEqual({ ...RuntimeUsage.fromResponse(usage) }, { ...converted })
  })

  it("turns OpenAI messages into a prompt, naming each tool result after its call", () => {
    const prompt = ChatCompletions.toPrompt([
      { role: "developer", content: [{ type: "text", text: "rules" }] },
      {
        role: "user",
        content: [
          { type: "text", text: "look" },
          { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }
        ]
      },
      {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "c1", type: "function", function: { name: "lookup", arguments: '{"q":"x"}' } }]
      },
      { role: "tool", tool_call_id: "c1", content: "found" }
    ])
    assert.deepStrictEqual(prompt, [
      { role: "system", content: "rules" },
      {
        role: "user",
        content: [
          { type: "text", text: "look" },
          { type: "file", mediaType: "image/png", data: "AAAA" }
        ]
      },
      { role: "assistant", content: [{ type: "tool-call", id: "c1", name: "lookup", params: { q: "x" } }] },
      { role: "tool", content: [{ type: "tool-result", id: "c1", name: "lookup", isFailure: false, result: "found" }] }
    ])
  })

  it("keeps arguments that are not JSON as text, and empty ones as an empty object", () => {
    assert.deepStrictEqual(ChatCompletions.parseArguments(""), {})
    assert.strictEqual(ChatCompletions.parseArguments("{not json"), "{not json")
    assert.deepStrictEqual(ChatCompletions.parseArguments('{"a":[1,2]}'), { a: [1, 2] })
  })

  it("passes the client's JSON Schema to the model untouched", () => {
    const parameters = { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
    const [tool] = ChatCompletions.toTools([
      { type: "function", function: { name: "weather", description: "w", parameters } }
    ])
    assert.isDefined(tool)
    if (tool === undefined) return
    assert.strictEqual(tool.name, "weather")
    assert.deepStrictEqual(Tool.getJsonSchema(tool), parameters)
  })

  it("maps tool choice and finish reasons", () => {
    assert.strictEqual(ChatCompletions.toToolChoice(undefined), "auto")
    assert.strictEqual(ChatCompletions.toToolChoice("required"), "required")
    assert.deepStrictEqual(ChatCompletions.toToolChoice({ type: "function", function: { name: "f" } }), { tool: "f" })
    assert.strictEqual(ChatCompletions.finishReason("tool-calls"), "tool_calls")
    assert.strictEqual(ChatCompletions.finishReason("length"), "length")
    assert.strictEqual(ChatCompletions.finishReason("content-filter"), "content_filter")
  })

  it("refuses what it cannot honour: n > 1, an empty conversation, an unknown role", () => {
    const decode = Schema.decodeUnknownExit(ChatCompletions.Request)
    const ok = { model: "m", messages: [{ role: "user", content: "hi" }] }
    assert.strictEqual(decode(ok)._tag, "Success")
    assert.strictEqual(decode({ ...ok, n: 2 })._tag, "Failure")
    assert.strictEqual(decode({ ...ok, messages: [] })._tag, "Failure")
    assert.strictEqual(decode({ ...ok, messages: [{ role: "robot", content: "x" }] })._tag, "Failure")
  })
})

describe("ChatCompletions.parseRequest", () => {
  it("keeps the body as sent beside the request read from it, or says what is wrong", () => {
    const text = '{"model":"m","messages":[{"role":"user","content":"hi"}],"seed":7}'
    const parsed = ChatCompletions.parseRequest(text)
    assert.isTrue(Result.isSuccess(parsed))
    if (Result.isSuccess(parsed)) {
      assert.deepStrictEqual(parsed.success.body, JSON.parse(text))
      assert.strictEqual(parsed.success.request.model, "m")
      assert.notProperty(parsed.success.request, "seed")
    }
    assert.deepStrictEqual(ChatCompletions.parseRequest("{oops"), Result.fail("the request body is not valid JSON"))
    const invalid = ChatCompletions.parseRequest('{"model":"m","messages":[]}')
    assert.isTrue(Result.isFailure(invalid) && invalid.failure.startsWith("invalid body: "))
  })
})
