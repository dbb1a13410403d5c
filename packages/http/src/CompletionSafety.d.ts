/**
 * The safety policies on a completion written straight to Node's response (`ModelCompletion`,
 * the fast lane's and the stack's): the answer of a policy that answers itself (an escalation, a
 * refusal) in OpenAI's shape, and the output check of a model's answer — the whole JSON of a
 * non-streamed one, and the SSE bytes of a streamed one, read event by event (`data:` chunks'
 * `delta.content`), held back in the policy's window and released only once checked. The bytes
 * that pass are the upstream's own, unchanged; a disclaimer is one more chunk before the finish.
 * When no policy is on, `ModelCompletion` does not call this module at all.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { Safety, SessionProtocol } from "@polyagent/runtime"
import * as ChatCompletions from "./ChatCompletions.ts"
/** The `safety` event `{action, category}` of a stream. */
export declare const safetyEvent: (decision: Safety.Decision) => Uint8Array
/** A policy's own answer (`reply`) as a completion: JSON, or the chunks of a stream with the `safety` event first. */
export declare const reply: (
  header: ChatCompletions.Header,
  decision: Safety.Decision,
  text: string,
  streamed: boolean
) => Stream.Stream<Uint8Array> | Uint8Array
/**
 * A non-streamed completion's JSON after the output check: unchanged when it passes, with the
 * disclaimer after its content when there is one; fails with `SafetyStop` when it does not pass.
 */
export declare const checkCompletion: (
  bytes: Uint8Array,
  guard: Safety.Guard<never>,
  disclaimer: string | undefined
) => Effect.Effect<Uint8Array, Safety.SafetyStop>
/** One SSE event of the upstream's stream, and the answer's text it carries. */
export interface Piece {
  readonly bytes: Uint8Array
  readonly text: string
}
/**
 * A streamed completion's SSE bytes through the output check: each event is held back with the
 * text it carries until the window passes it; a failed check fails the stream with `SafetyStop`
 * before the events it read are written. At the end the whole answer is checked, the disclaimer
 * (with the `safety` event) goes before the finishing chunks, and the rest is released.
 */
export declare const guardStream: (
  bytes: Stream.Stream<Uint8Array, SessionProtocol.TurnError>,
  guard: Safety.Guard<Piece>,
  decision: Safety.Decision | undefined,
  disclaimer: string | undefined
) => Stream.Stream<Uint8Array, SessionProtocol.TurnError>
//# sourceMappingURL=CompletionSafety.d.ts.map
