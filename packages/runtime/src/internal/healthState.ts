/**
 * The state behind `ModelHealth`: per model a breaker, a health window, a latency estimate and
 * what other processes shared of it; and, when a store is given, the fibers that publish this
 * process's view and read the others'. Synchronous methods for the router's hot path; time
 * from the `Clock` captured at construction.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type { AppConfigValue } from "../AppConfig.ts"
import type { ModelErrorReason } from "../ModelCatalog.ts"
import { type BreakerSettings, type Circuit, CircuitBreaker, type Verdict } from "./circuitBreaker.ts"
import { makeSync, type ModelState, type Reach } from "./healthSync.ts"
import { HealthWindow, merge, quantile } from "./rolling.ts"
import type { SharedStore } from "./sharedHealth.ts"

/** What `ModelHealth` needs of the configuration, in milliseconds. */
export interface HealthSettings {
  readonly breaker: BreakerSettings
  readonly weights: { readonly min: number; readonly max: number }
  readonly syncIntervalMs: number
  readonly onUnavailable: "fail_open" | "fail_closed"
}

/** The settings of `config`'s `resilience` section. */
export const settingsOf = (config: AppConfigValue): HealthSettings => {
  const { breaker, dynamicWeights, sharedState } = config.resilience
  return {
    breaker: {
      windowMs: Duration.toMillis(breaker.window),
      failureRatio: breaker.failureRatio,
      minRequests: breaker.minRequests,
      consecutiveFailures: breaker.consecutiveFailures,
      openBaseMs: Duration.toMillis(breaker.openBase),
      openMaxMs: Duration.toMillis(breaker.openMax),
      halfOpenProbes: breaker.halfOpenProbes,
      probeTimeoutMs: Duration.toMillis(breaker.probeTimeout)
    },
    weights: { min: dynamicWeights.min, max: dynamicWeights.max },
    syncIntervalMs: Duration.toMillis(sharedState.syncInterval),
    onUnavailable: sharedState.onUnavailable
  }
}

/** One call's outcome (see `ModelHealth.CallOutcome`). */
export interface Outcome {
  readonly ok: boolean
  readonly latencyMs: number
  readonly ttftMs?: number | undefined
  readonly reason?: ModelErrorReason | undefined
  readonly probe?: boolean | undefined
}

/** The fields of a `ModelHealth.HealthReport`. */
export interface ReportFields {
  readonly id: string
  readonly status: "healthy" | "degraded" | "unavailable"
  readonly circuit: Circuit
  readonly success_rate: number | null
  readonly requests: number
  readonly latency_ms: { readonly p50: number | null; readonly p95: number | null }
  readonly ttft_ms: { readonly p50: number | null; readonly p95: number | null }
  readonly window_s: number
}

/** Reasons that are the caller's doing: the model answered as it should. */
const callerReasons: ReadonlySet<ModelErrorReason> = new Set(["bad_request", "context_too_long", "content_filtered"])

/** Below this success rate a model is `degraded`. */
const degradedBelow = 0.95

/**
 * The latency estimate: the larger of the latest sample and the median of the last three. A
 * slowdown counts from its first call, a recovery after two fast calls, and a lone spike is
 * forgotten after the next call.
 */
const estimateOf = (recent: ReadonlyArray<number>): number | undefined => {
  const latest = recent.at(-1)
  if (latest === undefined || recent.length < 3) return latest
  const [x = 0, y = 0, z = 0] = recent
  return Math.max(latest, Math.max(Math.min(x, y), Math.min(Math.max(x, y), z)))
}

const nullable = (value: number | undefined): number | null => value ?? null

const successRate = (requests: number, failures: number) => (requests === 0 ? undefined : 1 - failures / requests)

