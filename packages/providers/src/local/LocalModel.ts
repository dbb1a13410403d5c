/**
 * `local`: the offline development model. It needs no API key and no network, so PolyAgent answers
 * on a fresh machine, and it is not an AI: it answers every conversation with a fixed sentence that
 * proves the gateway handed it the whole conversation (how many user turns, the system prompt, the
 * last user message quoted). Same prompt, same answer, always. Usage is real `o200k_base` token
 * counts; the cost is zero. It streams word by word, optionally paced, to exercise SSE clients.
 */
import { ModelCatalog, Usage } from "@polyagent/runtime"
import { DateTime, Duration, Effect, Option, Stream } from "effect"
import { LanguageModel, type Prompt, type Response } from "effect/ai"
import { countMessages, countText } from "../internal/tokens.ts"

/** The model id clients send (`"model": "local"`) and the provider name. */
export const id = "local"

/** How `GET /v1/models` lists the local model; `offline: true` and the description label it. */
export const info: ModelCatalog.ModelInfo = new ModelCatalog.ModelInfo({
  id,
  provider: "local",
  description:
    "Offline development model: deterministic, no network, not a real LLM. " +
    "It echoes the conversation (user turn count, system prompt, your last message) and answers nothing.",
  offline: true,
  capabilities: new ModelCatalog.Capabilities({ tools: false, vision: false, streaming: true, context_window: 32768 }),
  cost_per_1k_tokens: new Usage.Price({ input: 0, output: 0 }),
  price_date: null
})

/** Options of {@link make}. */
export interface Options {
  /**
   * Pause between two streamed text deltas (default: none). Taken with `Effect.sleep`, so an
   * interrupted stream stops at once and `TestClock` drives it in tests.
   */
  readonly chunkDelay?: Duration.Input | undefined
}

/**
 * The local model as effect/ai's `LanguageModel`. `generateText` returns the answer in one `text`
 * part; `streamText` emits the same answer as `text-delta` parts, one word each (trailing
 * whitespace included, so the deltas concatenate to exactly the `generateText` text). Both end with
 * a `finish` part (reason `stop`, token usage).
 *
 * Gotchas: tools are ignored (the model never calls one), and `generateObject` fails with an
 * `InvalidOutputError` because the answer is not JSON.
 */
export const make = (options?: Options): Effect.Effect<LanguageModel.LanguageModel> => {
  // An invalid or non-positive delay means no pause at all.
  const delay = Duration.fromInput(options?.chunkDelay ?? 0).pipe(Option.filter(Duration.isPositive))
  return LanguageModel.make({
    generateText: (request) =>
      Effect.map(responseMetadata, (metadata): Array<Response.PartEncoded> => {
        const reply = replyTo(request.prompt)
        return [metadata, { type: "text", text: reply.text }, finish(reply)]
      }),
    streamText: (request) => {
      const reply = replyTo(request.prompt)
      const deltas = Stream.fromIterable(words(reply.text)).pipe(
        Stream.mapEffect((delta, index) => {
          const part: Response.StreamPartEncoded = { type: "text-delta", id: textId, delta }
          return index === 0 || Option.isNone(delay) ? Effect.succeed(part) : Effect.as(Effect.sleep(delay.value), part)
        })
      )
      return Stream.fromEffect(responseMetadata).pipe(
        Stream.concat(Stream.make(textStart)),
        Stream.concat(deltas),
        Stream.concat(Stream.make(textEnd, finish(reply)))
      )
    }
  })
}

// ---------------------------------------------------------------------------------------------
// The answer

/** Longest quote of the last user message, in characters; longer ones end with an ellipsis. */
const userQuoteLimit = 500

/** Longest quote of the system prompt, in characters. */
const systemQuoteLimit = 200

interface Reply {
  readonly text: string
  readonly inputTokens: number
  readonly outputTokens: number
}

const replyTo = (prompt: Prompt.Prompt): Reply => {
  const text = answer(prompt.content)
  return { text, inputTokens: countMessages(prompt.content), outputTokens: countText(text) }
}

// Example: Local model (offline, not a real LLM) — 2 user messages so far. System prompt: "Be terse." You said: "what is 2+2?"
const answer = (messages: ReadonlyArray<Prompt.Message>): string => {
  const system: Array<string> = []
  const users: Array<Prompt.UserMessage> = []
  for (const message of messages) {
    if (message.role === "system") system.push(message.content)
    if (message.role === "user") users.push(message)
  }
  const sentences = [`Local model (offline, not a real LLM) — ${userTurns(users.length)}.`]
  if (system.length > 0) {
    sentences.push(`System prompt: "${quote(system.join("\n"), systemQuoteLimit)}"`)
  }
  const last = users.at(-1)
  if (last !== undefined) {
    const text = last.content.flatMap((part) => (part.type === "text" ? [part.text] : [])).join("\n")
    const files = last.content.length - last.content.filter((part) => part.type === "text").length
    sentences.push(
      `You said: "${quote(text, userQuoteLimit)}"${files > 0 ? ` (+${plural(files, "file")}, not read)` : ""}`
    )
  }
  return sentences.join(" ")
}

const userTurns = (count: number): string =>
  count === 0 ? "no user message yet" : `${plural(count, "user message")} so far`

const plural = (count: number, noun: string): string => `${count} ${noun}${count === 1 ? "" : "s"}`

// Cuts by code point, so an emoji at the limit is never split in half.
const quote = (text: string, limit: number): string => {
  const chars = Array.from(text)
  return chars.length <= limit ? text : `${chars.slice(0, limit).join("")}…`
}

// "a b  c" → ["a ", "b  ", "c"]: each word keeps the whitespace after it, so the pieces join back exactly.
const words = (text: string): Array<string> => text.split(/(?<=\s)(?=\S)/u)

// ---------------------------------------------------------------------------------------------
// Response parts

// One text block per answer, so a fixed id keeps the stream deterministic.
const textId = "local-text-0"

const textStart: Response.StreamPartEncoded = { type: "text-start", id: textId }

const textEnd: Response.StreamPartEncoded = { type: "text-end", id: textId }

const responseMetadata: Effect.Effect<Response.ResponseMetadataPartEncoded> = Effect.map(
  DateTime.now,
  (now): Response.ResponseMetadataPartEncoded => ({
    type: "response-metadata",
    modelId: id,
    timestamp: DateTime.formatIso(now)
  })
)

// Nothing is cached and nothing is reasoning, so those counts are a known 0, not unknown.
const finish = (reply: Reply): Response.FinishPartEncoded => ({
  type: "finish",
  reason: "stop",
  usage: {
    inputTokens: { uncached: reply.inputTokens, total: reply.inputTokens, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: reply.outputTokens, text: reply.outputTokens, reasoning: 0 }
  }
})
