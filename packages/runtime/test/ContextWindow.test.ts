/**
 * ContextWindow: prompts fitted into a model's budget, counted with Tokens. System, pinned and the
 * last user message stay; the newest history stays; tool calls go with their results; a prompt
 * whose mandatory part does not fit is a typed error; a scripted model writes the summary, and a
 * failing or silent one falls back to dropping.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Logger, Result, Stream } from "effect"
import { AiError, LanguageModel, type Prompt, type Response } from "effect/ai"
import { TestClock } from "effect/testing"
import * as CallOptions from "../src/CallOptions.ts"
import * as ContextWindow from "../src/ContextWindow.ts"
import * as Tokens from "../src/Tokens.ts"

const words = (label: string, n: number): string => `${label} ${"lorem ipsum ".repeat(n)}`

const system: Prompt.MessageEncoded = { role: "system", content: "You are a terse assistant." }
const user = (n: number): Prompt.MessageEncoded => ({ role: "user", content: words(`u${n}`, 20) })
const assistant = (n: number): Prompt.MessageEncoded => ({ role: "assistant", content: words(`a${n}`, 20) })
const short = (n: number): Prompt.MessageEncoded => ({ role: "user", content: `short ${n}` })

// [system, u1, a1, u2, a2, u3, a3, u4]: about 45 tokens a message.
const conversation = [system, user(1), assistant(1), user(2), assistant(2), user(3), assistant(3), user(4)]

const toolCall: Prompt.MessageEncoded = {
  role: "assistant",
  content: [{ type: "tool-call", id: "c1", name: "get_weather", params: { city: "Paris" } }]
}
const toolResult: Prompt.MessageEncoded = {
  role: "tool",
  content: [{ type: "tool-result", id: "c1", name: "get_weather", isFailure: false, result: words("sunny", 30) }]
}

/** A window that holds exactly `messages`, with no reserve. */
const exactly = (messages: ReadonlyArray<Prompt.MessageEncoded>) => ({
  contextWindow: Tokens.countMessages(messages),
  reserve: 0
})

const fitted = (options: ContextWindow.Options): ContextWindow.Fitted => {
  const result = ContextWindow.dropOldest(options)
  if (Result.isFailure(result)) return assert.fail(result.failure.message)
  return result.success
}

const finish: Response.FinishPartEncoded = {
  type: "finish",
  reason: "stop",
  usage: {
    inputTokens: { uncached: 10, total: 10, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: 5, text: 5, reasoning: 0 }
  }
}

interface SummaryCall {
  readonly prompt: Prompt.Prompt
  readonly maxTokens: number | undefined
}

/** A model whose every answer is `answer`; it records the prompts and token caps it got. */
const summariser = (answer: Effect.Effect<string, AiError.AiError>) =>
  Effect.gen(function* () {
    const calls: Array<SummaryCall> = []
    const model = yield* LanguageModel.make({
      generateText: (options) =>
        Effect.gen(function* () {
          const { maxTokens } = yield* CallOptions.CallOptions
          calls.push({ prompt: options.prompt, maxTokens })
          const text = yield* answer
          return [{ type: "text", text }, finish]
        }),
      streamText: () => Stream.empty
    })
    return { model, calls }
  })

const failure = AiError.make({
  module: "test",
  method: "generateText",
  reason: new AiError.InternalProviderError({ description: "upstream said something about the conversation" })
})

/** Runs `effect` with a logger that keeps the warnings. */
const withWarnings = <A, E>(effect: Effect.Effect<A, E>) => {
  const warnings: Array<unknown> = []
  const collector = Logger.make((options) => {
    if (options.logLevel === "Warn") warnings.push(options.message)
  })
  return Effect.map(Effect.provide(effect, Logger.layer([collector])), (value) => ({ value, warnings }))
}

const textOf = (message: Prompt.Message): string =>
  typeof message.content === "string"
    ? message.content
    : message.content.map((part) => (part.type === "text" ? part.text : "")).join("")

