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
 *
 * The same place records every call's outcome in `ModelHealth` (latency; for streams the time to
 * the first part or byte; the reason of a failure), so the effect/ai path and the relay path
 * both feed the health windows and breakers. A call interrupted by its caller is not recorded:
 * it says nothing about the model.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Stream from "effect/Stream"
import type * as AiError from "effect/ai/AiError"
import { ModelCatalog, type ModelHealth, RequestId, TenantProviderKeys } from "@polyagent/runtime"
import type { Calls } from "./Provider.ts"

/** Failed upstream calls, by `provider`, `model` and `reason` (counted where they are logged). */
export const failuresTotal = Metric.counter("polyagent_upstream_failures_total", {
  description: "Failed calls to model providers, by provider, model and reason (rate_limited, timeout, network, …)",
  incremental: true
})

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
  const counted = Metric.withAttributes(failuresTotal, {
    provider: info.provider,
    model: info.id,
    reason: modelError.reason
  })
  return Effect.andThen(
    Metric.update(counted, 1),
    Effect.annotateLogs(Effect.logWarning("upstream call failed"), fields)
  )
}

const failedNow = (info: ModelCatalog.ModelInfo, method: string) => (error: AiError.AiError) =>
  Effect.flatMap(Effect.service(RequestId.RequestId), (requestId) => failed(info, method, error, requestId))

type Health = ModelHealth.ModelHealth["Service"]

/** Records in `health` the outcome of a call of `info` that started at `startedAt`, unless it was interrupted. */
const recordExit =
  (health: Health, info: ModelCatalog.ModelInfo, startedAt: number, firstAt: () => number | undefined) =>
  (exit: Exit.Exit<unknown, AiError.AiError>) =>
    Effect.map(Effect.all([Clock.currentTimeMillis, TenantProviderKeys.currentFor(info.provider)]), ([now, own]) => {
      if (exit._tag === "Failure" && Cause.hasInterruptsOnly(exit.cause)) return
      // A call made with a tenant's own key (and maybe its own server) says nothing of the
      // server's: its failures do not count against the model's health.
      if (exit._tag === "Failure" && own !== undefined) return
      const first = firstAt()
      const outcome: ModelHealth.CallOutcome = {
        ok: exit._tag === "Success",
        latencyMs: now - startedAt,
        ttftMs: first === undefined ? undefined : first - startedAt,
        reason:
          exit._tag === "Success"
            ? undefined
            : Option.match(Cause.findErrorOption(exit.cause), {
                onNone: () => "unknown" as const,
                onSome: (error) => ModelCatalog.fromAiError(info, error).reason
              })
      }
      health.record(info.id, outcome)
    })

/** `effect`, its outcome recorded in `health`. */
const timedCall = <A, R>(health: Health, info: ModelCatalog.ModelInfo, effect: Effect.Effect<A, AiError.AiError, R>) =>
  Effect.flatMap(Clock.currentTimeMillis, (startedAt) =>
    Effect.onExit(
      effect,
      recordExit(health, info, startedAt, () => undefined)
    )
  )

/** `stream`, its outcome and the time to its first element recorded in `health` when it ends. */
const timedStream = <A, R>(
  health: Health,
  info: ModelCatalog.ModelInfo,
  stream: Stream.Stream<A, AiError.AiError, R>
) =>
  Stream.unwrap(
    Effect.map(Clock.currentTimeMillis, (startedAt) => {
      let firstAt: number | undefined
      return stream.pipe(
        Stream.onFirst(() =>
          Effect.map(Clock.currentTimeMillis, (now) => {
            firstAt = now
          })
        ),
        Stream.onExit(recordExit(health, info, startedAt, () => firstAt))
      )
    })
  )

/**
 * `calls` of the model `info`, each failure logged by {@link failed} (the request id is the
 * current `RequestId`) and each outcome recorded in `health`.
 */
export const observeCalls = (info: ModelCatalog.ModelInfo, calls: Calls, health: Health): Calls => ({
  ...calls,
  generateText: (options) =>
    timedCall(health, info, Effect.tapError(calls.generateText(options), failedNow(info, "generateText"))),
  streamText: (options) =>
    timedStream(health, info, Stream.tapError(calls.streamText(options), failedNow(info, "streamText")))
})

/** `relay` of the model `info`, each failure logged by {@link failed} and each outcome recorded in `health`. */
export const observeRelay = (
  info: ModelCatalog.ModelInfo,
  relay: ModelCatalog.Relay<AiError.AiError>,
  health: Health
): ModelCatalog.Relay<AiError.AiError> => ({
  complete: (body, requestId, meter) =>
    timedCall(
      health,
      info,
      Effect.tapError(relay.complete(body, requestId, meter), (error) => failed(info, "complete", error, requestId))
    ),
  stream: (body, requestId, meter) =>
    timedStream(
      health,
      info,
      Stream.tapError(relay.stream(body, requestId, meter), (error) => failed(info, "stream", error, requestId))
    )
})
