/**
 * Token counting with OpenAI's `o200k_base` encoding (GPT-4o, GPT-4.1, GPT-5, o-series), offline,
 * through `gpt-tokenizer`. Models that bill with another tokenizer get a close estimate, not their
 * exact count. The context window counts prompts with it before a call; providers that must
 * estimate usage themselves (the `local` model, a stream cut short, a server that reports none)
 * count with it too. Prompt messages are counted in effect/ai's decoded (`Prompt.Message`) or
 * encoded (`Prompt.MessageEncoded`) form, stored conversations as our `Message`s.
 *
 * The encoding is loaded on the first count, not at start-up: its 200,000 ranks hold ~20 MB of
 * heap (~60 MB of RSS once parsed) and take 0.1–0.3 s to load, which a server pays only once it
 * counts tokens.
 */
import * as Formatter from "effect/Formatter"
import type * as Prompt from "effect/ai/Prompt"
import type * as O200kBase from "gpt-tokenizer/encoding/o200k_base"
import { createRequire } from "node:module"
import type { Message } from "./Message.ts"

// Synchronous, so that counting stays a plain function: `require` of the package's CommonJS build.
const load = (): typeof O200kBase => createRequire(import.meta.url)("gpt-tokenizer/encoding/o200k_base")
let encoding: typeof O200kBase | undefined
const o200kBase = (): typeof O200kBase => (encoding ??= load())

// gpt-tokenizer throws on text that spells a special token ("<|endoftext|>") unless told otherwise:
// user text is data, so such strings are counted as the ordinary characters they are.
const asPlainText = { disallowedSpecial: new Set<string>() }

/**
 * OpenAI's chat format wraps every message as `<|im_start|>{role}<|im_sep|>{content}<|im_end|>`:
 * three tokens besides the role and the content.
 */
export const tokensPerMessage = 3

/**
 * Every reply is primed with `<|im_start|>assistant<|im_sep|>`, which the prompt pays for once:
 * the cost of a prompt is this plus {@link countMessage} of each message.
 */
export const replyPriming = 3

/**
 * The number of `o200k_base` tokens in `text`. Text that looks like a special token
 * (`<|endoftext|>`) is counted as plain text; it never fails.
 *
 * Details: a conversation is counted again on every turn (its context window, and the `local`
 * model's usage), so the counts of recently counted texts are remembered, least recently used
 * dropped first, up to {@link countCacheChars} characters of text in all.
 */
export const countText = (text: string): number => {
  const cached = counted.get(text)
  if (cached !== undefined) {
    // Moved to the end: a Map iterates in insertion order, so the front is the least recently used.
    counted.delete(text)
    counted.set(text, cached)
    return cached
  }
  const count = o200kBase().countTokens(text, asPlainText)
  remember(text, count)
  return count
}

/** The most characters of text whose token counts {@link countText} keeps (8 MB of UTF-16). */
export const countCacheChars = 4 * 1024 * 1024

const counted = new Map<string, number>()
let countedChars = 0

const remember = (text: string, count: number): void => {
  if (text.length > countCacheChars / 16) return
  counted.set(text, count)
  countedChars += text.length
  for (const [oldest] of counted) {
    if (countedChars <= countCacheChars) break
    counted.delete(oldest)
    countedChars -= oldest.length
  }
}

/**
 * The first `maxTokens` tokens of `text` (all of it when it is shorter). A multi-byte character cut
 * in half by the limit is left out rather than garbled.
 */
export const truncateText = (text: string, maxTokens: number): string => {
  const { decode, encode } = o200kBase()
  const tokens = encode(text, asPlainText)
  return tokens.length <= maxTokens ? text : decode(tokens.slice(0, Math.max(0, maxTokens)))
}

/**
 * The prompt tokens a chat request with these messages costs, as OpenAI counts them: per message
 * 3 tokens of framing + the role + the content, plus 3 tokens that prime the reply. For a
 * conversation of text messages this equals `gpt-tokenizer`'s `encodeChat(chat, "gpt-4o").length`.
 *
 * Takes decoded `Prompt.Message`s (what a `LanguageModel` receives) as well as encoded ones (what
 * the session actor builds); string content and a single text part count the same.
 *
 * Gotchas: parts of one message are counted separately and summed (a close estimate when a message
 * has several); tool calls and results count their name and JSON; files count only their name,
 * since what an image or a PDF costs depends on the provider.
 */
export const countMessages = (messages: Iterable<Prompt.MessageEncoded>): number => {
  let total = replyPriming
  for (const message of messages) total += countMessage(message)
  return total
}

/**
 * What one message adds to a prompt: 3 tokens of framing + the role + the content, without the
 * reply priming that {@link countMessages} adds once per prompt. Same counting rules.
 */
export const countMessage = (message: Prompt.MessageEncoded): number =>
  tokensPerMessage + countText(message.role) + countContent(message)

/**
 * The prompt tokens of a stored conversation, counted like {@link countMessages}: framing, role
 * and text content of each message, plus the reply priming.
 */
export const countStored = (messages: Iterable<Message>): number => {
  let total = replyPriming
  for (const message of messages) total += tokensPerMessage + countText(message.role) + countText(message.content)
  return total
}

const countContent = (message: Prompt.MessageEncoded): number => {
  if (typeof message.content === "string") return countText(message.content)
  let total = 0
  for (const part of message.content) total += countText(partText(part))
  return total
}

type AnyPart = Prompt.UserMessagePartEncoded | Prompt.AssistantMessagePartEncoded | Prompt.ToolMessagePartEncoded

/**
 * The text a provider would send for a part; also what a summary of the conversation reads.
 * `Formatter.formatJson` never throws (cycles, bigints).
 */
export const partText = (part: AnyPart): string => {
  switch (part.type) {
    case "text":
    case "reasoning":
      return part.text
    case "file":
      return part.fileName ?? ""
    case "tool-call":
      return `${part.name} ${Formatter.formatJson(part.params)}`
    case "tool-result":
      return part.modelOutput === undefined
        ? `${part.name} ${Formatter.formatJson(part.result)}`
        : `${part.name} ${modelOutputText(part.modelOutput)}`
    case "tool-approval-request":
    case "tool-approval-response":
      return ""
  }
}

// Prompt.toolModelOutputToText, for encoded parts as well as decoded ones.
const modelOutputText = (parts: ReadonlyArray<Prompt.TextPartEncoded | Prompt.FilePartEncoded>): string =>
  parts
    .map((part) =>
      part.type === "text"
        ? part.text
        : `[${part.mediaType}${part.fileName === undefined ? "" : ` ${part.fileName}`} omitted]`
    )
    .join("\n")
