/**
 * The log line of a failed upstream call, one per call, whichever way the model was called:
 * through effect/ai's `LanguageModel` (chat turns, agents, converted completions) or through the
 * Chat Completions relay. The catalogue (`ProviderCatalog.ts`) wraps every model's calls and
 * relay with {@link observeCalls} and {@link observeRelay}, so no provider logs it itself.
 *
 * `upstream call failed provider=openai model=gpt-4o-mini method=complete status=429 reason=rate_limited retry_after_ms=7000 detail="…" request_id=req_…`
 *
 * Level `warn`. `status` is the upstream's HTTP status when it answered; `reason` is the runtime's
 * (`ModelCatalog.ModelErrorReason`: `rate_limited`, `timeout`, `network`, `overloaded`, …), and
 * `detail` the adapter's own description of it ("Connection failed: the provider could not be
 * reached"). Never the key, never the upstream's body: descriptions are written by the adapters,
 * which do not copy upstream text (see `openai/map-error.ts`, `anthropic/map-error.ts`); the
 * upstream's own words are logged by the adapters at `debug` only, without the key.
 */
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import * as Stream from "effect/Stream"
import type * as AiError from "effect/ai/AiError"
import { ModelCatalog, RequestId } from "@polyagent/runtime"
import type { Calls } from "./Provider.ts"

/** Longest `detail` logged. */
const maxDetail = 200

/** The upstream's HTTP status in `reason`: its HTTP context, else a `status` the adapter put in its metadata. */
const statusOf = (reason: AiError.AiErrorReason): number | undefined => {
  const http = Predicate.hasProperty(reason, "http") ? reason.http : undefined
  if (Predicate.hasProperty(http, "response") && Predicate.hasProperty(http.response, "status")) {
    const status = http.response.status
    if (Predicate.isNumber(status)) return status
  }
  const metadata = Predicate.hasProperty(reason, "metadata") ? reason.metadata : undefined
  if (!Predicate.isObject(metadata)) return undefined
  for (const details of Object.values(metadata)) {
    if (Predicate.hasProperty(details, "status") && Predicate.isNumber(details.status)) return details.status
  }
  return undefined
}

const detailOf = (reason: AiError.AiErrorReason): string | undefined => {
  const description = Predicate.hasProperty(reason, "description") ? reason.description : undefined
  if (!Predicate.isString(description) || description === "") return undefined
  return description.length > maxDetail ? `${description.slice(0, maxDetail)}…` : description
}

/** Logs the failed call `method` of the model `info` with `error`, for the request `requestId`. */
export const failed = (
  info: ModelCatalog.ModelInfo,
  method: string,
  error: AiError.AiError,
  requestId: string
): Effect.Effect<void> => {
  const modelError = ModelCatalog.fromAiError(info, error)
  const fields: Record<string, string | number> = { provider: info.provider, model: info.id, method }
  const status = statusOf(error.reason)
  if (status !== undefined) fields["status"] = status
  fields["reason"] = modelError.reason
  if (modelError.retry_after_ms !== null) fields["retry_after_ms"] = modelError.retry_after_ms
  const detail = detailOf(error.reason)
  if (detail !== undefined) fields["detail"] = detail
  if (requestId !== "") fields["request_id"] = requestId
  return Effect.annotateLogs(Effect.logWarning("upstream call failed"), fields)
}

const failedNow = (info: ModelCatalog.ModelInfo, method: string) => (error: AiError.AiError) =>
  Effect.flatMap(Effect.service(RequestId.RequestId), (requestId) => failed(info, method, error, requestId))

/** `calls` of the model `info`, each failure logged by {@link failed} (the request id is the current `RequestId`). */
export const observeCalls = (info: ModelCatalog.ModelInfo, calls: Calls): Calls => ({
  ...calls,
  generateText: (options) => Effect.tapError(calls.generateText(options), failedNow(info, "generateText")),
  streamText: (options) => Stream.tapError(calls.streamText(options), failedNow(info, "streamText"))
})

/** `relay` of the model `info`, each failure logged by {@link failed}. */
export const observeRelay = (
  info: ModelCatalog.ModelInfo,
  relay: ModelCatalog.Relay<AiError.AiError>
): ModelCatalog.Relay<AiError.AiError> => ({
  complete: (body, requestId, meter) =>
    Effect.tapError(relay.complete(body, requestId, meter), (error) => failed(info, "complete", error, requestId)),
  stream: (body, requestId, meter) =>
    Stream.tapError(relay.stream(body, requestId, meter), (error) => failed(info, "stream", error, requestId))
})
