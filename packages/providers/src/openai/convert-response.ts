/**
 * A complete (non-streamed) Chat Completions answer as effect/ai response parts: its metadata, the
 * model's reasoning and text, its tool calls with parsed arguments, and the finish part with the
 * reason and usage. The helpers for tool arguments and metadata are shared with the stream.
 */
import * as DateTime from "effect/DateTime"
import * as Result from "effect/Result"
import * as AiError from "effect/ai/AiError"
import type * as Response from "effect/ai/Response"
import * as Tool from "effect/ai/Tool"
import { convertUsage } from "./convert-usage.ts"
import { mapFinishReason } from "./map-finish-reason.ts"
import type { ChatCompletion } from "./wire.ts"

/**
 * The parts of `completion`. `fallbackCallId(n)` names the `n`-th tool call when the server gives
 * it no id. Fails when there is no choice, or a tool call's arguments are not JSON.
 */
export const convertCompletion = (
  completion: ChatCompletion,
  fallbackCallId: (n: number) => string
): Result.Result<Array<Response.PartEncoded>, AiError.AiErrorReason> => {
  // Only the first choice is read: the adapter never asks for `n > 1`.
  const choice = completion.choices[0]
  if (choice === undefined) {
    return Result.fail(new AiError.InvalidResponseError({ description: "the answer has no choices" }))
  }
  const message = choice.message
  const parts: Array<Response.PartEncoded> = [responseMetadata(completion)]
  const reasoning = message.reasoning_content ?? message.reasoning ?? ""
  if (reasoning !== "") parts.push({ type: "reasoning", text: reasoning })
  // A refusal is the model's answer too: the user sees it as text.
  const text = (message.content ?? "") + (message.refusal ?? "")
  if (text !== "") parts.push({ type: "text", text })
  const toolCalls = message.tool_calls ?? []
  for (const [n, call] of toolCalls.entries()) {
    const params = parseArguments(call.function.arguments ?? "")
    if (Result.isFailure(params)) {
      return Result.fail(
        new AiError.InvalidOutputError({
          description: `the arguments of tool call ${call.function.name} are not valid JSON`
        })
      )
    }
    parts.push({
      type: "tool-call",
      id: call.id ?? fallbackCallId(n),
      name: call.function.name,
      params: params.success,
      providerExecuted: false
    })
  }
  parts.push({
    type: "finish",
    reason: mapFinishReason(choice.finish_reason, toolCalls.length > 0),
    usage: convertUsage(completion.usage)
  })
  return Result.succeed(parts)
}

/**
 * A tool call's arguments as a value: empty text is `{}` (servers send it for tools without
 * parameters); JSON with `__proto__` or `constructor.prototype` keys is refused.
 */
export const parseArguments = (text: string): Result.Result<unknown, unknown> =>
  text.trim() === "" ? Result.succeed({}) : Result.try(() => Tool.unsafeSecureJsonParse(text))

/** The `response-metadata` part of an answer: its id, model and creation time (epoch seconds). */
export const responseMetadata = (answer: {
  readonly id?: string | null | undefined
  readonly model?: string | null | undefined
  readonly created?: number | null | undefined
}): Response.ResponseMetadataPartEncoded => {
  const created =
    answer.created === null || answer.created === undefined ? undefined : DateTime.make(answer.created * 1000)
  return {
    type: "response-metadata",
    ...(answer.id === null || answer.id === undefined ? {} : { id: answer.id }),
    ...(answer.model === null || answer.model === undefined ? {} : { modelId: answer.model }),
    ...(created === undefined || created._tag === "None" ? {} : { timestamp: DateTime.formatIso(created.value) })
  }
}
