/**
 * Chat Completions `finish_reason` as effect/ai's `FinishReason`. Besides OpenAI's values it knows
 * those of compatible servers: GLM's `sensitive` (content filter) and `network_error`, OpenRouter's
 * `error`.
 */
import type * as Response from "effect/ai/Response"

/**
 * The finish reason of an answer. A `stop` with tool calls is `tool-calls` (OpenAI answers `stop`
 * when the tool was forced); a missing reason is `unknown`, one we do not know is `other`.
 */
export const mapFinishReason = (reason: string | null | undefined, hasToolCalls: boolean): Response.FinishReason => {
  switch (reason) {
    case "stop":
    case "end_turn":
      return hasToolCalls ? "tool-calls" : "stop"
    case "length":
    case "max_tokens":
      return "length"
    case "tool_calls":
    case "function_call":
      return "tool-calls"
    case "content_filter":
    case "sensitive":
      return "content-filter"
    case "error":
    case "network_error":
      return "error"
    case null:
    case undefined:
      return hasToolCalls ? "tool-calls" : "unknown"
    default:
      return "other"
  }
}