describe("ContextWindow.dropOldest", () => {
  it("changes nothing when the prompt fits", () => {
    const result = fitted({ messages: conversation, contextWindow: 100_000 })
    assert.deepStrictEqual(result, {
      messages: conversation,
      dropped: 0,
      tokens: Tokens.countMessages(conversation),
      summarised: false
    })
  })

  it("keeps the system message and the newest messages that fit, and drops the oldest", () => {
    const expected = [system, user(3), assistant(3), user(4)]
    const result = fitted({ messages: conversation, ...exactly(expected) })
    assert.deepStrictEqual(result.messages, expected)
    assert.strictEqual(result.dropped, 4)
    assert.strictEqual(result.tokens, Tokens.countMessages(expected))

    const tighter = fitted({ messages: conversation, contextWindow: Tokens.countMessages(expected) - 1, reserve: 0 })
    assert.deepStrictEqual(tighter.messages, [system, assistant(3), user(4)])
  })

  it("respects the budget: the window minus the reserve for the answer", () => {
    const total = Tokens.countMessages(conversation)
    const cases: ReadonlyArray<readonly [number, number]> = [
      [total, 100],
      [total + 99, 100],
      [total + 150, 100]
    ]
    for (const [contextWindow, reserve] of cases) {
      const result = fitted({ messages: conversation, contextWindow, reserve })
      assert.isAtMost(result.tokens, contextWindow - reserve)
      assert.strictEqual(result.tokens, Tokens.countMessages(result.messages))
    }
    assert.strictEqual(fitted({ messages: conversation, contextWindow: total + 100, reserve: 100 }).dropped, 0)
    // The default reserve is a fifth of the window.
    assert.strictEqual(fitted({ messages: conversation, contextWindow: Math.ceil(total / 0.8) + 1 }).dropped, 0)
    assert.isAbove(fitted({ messages: conversation, contextWindow: total }).dropped, 0)
    assert.isAbove(fitted({ messages: conversation, contextWindow: total * 2, reserve: { share: 0.6 } }).dropped, 0)
  })

  it("drops everything older than the first message that does not fit, so no gap opens in the history", () => {
    const big: Prompt.MessageEncoded = { role: "assistant", content: words("big", 100) }
    const messages = [system, short(1), short(2), big, assistant(2), user(3)]
    const result = fitted({ messages, ...exactly([system, short(1), short(2), assistant(2), user(3)]) })
    assert.deepStrictEqual(result.messages, [system, assistant(2), user(3)])
  })

  it("keeps pinned messages, by index or by predicate, in their place", () => {
    const expected = [system, user(1), assistant(3), user(4)]
    const byIndex = fitted({ messages: conversation, ...exactly(expected), pinned: [1] })
    assert.deepStrictEqual(byIndex.messages, expected)
    const byPredicate = fitted({
      messages: conversation,
      ...exactly(expected),
      pinned: (message) => typeof message.content === "string" && message.content.startsWith("u1 ")
    })
    assert.deepStrictEqual(byPredicate.messages, expected)
  })

  it("keeps every system message, not only the first", () => {
    const note: Prompt.MessageEncoded = { role: "system", content: "The user prefers metric units." }
    const messages = [system, user(1), assistant(1), note, user(2), assistant(2), user(3)]
    const result = fitted({ messages, ...exactly([system, note, user(3)]) })
    assert.deepStrictEqual(result.messages, [system, note, user(3)])
  })

  it("drops a tool call and its results together, never one without the other", () => {
    const messages = [system, user(1), toolCall, toolResult, assistant(1), user(2)]
    // Room for the result but not for its call: both go.
    const withoutCall = fitted({ messages, ...exactly([system, toolResult, assistant(1), user(2)]) })
    assert.deepStrictEqual(withoutCall.messages, [system, assistant(1), user(2)])
    // Room for both: both stay.
    const both = fitted({ messages, ...exactly([system, toolCall, toolResult, assistant(1), user(2)]) })
    assert.deepStrictEqual(both.messages, [system, toolCall, toolResult, assistant(1), user(2)])
    // A pinned result keeps its call.
    const pinned = fitted({ messages, ...exactly([system, toolCall, toolResult, user(2)]), pinned: [3] })
    assert.deepStrictEqual(pinned.messages, [system, toolCall, toolResult, user(2)])
  })

  it("never drops the last user message, even when older messages would fit better", () => {
    const long: Prompt.MessageEncoded = { role: "user", content: words("long", 200) }
    const messages = [system, user(1), assistant(1), long]
    const result = fitted({ messages, ...exactly([system, long]) })
    assert.deepStrictEqual(result.messages, [system, long])
    // Also when the prompt ends with the answer of a tool, after the user message.
    const afterTool = [system, user(1), user(2), toolCall, toolResult]
    const kept = fitted({ messages: afterTool, ...exactly([system, user(2), toolCall, toolResult]) })
    assert.deepStrictEqual(kept.messages, [system, user(2), toolCall, toolResult])
    const tight = fitted({ messages: afterTool, ...exactly([system, user(2)]) })
    assert.deepStrictEqual(tight.messages, [system, user(2)])
  })

  it("fails with ContextTooLong, naming the counts, when the last user message alone is over budget", () => {
    const huge: Prompt.MessageEncoded = { role: "user", content: words("huge", 2000) }
    const result = ContextWindow.dropOldest({ messages: [system, user(1), huge], contextWindow: 2000, reserve: 500 })
    assert.isTrue(Result.isFailure(result))
    if (Result.isFailure(result)) {
      const error = result.failure
      assert.strictEqual(error._tag, "ContextTooLong")
      assert.strictEqual(error.required_tokens, Tokens.countMessages([system, huge]))
      assert.strictEqual(error.budget_tokens, 1500)
      assert.strictEqual(error.context_window, 2000)
      assert.strictEqual(error.reserved_tokens, 500)
      assert.include(error.message, `need ${error.required_tokens} tokens`)
      assert.include(error.message, "budget is 1500")
    }
  })
})