/** The state and its synchronous methods; with `store`, the sync fibers run in the current scope. */
export const makeHealthState = Effect.fnUntraced(function* (
  settings: HealthSettings,
  store: Option.Option<SharedStore>
) {
  const clock = yield* Clock.Clock
  const now = () => clock.currentTimeMillisUnsafe()
  const windowMs = settings.breaker.windowMs
  const models = new Map<string, ModelState>()
  const stateOf = (model: string): ModelState => {
    let state = models.get(model)
    if (state === undefined) {
      state = {
        breaker: new CircuitBreaker(settings.breaker),
        window: new HealthWindow(windowMs, 12),
        recent: [],
        estimateAt: 0,
        remote: [],
        remoteRequests: 0,
        remoteFailures: 0
      }
      models.set(model, state)
    }
    return state
  }
  const reach: Reach = { down: false, errors: 0 }
  const refusedAll = () => reach.down && settings.onUnavailable === "fail_closed"
  const transitions = yield* Queue.unbounded<{ readonly model: string; readonly opened: boolean }>()

  const latencyMs = (model: string): number | undefined => {
    const state = models.get(model)
    if (state === undefined || now() - state.estimateAt > windowMs) return undefined
    return estimateOf(state.recent)
  }

  const record = (model: string, outcome: Outcome): void => {
    const at = now()
    const state = stateOf(model)
    const verdict: Verdict = outcome.ok
      ? "success"
      : outcome.reason !== undefined && callerReasons.has(outcome.reason)
        ? "neutral"
        : "failure"
    const failed = verdict === "failure"
    if (outcome.probe === true) {
      state.window.add(at, failed, undefined, undefined)
      return
    }
    state.window.add(at, failed, failed ? undefined : outcome.latencyMs, failed ? undefined : outcome.ttftMs)
    if (!failed || outcome.reason === "timeout") {
      // Samples older than the window are forgotten rather than mixed with new ones.
      if (at - state.estimateAt > windowMs) state.recent.length = 0
      state.recent.push(outcome.ttftMs ?? outcome.latencyMs)
      if (state.recent.length > 3) state.recent.shift()
      state.estimateAt = at
    }
    const transition = state.breaker.record(at, verdict)
    if (transition !== undefined) Queue.offerUnsafe(transitions, { model, opened: transition === "opened" })
  }

  const circuit = (model: string): Circuit => stateOf(model).breaker.circuit(now())

  const report = (model: string): ReportFields => {
    const at = now()
    const state = stateOf(model)
    const current = state.breaker.circuit(at)
    const summary = merge([state.window.summary(at), ...state.remote])
    const rate = successRate(summary.requests, summary.failures)
    const status =
      current === "open" || refusedAll() || (rate !== undefined && rate === 0)
        ? "unavailable"
        : current === "half_open" || (rate !== undefined && rate < degradedBelow)
          ? "degraded"
          : "healthy"
    return {
      id: model,
      status,
      circuit: current,
      success_rate: rate ?? null,
      requests: summary.requests,
      latency_ms: { p50: nullable(quantile(summary.latency, 0.5)), p95: nullable(quantile(summary.latency, 0.95)) },
      ttft_ms: { p50: nullable(quantile(summary.ttft, 0.5)), p95: nullable(quantile(summary.ttft, 0.95)) },
      window_s: windowMs / 1000
    }
  }

  const referenceLatency = (): number | undefined => {
    const estimates: Array<number> = []
    for (const model of models.keys()) {
      const estimate = latencyMs(model)
      if (estimate !== undefined) estimates.push(estimate)
    }
    return quantile(
      estimates.sort((a, b) => a - b),
      0.5
    )
  }

  const weight = (model: string): number => {
    const at = now()
    const state = stateOf(model)
    const { min, max } = settings.weights
    if (state.breaker.circuit(at) === "open") return min
    const counts = state.window.counts(at)
    const requests = counts.requests + state.remoteRequests
    const failures = counts.failures + state.remoteFailures
    // Smoothed so that one early failure does not send a model to the floor.
    const rate = (requests - failures + 1) / (requests + 1)
    let factor = rate * rate
    const own = latencyMs(model)
    const reference = referenceLatency()
    if (own !== undefined && reference !== undefined && own > 0) factor *= Math.sqrt(reference / own)
    return Math.min(max, Math.max(min, factor))
  }

  const methods = {
    admit: (model: string) => !refusedAll() && stateOf(model).breaker.admit(now()),
    record,
    circuit,
    report,
    latencyMs,
    weight,
    sharedStateErrors: () => reach.errors
  }

  // Transitions are logged (and, with a store, published) off the caller's path.
  const link = Option.map(store, (shared) =>
    makeSync({ store: shared, windowMs, onUnavailable: settings.onUnavailable, reach, models, stateOf, now })
  )
  const announce = (change: { readonly model: string; readonly opened: boolean }) => {
    const log = change.opened
      ? Effect.logWarning("circuit opened").pipe(
          Effect.annotateLogs({
            model: change.model,
            open_ms: Math.max(0, stateOf(change.model).breaker.snapshot().openUntil - now())
          })
        )
      : Effect.logInfo("circuit closed").pipe(Effect.annotateLogs({ model: change.model }))
    return Option.match(link, {
      onNone: () => log,
      onSome: (shared) => Effect.andThen(log, shared.publishBreaker(change.model))
    })
  }
  yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(transitions), announce)))
  if (Option.isSome(link)) {
    const tick = yield* link.value.tick
    yield* Effect.forkScoped(Effect.repeat(tick, Schedule.spaced(Duration.millis(settings.syncIntervalMs))))
  }
  return methods
})

/** The synchronous methods of `ModelHealth`, with the report as plain fields. */
export type HealthMethods = Effect.Success<ReturnType<typeof makeHealthState>>
