/**
 * Token counting with OpenAI's `o200k_base` encoding (GPT-4o, GPT-4.1, GPT-5, o-series), offline,
 * through `gpt-tokenizer`. Models that bill with another tokenizer get a close estimate, not their
 * exact count. Used for the `local` model's usage and meant for any provider that must estimate
 * usage itself (a stream cut short, a server that reports none).
 */
import { Formatter } from "effect"
import { Prompt } from "effect/ai"
import { countTokens } from "gpt-tokenizer/encoding/o200k_base"

// gpt-tokenizer throws on text that spells a special token ("<|endoftext|>") unless told otherwise:
// user text is data, so such strings are counted as the ordinary characters they are.
const asPlainText = { disallowedSpecial: new Set<string>() }

/**
 * OpenAI's chat format wraps every message as `<|im_start|>{role}<|im_sep|>{content}<|im_end|>`:
 * three tokens besides the role and the content.
 */
const tokensPerMessage = 3

/** Every reply is primed with `<|im_start|>assistant<|im_sep|>`, which the prompt pays for. */
const replyPriming = 3

/**
 * The number of `o200k_base` tokens in `text`. Text that looks like a special token
 * (`<|endoftext|>`) is counted as plain text; it never fails.
 */
export const countText = (text: string): number => countTokens(text, asPlainText)

/**
 * The prompt tokens a chat request with these messages costs, as OpenAI counts them: per message
 * 3 tokens of framing + the role + the content, plus 3 tokens that prime the reply. For a
 * conversation of text messages this equals `gpt-tokenizer`'s `encodeChat(chat, "gpt-4o").length`.
 *
 * Gotchas: parts of one message are counted separately and summed (a close estimate when a message
 * has several); tool calls and results count their name and JSON; files count only their name,
 * since what an image or a PDF costs depends on the provider.
 */
export const countMessages = (messages: Iterable<Prompt.Message>): number => {
  let total = replyPriming
  for (const message of messages) {
    total += tokensPerMessage + countText(message.role) + countContent(message)
  }
  return total
}

const countContent = (message: Prompt.Message): number => {
  if (message.role === "system") {
    return countText(message.content)
  }
  let total = 0
  for (const part of message.content) {
    total += countText(partText(part))
  }
  return total
}

type AnyPart = Prompt.UserMessagePart | Prompt.AssistantMessagePart | Prompt.ToolMessagePart

// The text a provider would send for a part; Formatter.formatJson never throws (cycles, bigints).
const partText = (part: AnyPart): string => {
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
        : `${part.name} ${Prompt.toolModelOutputToText(part.modelOutput)}`
    case "tool-approval-request":
    case "tool-approval-response":
      return ""
  }
}