describe("ContextWindow.fit", () => {
  it.effect("drop_oldest fails with ContextTooLong in the error channel", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        ContextWindow.fit({
          messages: [user(1)],
          contextWindow: Tokens.countMessages([user(1)]) - 1,
          reserve: 0,
          strategy: { _tag: "drop_oldest" }
        })
      )
      assert.strictEqual(error._tag, "ContextTooLong")
    })
  )

  it.effect("summarise replaces the dropped messages with one summary written by the model", () =>
    Effect.gen(function* () {
      const { model, calls } = yield* summariser(Effect.succeed("  The user asked about u1 and u2.  "))
      const contextWindow = Tokens.countMessages(conversation) - 1
      const result = yield* ContextWindow.fit({
        messages: conversation,
        contextWindow,
        reserve: 0,
        strategy: { _tag: "summarise", model, maxSummaryTokens: 40 }
      })
      const summary: Prompt.MessageEncoded = {
        role: "system",
        content: "Summary of earlier conversation: The user asked about u1 and u2."
      }
      // One token over budget, but the summary's room (40 tokens and its framing) costs u1 and a1.
      assert.deepStrictEqual(result, {
        messages: [system, summary, user(2), assistant(2), user(3), assistant(3), user(4)],
        dropped: 2,
        tokens: Tokens.countMessages([system, summary, user(2), assistant(2), user(3), assistant(3), user(4)]),
        summarised: true
      })
      assert.isAtMost(result.tokens, contextWindow)

      // One call: the fixed instruction, then the dropped messages, capped output.
      assert.strictEqual(calls.length, 1)
      const call = calls[0]
      assert.isDefined(call)
      const [instruction, transcript] = call?.prompt.content ?? []
      assert.strictEqual(instruction?.role, "system")
      assert.strictEqual(instruction === undefined ? "" : textOf(instruction), ContextWindow.summaryInstruction)
      const dropped = transcript === undefined ? "" : textOf(transcript)
      assert.include(dropped, `user: ${words("u1", 20)}`)
      assert.include(dropped, `assistant: ${words("a1", 20)}`)
      assert.notInclude(dropped, "u2")
      assert.strictEqual(call?.maxTokens, 40)
    })
  )

  it.effect("summarise does not call the model when nothing has to go", () =>
    Effect.gen(function* () {
      const { model, calls } = yield* summariser(Effect.succeed("unused"))
      const result = yield* ContextWindow.fit({
        messages: conversation,
        contextWindow: 100_000,
        strategy: { _tag: "summarise", model }
      })
      assert.deepStrictEqual(result.messages, conversation)
      assert.isFalse(result.summarised)
      assert.strictEqual(calls.length, 0)
    })
  )

  it.effect("summarise falls back to drop_oldest, with a warning, when the model fails", () =>
    Effect.gen(function* () {
      const { model } = yield* summariser(Effect.fail(failure))
      const options = { messages: conversation, contextWindow: Tokens.countMessages(conversation) - 1, reserve: 0 }
      const { value, warnings } = yield* withWarnings(
        ContextWindow.fit({ ...options, strategy: { _tag: "summarise", model } })
      )
      assert.deepStrictEqual(value, fitted(options))
      assert.isFalse(value.summarised)
      assert.strictEqual(warnings.length, 1)
      assert.include(JSON.stringify(warnings), "InternalProviderError")
      assert.notInclude(JSON.stringify(warnings), "upstream said")
    })
  )

  it.effect("summarise falls back when the model gives an empty summary", () =>
    Effect.gen(function* () {
      const { model } = yield* summariser(Effect.succeed("   "))
      const options = { messages: conversation, contextWindow: Tokens.countMessages(conversation) - 1, reserve: 0 }
      const { value, warnings } = yield* withWarnings(
        ContextWindow.fit({ ...options, strategy: { _tag: "summarise", model } })
      )
      assert.deepStrictEqual(value, fitted(options))
      assert.strictEqual(warnings.length, 1)
    })
  )

  it.effect("summarise falls back when the model does not answer within the timeout", () =>
    Effect.gen(function* () {
      const { model } = yield* summariser(Effect.never)
      const options = { messages: conversation, contextWindow: Tokens.countMessages(conversation) - 1, reserve: 0 }
      const fiber = yield* Effect.forkChild(
        ContextWindow.fit({ ...options, strategy: { _tag: "summarise", model, timeout: "5 seconds" } })
      )
      yield* TestClock.adjust("5 seconds")
      const result = yield* Fiber.join(fiber)
      assert.deepStrictEqual(result, fitted(options))
    })
  )

  it.effect("summarise caps a long summary so the prompt stays within budget", () =>
    Effect.gen(function* () {
      const { model } = yield* summariser(Effect.succeed(words("summary", 500)))
      const contextWindow = Tokens.countMessages(conversation) - 1
      const result = yield* ContextWindow.fit({
        messages: conversation,
        contextWindow,
        reserve: 0,
        strategy: { _tag: "summarise", model, maxSummaryTokens: 30 }
      })
      assert.isTrue(result.summarised)
      assert.isAtMost(result.tokens, contextWindow)
      const summary = result.messages[1]
      assert.strictEqual(summary?.role, "system")
      const text = typeof summary?.content === "string" ? summary.content : ""
      assert.isAtMost(Tokens.countText(text.slice(ContextWindow.summaryPrefix.length)), 30)
    })
  )
})
