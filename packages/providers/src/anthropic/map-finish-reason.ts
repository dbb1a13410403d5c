/**
 * Anthropic's `stop_reason` as effect/ai's finish reason, the one vocabulary the runtime and the
 * edge (`finish_reason` of the OpenAI-compatible routes) understand. Pure.
 */
import type * as Response from "effect/ai/Response"

/**
 * Maps a `stop_reason`:
 *
 * | Anthropic | effect/ai |
 * | --- | --- |
 * | `end_turn`, `stop_sequence` | `stop` |
 * | `max_tokens`, `model_context_window_exceeded` | `length` |
 * | `tool_use` | `tool-calls` |
 * | `pause_turn` (a server tool paused a long turn) | `pause` |
 * | `refusal` (a safety classifier stopped the answer) | `content-filter` |
 * | `null` or absent | `unknown` |
 * | anything newer | `other` |
 */
export const mapFinishReason = (stopReason: string | null | undefined): Response.FinishReason => {
  switch (stopReason) {
    case "end_turn":
    case "stop_sequence":
      return "stop"
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length"
    case "tool_use":
      return "tool-calls"
    case "pause_turn":
      return "pause"
    case "refusal":
      return "content-filter"
    case null:
    case undefined:
      return "unknown"
    default:
      return "other"
  }
}
