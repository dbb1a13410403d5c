/**
 * What goes to providers with personal data masked (`redaction.providers`): the text of every
 * system, user and assistant message, on the calls through effect/ai and on the relay alike. The
 * catalogue wraps each model with these when the setting is on, so no adapter knows of it.
 */
import * as Predicate from "effect/Predicate"
import * as Prompt from "effect/ai/Prompt"
import { type ModelCatalog, Redaction } from "@polyagent/runtime"
import type { Calls } from "../Provider.ts"

const textPart = <P extends Prompt.Part>(part: P): P | Prompt.TextPart =>
  part.type === "text"
    ? Prompt.makePart("text", { text: Redaction.redactText(part.text), options: part.options })
    : part

const redactMessage = (message: Prompt.Message): Prompt.Message => {
  switch (message.role) {
    case "system":
      return Prompt.makeMessage("system", { content: Redaction.redactText(message.content), options: message.options })
    case "user":
      return Prompt.makeMessage("user", { content: message.content.map(textPart), options: message.options })
    case "assistant":
      return Prompt.makeMessage("assistant", { content: message.content.map(textPart), options: message.options })
    default:
      return message
  }
}

/** `prompt` with the text of its messages masked. */
export const redactPrompt = (prompt: Prompt.Prompt): Prompt.Prompt =>
  Prompt.fromMessages(prompt.content.map(redactMessage))

/** A message's content (a string, or parts) with its text masked. */
const redactContent = (content: unknown): unknown => {
  if (typeof content === "string") return Redaction.redactText(content)
  if (!Array.isArray(content)) return content
  return content.map((part: unknown) =>
    Predicate.isObject(part) && part["type"] === "text" && typeof part["text"] === "string"
      ? { ...part, text: Redaction.redactText(part["text"]) }
      : part
  )
}

/** A Chat Completions body with the text of its messages masked. */
export const redactBody = (body: ModelCatalog.RelayBody): ModelCatalog.RelayBody => {
  const messages = body["messages"]
  if (!Array.isArray(messages)) return body
  return {
    ...body,
    messages: messages.map((message: unknown) =>
      Predicate.isObject(message) ? { ...message, content: redactContent(message["content"]) } : message
    )
  }
}

/** `calls` sending their prompts masked. */
export const redactCalls = (calls: Calls): Calls => ({
  ...calls,
  generateText: (options) => calls.generateText({ ...options, prompt: redactPrompt(options.prompt) }),
  streamText: (options) => calls.streamText({ ...options, prompt: redactPrompt(options.prompt) })
})

/** `relay` sending its bodies masked. */
export const redactRelay = <E>(relay: ModelCatalog.Relay<E>): ModelCatalog.Relay<E> => ({
  complete: (body, requestId, meter) => relay.complete(redactBody(body), requestId, meter),
  stream: (body, requestId, meter) => relay.stream(redactBody(body), requestId, meter)
})
