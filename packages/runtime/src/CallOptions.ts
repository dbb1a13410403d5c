/**
 * Sampling settings of one model call that effect/ai's `LanguageModel` options do not
 * carry (temperature, token limit, stop sequences). The edge sets them around a call;
 * provider adapters read them and send what their API supports.
 */
import * as Context from "effect/Context"

/** Settings of the current model call; all absent by default (the provider's defaults apply). */
export interface CallOptions {
  readonly temperature?: number | undefined
  readonly topP?: number | undefined
  readonly maxTokens?: number | undefined
  readonly stop?: ReadonlyArray<string> | undefined
  /** An opaque end-user id some providers use for abuse monitoring. */
  readonly user?: string | undefined
}

/** The settings of the current model call. */
export const CallOptions = Context.Reference<CallOptions>("@polyagent/runtime/CallOptions", {
  defaultValue: () => ({})
})
