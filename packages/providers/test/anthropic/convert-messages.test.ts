/**
 * `convertMessages`: where system prompts go, how each part becomes a content block, how tool
 * results come back to the model, and that consecutive turns of one role are merged as the
 * Messages API requires.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { Prompt } from "effect/ai"
import { convertMessages } from "../../src/anthropic/convert-messages.ts"

const convert = (messages: ReadonlyArray<Prompt.MessageEncoded>) => convertMessages(Prompt.make(messages))

const success = <A, E>(result: Result.Result<A, E>): A => {
  if (Result.isFailure(result)) assert.fail(`expected a success, got ${String(result.failure)}`)
  return result.success
}

describe("convertMessages", () => {
  it("lifts every system message, in order, into the top-level system field", () => {
    const converted = success(
      convert([
        { role: "system", content: "Be terse." },
        { role: "user", content: "hi" },
        { role: "system", content: "Answer in French." }
      ])
    )
    assert.deepStrictEqual(converted.system, [
      { type: "text", text: "Be terse." },
      { type: "text", text: "Answer in French." }
    ])
    assert.deepStrictEqual(converted.messages, [{ role: "user", content: [{ type: "text", text: "hi" }] }])
  })

  it("sends no system field when there is no system message", () => {
    assert.isUndefined(success(convert([{ role: "user", content: "hi" }])).system)
  })

  it("turns assistant tool calls into tool_use blocks and tool results into a user turn of tool_result blocks", () => {
    const converted = success(
      convert([
        { role: "user", content: "weather and time in Paris?" },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Let me check." },
            { type: "tool-call", id: "toolu_1", name: "get_weather", params: { city: "Paris" } },
            { type: "tool-call", id: "toolu_2", name: "get_time", params: { zone: "Europe/Paris" } }
          ]
        },
        {
          role: "tool",
          content: [
            { type: "tool-result", id: "toolu_1", name: "get_weather", isFailure: false, result: { celsius: 21 } },
            { type: "tool-result", id: "toolu_2", name: "get_time", isFailure: true, result: "clock unavailable" }
          ]
        }
      ])
    )
    assert.deepStrictEqual(converted.messages, [
      { role: "user", content: [{ type: "text", text: "weather and time in Paris?" }] },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Let me check." },
          { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
          { type: "tool_use", id: "toolu_2", name: "get_time", input: { zone: "Europe/Paris" } }
        ]
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_1", content: '{"celsius":21}' },
          { type: "tool_result", tool_use_id: "toolu_2", is_error: true, content: "clock unavailable" }
        ]
      }
    ])
  })

  it("merges consecutive turns of one role and puts tool results before the user's text", () => {
    const converted = success(
      convert([
        { role: "user", content: "first" },
        { role: "user", content: "second" },
        { role: "assistant", content: [{ type: "tool-call", id: "toolu_1", name: "lookup", params: {} }] },
        { role: "assistant", content: "and more" },
        { role: "user", content: "by the way" },
        {
          role: "tool",
          content: [{ type: "tool-result", id: "toolu_1", name: "lookup", isFailure: false, result: "ok" }]
        }
      ])
    )
    assert.deepStrictEqual(
      converted.messages.map((message) => message.role),
      ["user", "assistant", "user"]
    )
    assert.deepStrictEqual(converted.messages[0]?.content, [
      { type: "text", text: "first" },
      { type: "text", text: "second" }
    ])
    assert.deepStrictEqual(converted.messages[1]?.content, [
      { type: "tool_use", id: "toolu_1", name: "lookup", input: {} },
      { type: "text", text: "and more" }
    ])
    assert.deepStrictEqual(converted.messages[2]?.content, [
      { type: "tool_result", tool_use_id: "toolu_1", content: "ok" },
      { type: "text", text: "by the way" }
    ])
  })

  it("drops empty text, and turns left empty", () => {
    const converted = success(
      convert([
        { role: "user", content: "hi" },
        { role: "assistant", content: [{ type: "text", text: "" }] },
        {
          role: "user",
          content: [
            { type: "text", text: "" },
            { type: "text", text: "still there?" }
          ]
        }
      ])
    )
    assert.deepStrictEqual(converted.messages, [
      {
        role: "user",
        content: [
          { type: "text", text: "hi" },
          { type: "text", text: "still there?" }
        ]
      }
    ])
  })

  it("sends reasoning back as thinking only with Anthropic's signature", () => {
    const converted = success(
      convert([
        { role: "user", content: "think" },
        {
          role: "assistant",
          content: [
            { type: "reasoning", text: "signed thought", options: { anthropic: { signature: "sig-1" } } },
            { type: "reasoning", text: "unsigned thought" },
            { type: "reasoning", text: "", options: { anthropic: { redactedData: "opaque" } } },
            { type: "text", text: "done" }
          ]
        }
      ])
    )
    assert.deepStrictEqual(converted.messages[1]?.content, [
      { type: "thinking", thinking: "signed thought", signature: "sig-1" },
      { type: "redacted_thinking", data: "opaque" },
      { type: "text", text: "done" }
    ])
  })

  it("sends images and PDFs as base64 or URL sources, stripping a data: URL prefix", () => {
    const converted = success(
      convert([
        {
          role: "user",
          content: [
            { type: "file", mediaType: "image/png", data: "data:image/png;base64,iVBORw0KGgo=" },
            { type: "file", mediaType: "image/jpeg", data: new Uint8Array([255, 216, 255]) },
            {
              type: "file",
              mediaType: "application/pdf",
              fileName: "report.pdf",
              data: new URL("https://example.com/r.pdf")
            },
            { type: "file", mediaType: "text/plain", fileName: "notes.txt", data: "aGVsbG8=" }
          ]
        }
      ])
    )
    assert.deepStrictEqual(converted.messages[0]?.content, [
      { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
      { type: "image", source: { type: "base64", media_type: "image/jpeg", data: "/9j/" } },
      { type: "document", title: "report.pdf", source: { type: "url", url: "https://example.com/r.pdf" } },
      { type: "document", title: "notes.txt", source: { type: "text", media_type: "text/plain", data: "hello" } }
    ])
  })

  it("sends a tool's model output as content blocks instead of its JSON result", () => {
    const converted = success(
      convert([
        { role: "assistant", content: [{ type: "tool-call", id: "toolu_1", name: "screenshot", params: {} }] },
        {
          role: "tool",
          content: [
            {
              type: "tool-result",
              id: "toolu_1",
              name: "screenshot",
              isFailure: false,
              result: { bytes: 3 },
              modelOutput: [
                { type: "text", text: "The screen:" },
                { type: "file", mediaType: "image/png", data: "iVBORw0KGgo=" }
              ]
            }
          ]
        }
      ])
    )
    assert.deepStrictEqual(converted.messages[1]?.content, [
      {
        type: "tool_result",
        tool_use_id: "toolu_1",
        content: [
          { type: "text", text: "The screen:" },
          { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } }
        ]
      }
    ])
  })

  it("refuses a plain text file given by URL, which the API cannot fetch", () => {
    const result = convert([
      { role: "user", content: [{ type: "file", mediaType: "text/plain", data: new URL("https://example.com/a.txt") }] }
    ])
    assert.strictEqual(Result.isFailure(result) ? result.failure._tag : undefined, "InvalidUserInputError")
  })

  it("refuses a file type the API cannot read, naming it", () => {
    const result = convert([{ role: "user", content: [{ type: "file", mediaType: "audio/mpeg", data: "AAAA" }] }])
    assert.isTrue(Result.isFailure(result))
    if (Result.isFailure(result)) {
      assert.strictEqual(result.failure._tag, "InvalidUserInputError")
      assert.include(result.failure.message, "audio/mpeg")
    }
  })
})
