/**
 * Streamed Chat Completions chunks as effect/ai stream parts. Text and reasoning deltas pass through
 * as `text-*` and `reasoning-*` blocks; tool calls are assembled from their fragments: a call is
 * keyed by its `index` (parallel calls interleave), its arguments arrive split across chunks, and
 * only the first fragment carries its id and name. Calls are closed, parsed and emitted as
 * `tool-call` parts when the stream ends, because servers keep sending fragments after a
 * `finish_reason` (GLM repeats it on every closing chunk). Usage is taken from whichever chunk
 * carries it (OpenAI's trailing `choices: []` chunk, GLM's finish chunk).
 */
import * as Result from "effect/Result"
import * as AiError from "effect/ai/AiError"
import type * as Response from "effect/ai/Response"
import { parseArguments, responseMetadata } from "./convert-response.ts"
import { convertUsage } from "./convert-usage.ts"
import { mapFinishReason } from "./map-finish-reason.ts"
import type { ChatCompletionChunk, ToolCallDelta, Usage } from "./wire.ts"

/** Turns the chunks of one streamed answer into stream parts. One assembler per answer. */
export interface StreamAssembler {
  /** The parts one chunk adds (possibly none). */
  readonly push: (chunk: ChatCompletionChunk) => Array<Response.StreamPartEncoded>
  /** Whether a finish reason arrived; a stream that ends without one was cut short. */
  readonly finished: () => boolean
  /**
   * The closing parts once the upstream stream ended: open blocks end, assembled tool calls, then
   * `finish` (reason `unknown` if none came). Fails when a tool call has no name or its arguments
   * are not JSON.
   */
  readonly end: () => Result.Result<Array<Response.StreamPartEncoded>, AiError.AiErrorReason>
}

interface PendingCall {
  id: string
  name: string | undefined
  arguments: string
  started: boolean
}

/**
 * A fresh assembler. `fallbackCallId(n)` names the `n`-th tool call of the answer when the server
 * gives it no id (some compatible servers do not).
 */
export const makeAssembler = (fallbackCallId: (n: number) => string): StreamAssembler => {
  let metadataSent = false
  let finishReason: string | undefined
  let usage: Usage | undefined
  let block: { readonly kind: "text" | "reasoning"; readonly id: string } | undefined
  let blocks = 0
  const calls: Array<PendingCall> = []
  // The call each index currently feeds; a fragment with a new id at a known index is a new call.
  const byIndex = new Map<number, PendingCall>()

  const switchBlock = (kind: "text" | "reasoning", parts: Array<Response.StreamPartEncoded>): string => {
    if (block?.kind === kind) return block.id
    closeBlock(parts)
    const id = `${kind}-${blocks++}`
    block = { kind, id }
    parts.push(kind === "text" ? { type: "text-start", id } : { type: "reasoning-start", id })
    return id
  }

  const closeBlock = (parts: Array<Response.StreamPartEncoded>): void => {
    if (block === undefined) return
    parts.push(block.kind === "text" ? { type: "text-end", id: block.id } : { type: "reasoning-end", id: block.id })
    block = undefined
  }

  const pushToolDelta = (delta: ToolCallDelta, parts: Array<Response.StreamPartEncoded>): void => {
    const index = delta.index ?? 0
    let call = byIndex.get(index)
    const id = delta.id ?? ""
    if (call === undefined || (id !== "" && id !== call.id)) {
      call = { id: id === "" ? fallbackCallId(calls.length) : id, name: undefined, arguments: "", started: false }
      calls.push(call)
      byIndex.set(index, call)
    }
    const name = delta.function?.name ?? ""
    if (call.name === undefined && name !== "") call.name = name
    const fragment = delta.function?.arguments ?? ""
    call.arguments += fragment
    if (!call.started && call.name !== undefined) {
      call.started = true
      parts.push({ type: "tool-params-start", id: call.id, name: call.name, providerExecuted: false })
      // Fragments that came before the name are sent now, in one delta.
      if (call.arguments !== "") parts.push({ type: "tool-params-delta", id: call.id, delta: call.arguments })
    } else if (call.started && fragment !== "") {
      parts.push({ type: "tool-params-delta", id: call.id, delta: fragment })
    }
  }

  const push = (chunk: ChatCompletionChunk): Array<Response.StreamPartEncoded> => {
    const parts: Array<Response.StreamPartEncoded> = []
    if (!metadataSent) {
      metadataSent = true
      parts.push(responseMetadata(chunk))
    }
    if (chunk.usage !== null && chunk.usage !== undefined) usage = chunk.usage
    // Only the first choice is read: the adapter never asks for `n > 1`.
    const choice = chunk.choices?.[0]
    if (choice === undefined) return parts
    if (choice.finish_reason !== null && choice.finish_reason !== undefined) finishReason = choice.finish_reason
    const delta = choice.delta
    if (delta === null || delta === undefined) return parts
    const reasoning = delta.reasoning_content ?? delta.reasoning ?? ""
    if (reasoning !== "") parts.push({ type: "reasoning-delta", id: switchBlock("reasoning", parts), delta: reasoning })
    const text = (delta.content ?? "") + (delta.refusal ?? "")
    if (text !== "") parts.push({ type: "text-delta", id: switchBlock("text", parts), delta: text })
    for (const toolDelta of delta.tool_calls ?? []) {
      // Thinking is over once the model calls a tool; text stays open, it may go on after the calls.
      if (block?.kind === "reasoning") closeBlock(parts)
      pushToolDelta(toolDelta, parts)
    }
    return parts
  }

  const end = (): Result.Result<Array<Response.StreamPartEncoded>, AiError.AiErrorReason> => {
    const parts: Array<Response.StreamPartEncoded> = []
    closeBlock(parts)
    for (const call of calls) {
      if (call.name === undefined) {
        return Result.fail(new AiError.InvalidOutputError({ description: `tool call ${call.id} has no name` }))
      }
      const params = parseArguments(call.arguments)
      if (Result.isFailure(params)) {
        return Result.fail(
          new AiError.InvalidOutputError({ description: `the arguments of tool call ${call.name} are not valid JSON` })
        )
      }
      parts.push(
        { type: "tool-params-end", id: call.id },
        { type: "tool-call", id: call.id, name: call.name, params: params.success, providerExecuted: false }
      )
    }
    parts.push({
      type: "finish",
      reason: mapFinishReason(finishReason, calls.length > 0),
      usage: convertUsage(usage)
    })
    return Result.succeed(parts)
  }

  return { push, finished: () => finishReason !== undefined, end }
}
