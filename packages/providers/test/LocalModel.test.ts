/**
 * The offline `local` model: what its answer shows of the conversation, that it is deterministic,
 * that usage matches gpt-tokenizer's own counts, and that streaming is paced by `Effect.sleep` and
 * stops when the consumer is interrupted.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Ref, Stream } from "effect"
import { LanguageModel, type Prompt, type Response } from "effect/ai"
import { TestClock } from "effect/testing"
import { encode, encodeChat } from "gpt-tokenizer/encoding/o200k_base"
import { LocalModel } from "../src/index.ts"

const conversation: ReadonlyArray<Prompt.MessageEncoded> = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "hi" },
  { role: "assistant", content: [{ type: "text", text: "Hello!" }] },
  { role: "user", content: "what is 2+2?" }
]

// The same conversation in gpt-tokenizer's chat format: the oracle for the expected input tokens.
const chat = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "hi" },
  { role: "assistant", content: "Hello!" },
  { role: "user", content: "what is 2+2?" }
]

const deltasOf = (parts: ReadonlyArray<Response.StreamPart<{}>>): Array<string> =>
  parts.flatMap((part) => (part.type === "text-delta" ? [part.delta] : []))

describe("LocalModel", () => {
  it("is listed as an offline development model that costs nothing", () => {
    assert.strictEqual(LocalModel.info.id, "local")
    assert.isTrue(LocalModel.info.offline)
    assert.include(LocalModel.info.description, "not a real LLM")
    assert.isTrue(LocalModel.info.capabilities.streaming)
    assert.isTrue(LocalModel.info.capabilities.tools)
    assert.deepStrictEqual(
      [LocalModel.info.cost_per_1k_tokens.input, LocalModel.info.cost_per_1k_tokens.output],
      [0, 0]
    )
  })

  it.effect("answers with the user turn count, the system prompt and the last user message", () =>
    Effect.gen(function* () {
      const model = yield* LocalModel.make()
      const response = yield* model.generateText({ prompt: conversation })
      assert.strictEqual(
        response.text,
        'Local model (offline, not a real LLM) — 2 user messages so far. System prompt: "You are terse." You said: "what is 2+2?"'
      )
      assert.strictEqual(response.finishReason, "stop")
    })
  )

  it.effect("gives the same answer to the same conversation", () =>
    Effect.gen(function* () {
      const model = yield* LocalModel.make()
      const first = yield* model.generateText({ prompt: conversation })
      const second = yield* (yield* LocalModel.make()).generateText({ prompt: conversation })
      assert.strictEqual(first.text, second.text)
      assert.deepStrictEqual(first.usage, second.usage)
    })
  )

  it.effect("says so when there is no system prompt and no user message", () =>
    Effect.gen(function* () {
      const model = yield* LocalModel.make()
      const one = yield* model.generateText({ prompt: "hello there" })
      assert.strictEqual(
        one.text,
        'Local model (offline, not a real LLM) — 1 user message so far. You said: "hello there"'
      )
      const none = yield* model.generateText({ prompt: [{ role: "system", content: "Be kind." }] })
      assert.strictEqual(
        none.text,
        'Local model (offline, not a real LLM) — no user message yet. System prompt: "Be kind."'
      )
    })
  )

  it.effect("mentions attached files it cannot read", () =>
    Effect.gen(function* () {
      const model = yield* LocalModel.make()
      const response = yield* model.generateText({
        prompt: [
          {
            role: "user",
            content: [
              { type: "text", text: "what is in this picture?" },
              { type: "file", mediaType: "image/png", fileName: "cat.png", data: "iVBORw0KGgo=" }
            ]
          }
        ]
      })
      assert.include(response.text, 'You said: "what is in this picture?" (+1 file, not read)')
    })
  )

  it.effect("truncates a very long message to 500 characters with an ellipsis", () =>
    Effect.gen(function* () {
      const model = yield* LocalModel.make()
      const long = "x".repeat(2000)
      const response = yield* model.generateText({ prompt: long })
      assert.include(response.text, `You said: "${"x".repeat(500)}…"`)
      assert.notInclude(response.text, "x".repeat(501))
    })
  )

  it.effect("counts usage with o200k_base: the chat as OpenAI frames it in, the answer out", () =>
    Effect.gen(function* () {
      const model = yield* LocalModel.make()
      const response = yield* model.generateText({ prompt: conversation })
      const expectedInput = encodeChat(chat, "gpt-4o").length
      const expectedOutput = encode(response.text).length
      assert.strictEqual(response.usage.inputTokens.total, expectedInput)
      assert.strictEqual(response.usage.outputTokens.total, expectedOutput)
      assert.isAbove(expectedOutput, 10)
      const total = (response.usage.inputTokens.total ?? 0) + (response.usage.outputTokens.total ?? 0)
      assert.strictEqual(total, expectedInput + expectedOutput)
    })
  )

  it.effect("quotes text that spells a special token instead of failing", () =>
    Effect.gen(function* () {
      const model = yield* LocalModel.make()
      const response = yield* model.generateText({ prompt: "what does <|endoftext|> mean?" })
      assert.include(response.text, 'You said: "what does <|endoftext|> mean?"')
      assert.strictEqual(
        response.usage.outputTokens.total,
        encode(response.text, { disallowedSpecial: new Set() }).length
      )
    })
  )

  it.effect("streams the same answer word by word, then finishes with the same usage", () =>
    Effect.gen(function* () {
      const model = yield* LocalModel.make()
      const generated = yield* model.generateText({ prompt: conversation })
      const parts = Array.from(
        yield* LanguageModel.streamText({ prompt: conversation }).pipe(
          Stream.runCollect,
          Effect.provideService(LanguageModel.LanguageModel, model)
        )
      )
      const deltas = deltasOf(parts)
      assert.isAtLeast(deltas.length, 3)
      assert.strictEqual(deltas.join(""), generated.text)
      assert.deepStrictEqual(
        parts.map((part) => part.type).filter((type) => type !== "text-delta"),
        ["response-metadata", "text-start", "text-end", "finish"]
      )
      const metadata = parts[0]
      assert.strictEqual(metadata?.type === "response-metadata" ? metadata.modelId : undefined, "local")
      const finish = parts.at(-1)
      assert.strictEqual(finish?.type, "finish")
      if (finish?.type === "finish") {
        assert.strictEqual(finish.reason, "stop")
        assert.deepStrictEqual(finish.usage, generated.usage)
      }
    })
  )

  it.effect("paces the deltas with chunkDelay on the clock", () =>
    Effect.gen(function* () {
      const model = yield* LocalModel.make({ chunkDelay: "100 millis" })
      const seen = yield* Ref.make<Array<string>>([])
      const fiber = yield* model.streamText({ prompt: conversation }).pipe(
        Stream.runForEach((part) =>
          part.type === "text-delta" ? Ref.update(seen, (deltas) => [...deltas, part.delta]) : Effect.void
        ),
        Effect.forkChild
      )
      yield* TestClock.adjust("250 millis")
      assert.strictEqual((yield* Ref.get(seen)).length, 3)
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(fiber)
      assert.isAbove((yield* Ref.get(seen)).length, 3)
    })
  )

  it.effect("stops streaming as soon as the consumer is interrupted", () =>
    Effect.gen(function* () {
      const model = yield* LocalModel.make({ chunkDelay: "100 millis" })
      const seen = yield* Ref.make<Array<string>>([])
      const fiber = yield* model.streamText({ prompt: conversation }).pipe(
        Stream.runForEach((part) => Ref.update(seen, (types) => [...types, part.type])),
        Effect.forkChild
      )
      yield* TestClock.adjust("150 millis")
      const before = yield* Ref.get(seen)
      assert.deepStrictEqual(before, ["response-metadata", "text-start", "text-delta", "text-delta"])

      // Interruption must not wait for the pending pause; a real-time bound fails fast if it does.
      const interrupted = yield* TestClock.withLive(Effect.timeoutOption(Fiber.interrupt(fiber), "1 second"))
      assert.isTrue(Option.isSome(interrupted), "interrupting the stream waited for the next chunk")
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(fiber)))

      // Had anything kept running, the rest of the answer would arrive as the clock moves on.
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(yield* Ref.get(seen), before)
    })
  )

  it.effect("lets a consumer take the first deltas and drop the rest", () =>
    Effect.gen(function* () {
      const model = yield* LocalModel.make({ chunkDelay: "100 millis" })
      const fiber = yield* model.streamText({ prompt: conversation }).pipe(
        Stream.filter((part) => part.type === "text-delta"),
        Stream.take(2),
        Stream.runCollect,
        Effect.forkChild
      )
      // Two deltas need one pause; the remaining pauses of the answer never run.
      yield* TestClock.adjust("100 millis")
      assert.isDefined(fiber.pollUnsafe(), "take(2) should be done after a single pause")
      const taken = yield* Fiber.join(fiber)
      assert.deepStrictEqual(
        Array.from(taken, (part) => part.type),
        ["text-delta", "text-delta"]
      )
    })
  )
})
