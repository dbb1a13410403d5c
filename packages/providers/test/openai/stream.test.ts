/**
 * The stream assembler, chunk by chunk: text and reasoning blocks, tool calls assembled from
 * fragments (parallel by index, split arguments, calls interleaved with text, servers that reuse
 * index 0 or send no id), usage from any chunk, and the failures of a bad answer.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import type { Response } from "effect/ai"
import { makeAssembler } from "../../src/openai/stream.ts"
import type { ChatCompletionChunk } from "../../src/openai/wire.ts"

type Delta = NonNullable<NonNullable<NonNullable<ChatCompletionChunk["choices"]>[number]["delta"]>>

const chunk = (delta: Delta, finish_reason: string | null = null): ChatCompletionChunk => ({
  id: "chatcmpl-1",
  model: "gpt-4o",
  created: 1741570283,
  choices: [{ delta, finish_reason }]
})

const call = (index: number | null, id: string | null, name: string | null, args: string) => ({
  tool_calls: [{ index, id, function: { name, arguments: args } }]
})

const run = (chunks: ReadonlyArray<ChatCompletionChunk>) => {
  const assembler = makeAssembler((n) => `fallback_${n}`)
  const parts: Array<Response.StreamPartEncoded> = chunks.flatMap((c) => assembler.push(c))
  const end = assembler.end()
  return { parts: Result.isSuccess(end) ? [...parts, ...end.success] : parts, end, finished: assembler.finished() }
}

const summary = (parts: ReadonlyArray<Response.StreamPartEncoded>): Array<string> =>
  parts.map((part) => {
    switch (part.type) {
      case "text-delta":
      case "reasoning-delta":
      case "tool-params-delta":
        return `${part.type}:${part.id}:${part.delta}`
      case "tool-call":
        return `tool-call:${part.id}:${part.name}:${JSON.stringify(part.params)}`
      case "finish":
        return `finish:${part.reason}`
      case "tool-params-start":
        return `${part.type}:${part.id}:${part.name}`
      default:
        return "id" in part && part.type !== "response-metadata" ? `${part.type}:${part.id}` : part.type
    }
  })

describe("makeAssembler", () => {
  it("streams text in one block and finishes with the reason and usage", () => {
    const { parts } = run([
      chunk({ content: "" }),
      chunk({ content: "Hel" }),
      chunk({ content: "lo" }),
      chunk({}, "stop"),
      { choices: [], usage: { prompt_tokens: 5, completion_tokens: 2 } }
    ])
    assert.deepStrictEqual(summary(parts), [
      "response-metadata",
      "text-start:text-0",
      "text-delta:text-0:Hel",
      "text-delta:text-0:lo",
      "text-end:text-0",
      "finish:stop"
    ])
    const finish = parts.at(-1)
    assert.strictEqual(finish?.type === "finish" ? finish.usage.inputTokens.total : undefined, 5)
    const metadata = parts[0]
    assert.deepStrictEqual(metadata, {
      type: "response-metadata",
      id: "chatcmpl-1",
      modelId: "gpt-4o",
      timestamp: "2025-03-10T01:31:23.000Z"
    })
  })

  it("assembles parallel calls by index, with split arguments interleaved with each other and text", () => {
    const { parts } = run([
      chunk({ content: "Checking" }),
      chunk(call(0, "call_a", "get_weather", "")),
      chunk(call(1, "call_b", "get_time", "")),
      chunk(call(0, null, null, '{"loc')),
      chunk(call(1, null, null, '{"tz":')),
      chunk({ content: " both." }),
      chunk(call(0, null, null, 'ation":"Paris"}')),
      chunk(call(1, null, null, '"CET"}')),
      chunk({}, "tool_calls")
    ])
    assert.deepStrictEqual(summary(parts), [
      "response-metadata",
      "text-start:text-0",
      "text-delta:text-0:Checking",
      "tool-params-start:call_a:get_weather",
      "tool-params-start:call_b:get_time",
      'tool-params-delta:call_a:{"loc',
      'tool-params-delta:call_b:{"tz":',
      "text-delta:text-0: both.",
      'tool-params-delta:call_a:ation":"Paris"}',
      'tool-params-delta:call_b:"CET"}',
      "text-end:text-0",
      "tool-params-end:call_a",
      'tool-call:call_a:get_weather:{"location":"Paris"}',
      "tool-params-end:call_b",
      'tool-call:call_b:get_time:{"tz":"CET"}',
      "finish:tool-calls"
    ])
  })

  it("keeps reading calls after a finish reason, as GLM repeats it with more calls", () => {
    const { parts } = run([
      chunk(call(0, "call_1", "add", '{"a": 2, "b": 3}'), "tool_calls"),
      chunk(call(1, "call_2", "multiply", '{"a": 2, "b": 3}'), "tool_calls"),
      { choices: [{ delta: { content: "" }, finish_reason: "tool_calls" }], usage: { prompt_tokens: 282 } }
    ])
    assert.deepStrictEqual(
      parts.flatMap((part) => (part.type === "tool-call" ? [part.name] : [])),
      ["add", "multiply"]
    )
    const finish = parts.at(-1)
    assert.strictEqual(finish?.type === "finish" ? finish.usage.inputTokens.total : undefined, 282)
  })

  it("tells calls apart by id when a server sends them all at index 0 (or none)", () => {
    const { parts } = run([
      chunk(call(0, "call_x", "a", "{}")),
      chunk(call(0, "call_y", "b", '{"n":')),
      chunk(call(null, null, null, "1}")),
      chunk({}, "tool_calls")
    ])
    assert.deepStrictEqual(
      parts.flatMap((part) => (part.type === "tool-call" ? [[part.id, part.name, part.params]] : [])),
      [
        ["call_x", "a", {}],
        ["call_y", "b", { n: 1 }]
      ]
    )
  })

  it("sends arguments that came before the name once the name arrives", () => {
    const { parts } = run([chunk(call(0, "call_1", null, '{"a":')), chunk(call(0, null, "f", "1}")), chunk({}, "stop")])
    assert.deepStrictEqual(summary(parts).slice(1, 3), [
      "tool-params-start:call_1:f",
      'tool-params-delta:call_1:{"a":1}'
    ])
    assert.strictEqual(summary(parts).at(-1), "finish:tool-calls")
  })

  it("names calls the server left without id", () => {
    const { parts } = run([chunk(call(0, null, "f", "{}")), chunk({}, "tool_calls")])
    assert.include(summary(parts), "tool-call:fallback_0:f:{}")
  })

  it("streams reasoning in its own block, closed when the text begins", () => {
    const { parts } = run([
      chunk({ reasoning_content: "Let me" }),
      chunk({ reasoning: " think." }),
      chunk({ content: "Hi" }),
      chunk({}, "stop")
    ])
    assert.deepStrictEqual(summary(parts), [
      "response-metadata",
      "reasoning-start:reasoning-0",
      "reasoning-delta:reasoning-0:Let me",
      "reasoning-delta:reasoning-0: think.",
      "reasoning-end:reasoning-0",
      "text-start:text-1",
      "text-delta:text-1:Hi",
      "text-end:text-1",
      "finish:stop"
    ])
  })

  it("says when the stream ended before a finish reason", () => {
    assert.isFalse(run([chunk({ content: "Hel" })]).finished)
    assert.isTrue(run([chunk({ content: "Hello" }, "stop")]).finished)
  })

  it("fails on tool arguments that are not JSON, or a call that never got a name", () => {
    const broken = run([chunk(call(0, "call_1", "f", '{"a": 1')), chunk({}, "tool_calls")]).end
    assert.strictEqual(Result.isFailure(broken) ? broken.failure._tag : undefined, "InvalidOutputError")
    const nameless = run([chunk(call(0, "call_1", null, "{}")), chunk({}, "tool_calls")]).end
    assert.strictEqual(Result.isFailure(nameless) ? nameless.failure._tag : undefined, "InvalidOutputError")
    const polluted = run([chunk(call(0, "call_1", "f", '{"__proto__": {"admin": true}}')), chunk({}, "tool_calls")]).end
    assert.isTrue(Result.isFailure(polluted))
  })
})
