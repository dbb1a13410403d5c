/**
 * The offline `local` model calling tools: `call <tool>({json})` directives in the last user
 * message become tool calls when the tool is offered, the calls stream as effect/ai's tool-params
 * parts, ids never repeat across steps, a prompt ending in tool results gets a report of them, and
 * effect/ai's own tool-call resolution runs real handlers on the calls it makes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Ref, Schema, Stream } from "effect"
import { LanguageModel, Prompt, Tool, Toolkit } from "effect/ai"
import { TestClock } from "effect/testing"
import { encode } from "gpt-tokenizer/encoding/o200k_base"
import { LocalModel } from "../src/index.ts"

const Calculate = Tool.make("calculate", {
  description: "Evaluates an arithmetic expression",
  parameters: Schema.Struct({ expression: Schema.String }),
  success: Schema.Struct({ expression: Schema.String, result: Schema.Number })
})

const CurrentTime = Tool.make("current_time", {
  description: "The current time in a time zone",
  parameters: Schema.Struct({ zone: Schema.optional(Schema.String) }),
  success: Schema.String,
  failure: Schema.String,
  failureMode: "return"
})

const tools = Toolkit.make(Calculate, CurrentTime)

// Handlers for the end-to-end checks: `2+2` is all the calculator knows; every zone is unknown.
const handlers = tools.toLayer({
  calculate: ({ expression }) => Effect.succeed({ expression, result: expression === "2+2" ? 4 : Number.NaN }),
  current_time: ({ zone }) => (zone === undefined ? Effect.succeed("12:00 UTC") : Effect.fail("unknown time zone"))
})

// The model's own parts, without effect/ai running the tools.
const generate = (
  prompt: Prompt.RawInput,
  toolChoice: LanguageModel.ToolChoice<"calculate" | "current_time"> = "auto"
) =>
  Effect.gen(function* () {
    const model = yield* LocalModel.make()
    return yield* model.generateText({ prompt, toolkit: tools, toolChoice, disableToolCallResolution: true })
  }).pipe(Effect.provide(handlers))

const stream = (prompt: Prompt.RawInput) =>
  Effect.gen(function* () {
    const model = yield* LocalModel.make()
    const parts = yield* model
      .streamText({ prompt, toolkit: tools, disableToolCallResolution: true })
      .pipe(Stream.runCollect)
    return Array.from(parts)
  }).pipe(Effect.provide(handlers))

const callsOf = (response: {
  readonly toolCalls: ReadonlyArray<{ readonly id: string; readonly name: string; readonly params: unknown }>
}) => response.toolCalls.map((call) => ({ id: call.id, name: call.name, params: call.params }))

const twoCalls = 'please call calculate({"expression":"2+2"}) and call current_time({})'

describe("LocalModel tool calls", () => {
  it("is listed as able to call tools, and says how to make it", () => {
    assert.isTrue(LocalModel.info.capabilities.tools)
    assert.include(LocalModel.info.description, "`call <tool_name>(")
  })

  it.effect("calls an offered tool with the directive's JSON as parameters", () =>
    Effect.gen(function* () {
      const response = yield* generate('please call calculate({ "expression" : "2+2" })')
      assert.deepStrictEqual(callsOf(response), [
        { id: "local_call_1", name: "calculate", params: { expression: "2+2" } }
      ])
      assert.strictEqual(response.finishReason, "tool-calls")
      assert.strictEqual(response.text, "")
      // Nothing but the call's name and JSON was said, and that is what was counted.
      assert.strictEqual(response.usage.outputTokens.total, encode('calculate {"expression":"2+2"}').length)
      assert.strictEqual(response.usage.outputTokens.text, 0)
    })
  )

  it.effect("makes one call per directive, in order", () =>
    Effect.gen(function* () {
      const response = yield* generate(twoCalls)
      assert.deepStrictEqual(callsOf(response), [
        { id: "local_call_1", name: "calculate", params: { expression: "2+2" } },
        { id: "local_call_2", name: "current_time", params: {} }
      ])
      assert.strictEqual(response.finishReason, "tool-calls")
    })
  )

  it.effect("does not take a directive quoted inside another's JSON for a call", () =>
    Effect.gen(function* () {
      const response = yield* generate('call calculate({"expression":"call current_time({}) (twice)"})')
      assert.deepStrictEqual(callsOf(response), [
        { id: "local_call_1", name: "calculate", params: { expression: "call current_time({}) (twice)" } }
      ])
    })
  )

  it.effect("ignores a tool that is not offered and arguments that are not a JSON object, and says so", () =>
    Effect.gen(function* () {
      const mixed = yield* generate(
        'call weather({"city":"Paris"}), call calculate({"expression":"2+2"}) and call current_time({zone: UTC})'
      )
      assert.deepStrictEqual(
        mixed.toolCalls.map((call) => call.name),
        ["calculate"]
      )
      assert.strictEqual(mixed.finishReason, "tool-calls")
      assert.strictEqual(
        mixed.text,
        "Local model (offline, not a real LLM) — calling calculate. Ignored 2 directives: " +
          "call weather(…) (no tool of that name is offered); call current_time(…) (the argument is not a JSON object)."
      )

      // With nothing left to call, it answers as usual and names what it ignored.
      const none = yield* generate("call calculate([1, 2]) then call calculate(2+2)")
      assert.deepStrictEqual(none.toolCalls, [])
      assert.strictEqual(none.finishReason, "stop")
      assert.strictEqual(
        none.text,
        'Local model (offline, not a real LLM) — 1 user message so far. You said: "call calculate([1, 2]) then call calculate(2+2)" ' +
          "Ignored 2 directives: call calculate(…) (the argument is not a JSON object); call calculate(…) (the argument is not a JSON object)."
      )
    })
  )

  it.effect("only quotes a directive when no tool is offered or tool choice is none", () =>
    Effect.gen(function* () {
      const model = yield* LocalModel.make()
      const plain = 'Local model (offline, not a real LLM) — 1 user message so far. You said: "call calculate({})"'
      const withoutTools = yield* model.generateText({ prompt: "call calculate({})" })
      assert.strictEqual(withoutTools.text, plain)
      assert.strictEqual(withoutTools.finishReason, "stop")
      const choiceNone = yield* generate("call calculate({})", "none")
      assert.strictEqual(choiceNone.text, plain)
      assert.deepStrictEqual(choiceNone.toolCalls, [])
    })
  )

  it.effect("calls only the tool a `{ tool }` choice names", () =>
    Effect.gen(function* () {
      const response = yield* generate(twoCalls, { tool: "current_time" })
      assert.deepStrictEqual(
        response.toolCalls.map((call) => call.name),
        ["current_time"]
      )
      assert.include(response.text, "call calculate(…) (no tool of that name is offered)")
    })
  )

  it.effect("streams each call as params-start, deltas that make its JSON, params-end, then the call", () =>
    Effect.gen(function* () {
      const parts = yield* stream(twoCalls)
      assert.deepStrictEqual(
        parts.map((part) => part.type).filter((type) => type !== "tool-params-delta"),
        [
          "response-metadata",
          "tool-params-start",
          "tool-params-end",
          "tool-call",
          "tool-params-start",
          "tool-params-end",
          "tool-call",
          "finish"
        ]
      )
      const deltas = (id: string) =>
        parts.flatMap((part) => (part.type === "tool-params-delta" && part.id === id ? [part.delta] : []))
      assert.isAtLeast(deltas("local_call_1").length, 2)
      assert.strictEqual(deltas("local_call_1").join(""), '{"expression":"2+2"}')
      assert.strictEqual(deltas("local_call_2").join(""), "{}")
      // The deltas of a call sit between its start and its end.
      const types = parts.map((part) => `${part.type}${"id" in part ? ` ${part.id}` : ""}`)
      const first = types.slice(
        types.indexOf("tool-params-start local_call_1"),
        types.indexOf("tool-call local_call_1")
      )
      assert.deepStrictEqual(first, [
        "tool-params-start local_call_1",
        ...deltas("local_call_1").map(() => "tool-params-delta local_call_1"),
        "tool-params-end local_call_1"
      ])
      const finish = parts.at(-1)
      assert.strictEqual(finish?.type === "finish" ? finish.reason : undefined, "tool-calls")
      const generated = yield* generate(twoCalls)
      assert.deepStrictEqual(finish?.type === "finish" ? finish.usage : undefined, generated.usage)
    })
  )

  it.effect("paces the parameter deltas with chunkDelay too", () =>
    Effect.gen(function* () {
      const model = yield* LocalModel.make({ chunkDelay: "100 millis" })
      const seen = yield* Ref.make<Array<string>>([])
      const fiber = yield* model.streamText({ prompt: twoCalls, toolkit: tools, disableToolCallResolution: true }).pipe(
        Stream.runForEach((part) => Ref.update(seen, (types) => [...types, part.type])),
        Effect.forkChild
      )
      yield* TestClock.adjust("150 millis")
      assert.deepStrictEqual(yield* Ref.get(seen), [
        "response-metadata",
        "tool-params-start",
        "tool-params-delta",
        "tool-params-delta"
      ])
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(fiber)
      assert.strictEqual((yield* Ref.get(seen)).at(-1), "finish")
    }).pipe(Effect.provide(handlers))
  )

  it.effect("streams the note about ignored directives before the calls", () =>
    Effect.gen(function* () {
      const parts = yield* stream('call nope({}) and call calculate({"expression":"1"})')
      assert.deepStrictEqual(
        parts.map((part) => part.type).filter((type) => type !== "text-delta" && type !== "tool-params-delta"),
        ["response-metadata", "text-start", "text-end", "tool-params-start", "tool-params-end", "tool-call", "finish"]
      )
      const text = parts.flatMap((part) => (part.type === "text-delta" ? [part.delta] : [])).join("")
      assert.include(text, "call nope(…) (no tool of that name is offered)")
    })
  )

  it.effect("reports the tool results that end the prompt, successes and failures, in order", () =>
    Effect.gen(function* () {
      const prompt: ReadonlyArray<Prompt.MessageEncoded> = [
        { role: "user", content: twoCalls },
        {
          role: "assistant",
          content: [
            { type: "tool-call", id: "local_call_1", name: "calculate", params: { expression: "2+2" } },
            { type: "tool-call", id: "local_call_2", name: "current_time", params: {} }
          ]
        },
        {
          role: "tool",
          content: [
            {
              type: "tool-result",
              id: "local_call_1",
              name: "calculate",
              isFailure: false,
              result: { expression: "2+2", result: 4 }
            },
            {
              type: "tool-result",
              id: "local_call_2",
              name: "current_time",
              isFailure: true,
              result: "unknown time zone"
            }
          ]
        }
      ]
      const response = yield* generate(prompt)
      assert.strictEqual(
        response.text,
        'Local model (offline, not a real LLM) — tool results: calculate → {"expression":"2+2","result":4}; current_time → error: unknown time zone'
      )
      assert.strictEqual(response.finishReason, "stop")
      assert.deepStrictEqual(response.toolCalls, [])
      assert.strictEqual(response.usage.outputTokens.total, encode(response.text).length)
    })
  )

  it.effect("cuts a long tool result at 300 characters", () =>
    Effect.gen(function* () {
      const response = yield* generate([
        {
          role: "tool",
          content: [{ type: "tool-result", id: "x", name: "calculate", isFailure: false, result: "y".repeat(1000) }]
        }
      ])
      assert.isTrue(response.text.endsWith(`calculate → ${"y".repeat(300)}…`))
    })
  )

  it.effect("numbers a new step's calls after the calls already in the prompt", () =>
    Effect.gen(function* () {
      const response = yield* generate([
        { role: "user", content: 'call calculate({"expression":"2+2"})' },
        {
          role: "assistant",
          content: [{ type: "tool-call", id: "local_call_1", name: "calculate", params: { expression: "2+2" } }]
        },
        {
          role: "tool",
          content: [
            {
              type: "tool-result",
              id: "local_call_1",
              name: "calculate",
              isFailure: false,
              result: { expression: "2+2", result: 4 }
            }
          ]
        },
        { role: "assistant", content: [{ type: "text", text: "4" }] },
        { role: "user", content: twoCalls }
      ])
      assert.deepStrictEqual(
        response.toolCalls.map((call) => call.id),
        ["local_call_2", "local_call_3"]
      )
    })
  )

  it.effect("runs real handlers through effect/ai and reports their results on the next step", () =>
    Effect.gen(function* () {
      const prompt = Prompt.make('call calculate({"expression":"2+2"}) and call current_time({"zone":"Mars/Olympus"})')
      // One handler at a time, so the results come back in call order (else in completion order).
      const first = yield* LanguageModel.generateText({ prompt, toolkit: tools, concurrency: 1 })
      assert.strictEqual(first.finishReason, "tool-calls")
      assert.deepStrictEqual(
        first.toolResults.map((part) => [part.id, part.name, part.isFailure, part.result]),
        [
          ["local_call_1", "calculate", false, { expression: "2+2", result: 4 }],
          ["local_call_2", "current_time", true, "unknown time zone"]
        ]
      )

      // The next step sees the calls and their results, and the loop ends with a text answer.
      const second = yield* LanguageModel.generateText({
        prompt: Prompt.concat(prompt, Prompt.fromResponseParts(first.content)),
        toolkit: tools
      })
      assert.strictEqual(second.finishReason, "stop")
      assert.strictEqual(
        second.text,
        'Local model (offline, not a real LLM) — tool results: calculate → {"expression":"2+2","result":4}; current_time → error: unknown time zone'
      )
    }).pipe(Effect.provide(handlers), Effect.provideServiceEffect(LanguageModel.LanguageModel, LocalModel.make()))
  )

  it.effect("streams through effect/ai's tool resolution: each call is followed by its result", () =>
    Effect.gen(function* () {
      const parts = Array.from(
        yield* LanguageModel.streamText({ prompt: twoCalls, toolkit: tools, concurrency: 1 }).pipe(Stream.runCollect)
      )
      const results = parts.flatMap((part) =>
        part.type === "tool-result" ? [[part.id, part.isFailure, part.result] as const] : []
      )
      assert.deepStrictEqual(results, [
        ["local_call_1", false, { expression: "2+2", result: 4 }],
        ["local_call_2", false, "12:00 UTC"]
      ])
      assert.strictEqual(parts.filter((part) => part.type === "tool-call").length, 2)
    }).pipe(Effect.provide(handlers), Effect.provideServiceEffect(LanguageModel.LanguageModel, LocalModel.make()))
  )
})
