/**
 * Fitting a conversation into a model's context window before a call. The budget is the model's
 * `context_window` minus a reserve for the answer; prompts are counted with {@link Tokens}. What
 * does not fit is chosen by a strategy: `drop_oldest` keeps every system message, every pinned
 * message, the last user message and then the newest other messages that fit, and drops the rest;
 * `summarise` does the same but replaces what it drops with one system message written by a
 * model. An assistant message that calls tools and the tool messages that answer it are kept or
 * dropped together, so a provider never sees a tool result without its call. Plain functions, no
 * service: the session actor calls {@link fit} with the prompt it built.
 */
import { traced } from "./internal/turnParts.ts"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as LanguageModel from "effect/ai/LanguageModel"
import type * as Prompt from "effect/ai/Prompt"
import { CallOptions } from "./CallOptions.ts"
import * as Tokens from "./Tokens.ts"

/**
 * Tokens kept free for the answer: a count (the call's `max_tokens`) or a share of the window
 * (`{ share: 0.2 }` for a fifth). The budget of the prompt is the window minus this.
 */
export type Reserve = number | { readonly share: number }

/** The reserve when none is given: a fifth of the window. */
export const defaultReserve: Reserve = { share: 0.2 }

/**
 * Which messages are never dropped besides system messages and the last user message: their
 * indices in the prompt, or a predicate over message and index.
 */
export type Pinned = ReadonlyArray<number> | ((message: Prompt.MessageEncoded, index: number) => boolean)

/**
 * What to do with the messages that do not fit. `summarise` calls `model` once per {@link fit}
 * that drops something, with its answer capped at `maxSummaryTokens` (default 512) and the call
 * bounded by `timeout` (default 30 seconds); on failure or timeout it falls back to `drop_oldest`.
 */
export type Strategy =
  | { readonly _tag: "drop_oldest" }
  | {
      readonly _tag: "summarise"
      readonly model: LanguageModel.LanguageModel
      readonly maxSummaryTokens?: number | undefined
      readonly timeout?: Duration.Input | undefined
    }

/** What {@link dropOldest} needs: the prompt as the session actor builds it and the model's window. */
export interface Options {
  /** The prompt in order: the agent's system message if any, the history, the new user message. */
  readonly messages: ReadonlyArray<Prompt.MessageEncoded>
  /** The model's `capabilities.context_window`, in tokens. */
  readonly contextWindow: number
  /** Default {@link defaultReserve}. */
  readonly reserve?: Reserve | undefined
  readonly pinned?: Pinned | undefined
}

/** What {@link fit} needs: {@link Options} and a strategy. */
export interface FitOptions extends Options {
  readonly strategy: Strategy
}

/** A prompt that fits, with what was done to it. */
export interface Fitted {
  /** The prompt to send, in the original order (a summary goes after the leading system messages). */
  readonly messages: ReadonlyArray<Prompt.MessageEncoded>
  /** How many of the given messages were left out (replaced by the summary when `summarised`). */
  readonly dropped: number
  /** The prompt tokens of `messages`, as {@link Tokens.countMessages} counts them. */
  readonly tokens: number
  readonly summarised: boolean
}

/**
 * Even the messages that must be kept (system messages, pinned messages and the last user message)
 * do not fit into the budget: the window minus the reserve for the answer.
 */
export class ContextTooLong extends Schema.TaggedError<ContextTooLong>()("ContextTooLong", {
  required_tokens: Schema.Int,
  budget_tokens: Schema.Int,
  context_window: Schema.Int,
  reserved_tokens: Schema.Int
}) {
  override get message(): string {
    return (
      `the messages that cannot be dropped need ${this.required_tokens} tokens, but the budget is ` +
      `${this.budget_tokens}: a context window of ${this.context_window} minus ${this.reserved_tokens} ` +
      "reserved for the answer"
    )
  }
}

/** The start of the system message that replaces the dropped messages. */
export const summaryPrefix = "Summary of earlier conversation: "

/** What the summarising model is told; the dropped messages follow as one user message. */
export const summaryInstruction =
  "Summarise the conversation below for an assistant that continues it without seeing it. Keep what " +
  "the rest of the conversation may rely on: facts about the user, names, numbers, decisions, results " +
  "of tool calls, and questions or requests not yet answered. Leave out greetings and small talk. " +
  "Write plain prose in the language of the conversation and answer with the summary only."

