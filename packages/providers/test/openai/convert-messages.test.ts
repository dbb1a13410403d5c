/**
 * Prompt → Chat Completions messages: each role, tool calls and results paired by id, files as
 * content parts, and the files the API cannot take.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { Prompt } from "effect/ai"
import { convertMessages } from "../../src/openai/convert-messages.ts"

const convert = (messages: ReadonlyArray<Prompt.MessageEncoded>) => convertMessages(Prompt.make(messages))

describe("convertMessages", () => {
  it("sends system, user and assistant text, a text-only user message as one string", () => {
    const result = convert([
      { role: "system", content: "Be brief." },
      {
        role: "user",
        content: [
          { type: "text", text: "first line" },
          { type: "text", text: "second line" }
        ]
      },
      {
        role: "assistant",
        content: [
          { type: "reasoning", text: "thinking" },
          { type: "text", text: "Hi!" }
        ]
      }
    ])
    assert.deepStrictEqual(Result.getOrThrow(result), [
      { role: "system", content: "Be brief." },
      { role: "user", content: "first line\nsecond line" },
      { role: "assistant", content: "Hi!" }
    ])
  })

  it("sends an assistant's tool calls as tool_calls and each result as a tool message", () => {
    const result = convert([
      { role: "user", content: "weather and time in Paris?" },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Checking." },
          { type: "tool-call", id: "call_1", name: "get_weather", params: { location: "Paris" } },
          { type: "tool-call", id: "call_2", name: "get_time", params: { timezone: "Europe/Paris" } }
        ]
      },
      {
        role: "tool",
        content: [
          { type: "tool-result", id: "call_1", name: "get_weather", isFailure: false, result: { celsius: 21 } },
          { type: "tool-result", id: "call_2", name: "get_time", isFailure: false, result: "14:05" }
        ]
      }
    ])
    assert.deepStrictEqual(Result.getOrThrow(result).slice(1), [
      {
        role: "assistant",
        content: "Checking.",
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"location":"Paris"}' } },
          { id: "call_2", type: "function", function: { name: "get_time", arguments: '{"timezone":"Europe/Paris"}' } }
        ]
      },
      { role: "tool", tool_call_id: "call_1", content: '{"celsius":21}' },
      { role: "tool", tool_call_id: "call_2", content: "14:05" }
    ])
  })

  it("sends a tool result's model output instead of its result when there is one", () => {
    const result = convert([
      {
        role: "tool",
        content: [
          {
            type: "tool-result",
            id: "call_1",
            name: "screenshot",
            isFailure: false,
            result: { bytes: 1234 },
            modelOutput: [{ type: "text", text: "a login page" }]
          }
        ]
      }
    ])
    assert.deepStrictEqual(Result.getOrThrow(result), [
      { role: "tool", tool_call_id: "call_1", content: "a login page" }
    ])
  })

  it("sends images, PDFs and audio as content parts", () => {
    const result = convert([
      {
        role: "user",
        content: [
          { type: "text", text: "what is this?" },
          { type: "file", mediaType: "image/png", data: "iVBORw0KGgo=" },
          { type: "file", mediaType: "image/jpeg", data: new URL("https://example.com/cat.jpg") },
          {
            type: "file",
            mediaType: "application/pdf",
            fileName: "report.pdf",
            data: new Uint8Array([37, 80, 68, 70])
          },
          { type: "file", mediaType: "audio/wav", data: "UklGRg==" }
        ]
      }
    ])
    assert.deepStrictEqual(Result.getOrThrow(result), [
      {
        role: "user",
        content: [
          { type: "text", text: "what is this?" },
          { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
          { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
          { type: "file", file: { filename: "report.pdf", file_data: "data:application/pdf;base64,JVBERg==" } },
          { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } }
        ]
      }
    ])
  })

  it("refuses files the API cannot take", () => {
    for (const file of [
      { type: "file" as const, mediaType: "video/mp4", data: "AAAA" },
      { type: "file" as const, mediaType: "application/pdf", data: new URL("https://example.com/a.pdf") }
    ]) {
      const result = convert([{ role: "user", content: [file] }])
      assert.isTrue(Result.isFailure(result))
      assert.strictEqual(Result.isFailure(result) ? result.failure._tag : undefined, "InvalidUserInputError")
    }
  })
})