/**
 * Fits `messages` into the budget by dropping the oldest messages that may go (see the module
 * comment). Pure; nothing is dropped when everything fits.
 *
 * Gotchas: the kept history may start with an assistant message when the user message before it
 * was dropped; a pinned tool message keeps its assistant message (and the other way round).
 */
export const dropOldest = (options: Options): Result.Result<Fitted, ContextTooLong> => {
  const budget = budgetOf(options)
  const entries = entriesOf(options)
  return Result.mapBoth(select(entries, budget.tokens), {
    onFailure: (required) => tooLong(options, budget, required),
    onSuccess: (selection) => fitted(entries, selection)
  })
}

/**
 * Fits `messages` into the budget with the given strategy; see {@link dropOldest} for what is
 * kept. With `summarise`, the summary's room is taken from the budget first (at most half of what
 * the kept messages leave), so a summary may drop a few more messages than `drop_oldest` would.
 *
 * Gotchas: the dropped messages are sent to the summarising model in full, so its window must hold
 * them; nothing is cached, so every call that drops messages pays for one summary.
 */
export const fit = Effect.fnUntraced(
  function* (options: FitOptions): Effect.fn.Return<Fitted, ContextTooLong> {
    const budget = budgetOf(options)
    const entries = entriesOf(options)
    const selection = select(entries, budget.tokens)
    if (Result.isFailure(selection)) return yield* tooLong(options, budget, selection.failure)
    const plain = fitted(entries, selection.success)
    const strategy = options.strategy
    if (strategy._tag === "drop_oldest" || plain.dropped === 0) return plain
    return yield* summarise(strategy, entries, budget, selection.success.required, plain)
  },
  // Every turn fits its prompt: a span without the stack trace Effect.fn would capture at each call.
  traced("ContextWindow.fit")
)

// -----------------------------------------------------------------------------
// internal
// -----------------------------------------------------------------------------

interface Entry {
  readonly index: number
  readonly message: Prompt.MessageEncoded
  readonly tokens: number
  readonly mandatory: boolean
}

interface Selection {
  readonly keep: ReadonlySet<number>
  readonly tokens: number
  /** The tokens of the mandatory messages alone, reply priming included. */
  readonly required: number
}

interface Budget {
  readonly tokens: number
  readonly reserved: number
}

const budgetOf = (options: Options): Budget => {
  const reserve = options.reserve ?? defaultReserve
  const reserved = Math.max(0, typeof reserve === "number" ? reserve : Math.ceil(options.contextWindow * reserve.share))
  return { tokens: options.contextWindow - reserved, reserved }
}

const entriesOf = (options: Options): Array<Entry> => {
  const pinned = options.pinned ?? []
  const isPinned =
    typeof pinned === "function" ? pinned : (_: Prompt.MessageEncoded, index: number) => pinned.includes(index)
  const lastUser = options.messages.findLastIndex((message) => message.role === "user")
  return options.messages.map((message, index) => ({
    index,
    message,
    tokens: Tokens.countMessage(message),
    mandatory: message.role === "system" || index === lastUser || isPinned(message, index)
  }))
}

/** Messages kept or dropped together: one message, or an assistant message and the tool messages after it. */
const unitsOf = (entries: ReadonlyArray<Entry>): Array<Array<Entry>> => {
  const units: Array<Array<Entry>> = []
  for (const entry of entries) {
    const last = units.at(-1)
    if (entry.message.role === "tool" && last?.[0]?.message.role === "assistant") last.push(entry)
    else units.push([entry])
  }
  return units
}

const sum = (unit: ReadonlyArray<Entry>): number => unit.reduce((total, entry) => total + entry.tokens, 0)

/** Keeps the mandatory units, then the newest others while they fit; fails with the required tokens. */
const select = (entries: ReadonlyArray<Entry>, budget: number): Result.Result<Selection, number> => {
  const units = unitsOf(entries)
  const keep = new Set<number>()
  const take = (unit: ReadonlyArray<Entry>) => unit.forEach((entry) => keep.add(entry.index))
  let tokens = Tokens.replyPriming
  const optional: Array<Array<Entry>> = []
  for (const unit of units) {
    if (unit.some((entry) => entry.mandatory)) {
      take(unit)
      tokens += sum(unit)
    } else optional.push(unit)
  }
  const required = tokens
  if (required > budget) return Result.fail(required)
  // Newest first; the first unit that does not fit ends the history, so no gap opens in it.
  for (const unit of optional.toReversed()) {
    const cost = sum(unit)
    if (tokens + cost > budget) break
    take(unit)
    tokens += cost
  }
  return Result.succeed({ keep, tokens, required })
}

const fitted = (entries: ReadonlyArray<Entry>, selection: Selection): Fitted => ({
  messages: entries.filter((entry) => selection.keep.has(entry.index)).map((entry) => entry.message),
  dropped: entries.length - selection.keep.size,
  tokens: selection.tokens,
  summarised: false
})

const tooLong = (options: Options, budget: Budget, required: number): ContextTooLong =>
  new ContextTooLong({
    required_tokens: required,
    budget_tokens: budget.tokens,
    context_window: options.contextWindow,
    reserved_tokens: budget.reserved
  })

const defaultSummaryTokens = 512
const defaultSummaryTimeout = Duration.seconds(30)
// Below this a summary says too little to be worth a model call.
const minimumSummaryTokens = 16

type Summarise = Extract<Strategy, { readonly _tag: "summarise" }>

const summarise = Effect.fnUntraced(function* (
  strategy: Summarise,
  entries: ReadonlyArray<Entry>,
  budget: Budget,
  required: number,
  plain: Fitted
) {
  const framing = Tokens.countMessage({ role: "system", content: summaryPrefix })
  // At most half of the room the mandatory messages leave, so recent history keeps the rest.
  const room = Math.floor((budget.tokens - required - framing) / 2)
  const cap = Math.min(strategy.maxSummaryTokens ?? defaultSummaryTokens, room)
  const narrowed = select(entries, budget.tokens - framing - cap)
  if (cap < minimumSummaryTokens || Result.isFailure(narrowed)) {
    yield* Effect.logWarning("ContextWindow: no room for a summary; dropping the oldest messages instead")
    return plain
  }
  const selection = narrowed.success
  const dropped = entries.filter((entry) => !selection.keep.has(entry.index)).map((entry) => entry.message)
  const answer = yield* strategy.model
    .generateText({
      prompt: [
        { role: "system", content: summaryInstruction },
        { role: "user", content: transcript(dropped) }
      ]
    })
    .pipe(
      // Only the cap: the caller's sampling settings are for its own call, and some models reject others.
      Effect.provideService(CallOptions, { maxTokens: cap }),
      Effect.timeout(strategy.timeout ?? defaultSummaryTimeout),
      Effect.result
    )
  if (Result.isFailure(answer)) {
    // The reason only: a provider's error text may echo the conversation.
    const reason = Cause.isTimeoutError(answer.failure) ? "timeout" : answer.failure.reason._tag
    yield* Effect.logWarning("ContextWindow: the summary failed; dropping the oldest messages instead", { reason })
    return plain
  }
  const text = Tokens.truncateText(answer.success.text.trim(), cap)
  const summary: Prompt.MessageEncoded = { role: "system", content: `${summaryPrefix}${text}` }
  const tokens = selection.tokens + Tokens.countMessage(summary)
  if (text === "" || tokens > budget.tokens) {
    yield* Effect.logWarning("ContextWindow: the summary was empty or too long; dropping the oldest messages instead")
    return plain
  }
  const kept = fitted(entries, selection).messages
  const at = leadingSystemCount(kept)
  return {
    messages: [...kept.slice(0, at), summary, ...kept.slice(at)],
    dropped: dropped.length,
    tokens,
    summarised: true
  }
})

const leadingSystemCount = (messages: ReadonlyArray<Prompt.MessageEncoded>): number => {
  const first = messages.findIndex((message) => message.role !== "system")
  return first === -1 ? messages.length : first
}

/** The dropped messages as the summarising model reads them: `role: text`, one block each. */
const transcript = (messages: ReadonlyArray<Prompt.MessageEncoded>): string =>
  messages.map((message) => `${message.role}: ${contentText(message)}`).join("\n\n")

const contentText = (message: Prompt.MessageEncoded): string => {
  if (typeof message.content === "string") return message.content
  const texts: Array<string> = []
  for (const part of message.content) {
    const text = Tokens.partText(part)
    if (text !== "") texts.push(text)
  }
  return texts.join("\n")
}
