/**
 * How each model is doing, and whether a call may go to it now: a rolling window per model
 * (success rate, latency and time-to-first-token percentiles) and a circuit breaker per model
 * (closed, open with an open period that grows while failures continue, half-open with trial
 * calls). Every upstream call is recorded once, where the provider catalogue observes it, and
 * every provider probe feeds its models too. The router asks {@link ModelHealth} on its hot path,
 * so the methods are plain synchronous functions over in-process state; time comes from the
 * `Clock` captured when the layer is built, so `TestClock` drives windows and open periods.
 *
 * Several processes share windows and breakers through Redis or PostgreSQL (see
 * {@link layerRedis}, {@link layerSql}): a background fiber publishes this process's view and
 * reads the others' every `resilience.shared_state.sync_interval`, and an opening breaker is
 * published at once. A store that cannot be reached never blocks a call.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as SqlClient from "effect/sql/SqlClient"
import { AppConfig, type AppConfigValue, make as makeConfig } from "./AppConfig.ts"
import type { Circuit } from "./internal/circuitBreaker.ts"
import { type HealthMethods, type HealthSettings, makeHealthState, settingsOf } from "./internal/healthState.ts"
import type { SharedStore } from "./internal/sharedHealth.ts"
import * as SharedRedis from "./internal/sharedHealthRedis.ts"
import * as SharedSql from "./internal/sharedHealthSql.ts"
import type * as ModelCatalog from "./ModelCatalog.ts"

export type { Circuit } from "./internal/circuitBreaker.ts"
export type { HealthSettings } from "./internal/healthState.ts"
export { settingsOf } from "./internal/healthState.ts"

/** The outcome of one model call (or of a health probe), as {@link ModelHealth} records it. */
export interface CallOutcome {
  readonly ok: boolean
  /** The whole call, in ms. */
  readonly latencyMs: number
  /** Streamed calls: time to the first token or byte, in ms. */
  readonly ttftMs?: number | undefined
  /** Why it failed, when `ok` is false. */
  readonly reason?: ModelCatalog.ModelErrorReason | undefined
  /** From a background health probe, not a user call. */
  readonly probe?: boolean | undefined
}

/** A model's health: `healthy`, `degraded` (half-open, or under 95% success) or `unavailable`. */
export const HealthStatus = Schema.Literals(["healthy", "degraded", "unavailable"])
export type HealthStatus = typeof HealthStatus.Type

const Percentiles = Schema.Struct({ p50: Schema.NullOr(Schema.Finite), p95: Schema.NullOr(Schema.Finite) })

/**
 * `GET /v1/models/{id}/health`: the model's window merged over every process that shares it.
 * `success_rate` and the percentiles are null while the window holds no call.
 */
export class HealthReport extends Schema.Class<HealthReport>("@polyagent/runtime/HealthReport")({
  id: Schema.String,
  status: HealthStatus,
  circuit: Schema.Literals(["closed", "open", "half_open"]),
  success_rate: Schema.NullOr(Schema.Finite),
  requests: Schema.Int,
  latency_ms: Percentiles,
  ttft_ms: Percentiles,
  window_s: Schema.Finite
}) {}

/**
 * Model health and circuit breakers.
 *
 * When to use: the router asks `admit` before each call and ranks candidates with `latencyMs`
 * and `weight`; the catalogue `record`s every upstream call; the edge serves `report`.
 *
 * Details: failures whose reason is the caller's (`bad_request`, `context_too_long`,
 * `content_filtered`) count as answered calls, not against the model; every other reason counts,
 * `unauthorized` included (the provider refused our key: the model is unusable for everyone).
 * Probes feed the window (success rate, status) but never the breaker, the latency estimate or
 * the percentiles: one probe per interval must not outweigh real traffic, and a probe lists
 * models rather than completing.
 *
 * Gotchas: `admit` in half-open takes a trial slot: call it only right before sending the call,
 * and `record` its outcome. With `on_unavailable: fail_closed`, every model is refused while
 * the shared store is unreachable.
 */
export class ModelHealth extends Context.Service<
  ModelHealth,
  {
    /**
     * May a call go to `model` now? closed → true; open → false until the open period ends, then
     * half-open; half-open → true for at most `half_open_probes` trial calls in flight (taking
     * one counts; a slot whose outcome never comes back is freed after `probe_timeout`).
     */
    readonly admit: (model: string) => boolean
    /** Feeds the rolling window and the breaker (see the class's Details for what counts). */
    readonly record: (model: string, outcome: CallOutcome) => void
    readonly circuit: (model: string) => Circuit
    readonly report: (model: string) => HealthReport
    /**
     * A recent latency estimate in ms (time to first token for streams, else the whole call):
     * the larger of the latest sample and the median of the last three, so a slowdown counts
     * from its first call and a recovery after two fast ones. Undefined before any data, and
     * again once the last sample is older than the window, so a router that avoided a slow model
     * tries it again.
     */
    readonly latencyMs: (model: string) => number | undefined
    /**
     * Dynamic weight factor from recent health, clamped to `dynamic_weights` (1 = nominal):
     * the smoothed success rate squared times the square root of the median model latency over
     * this model's; `min` while its breaker is open. Deterministic.
     */
    readonly weight: (model: string) => number
    /** Failed operations on the shared store since start (0 without one). */
    readonly sharedStateErrors: () => number
  }
>()("@polyagent/runtime/ModelHealth") {}

const serviceOf = (methods: HealthMethods): ModelHealth["Service"] =>
  ModelHealth.of({ ...methods, report: (model) => new HealthReport(methods.report(model)) })

const makeWith = (settings: HealthSettings, store: Option.Option<SharedStore>) =>
  Effect.map(makeHealthState(settings, store), serviceOf)

/**
 * Health kept in this process only, with the `Clock` of the current fiber (so `TestClock` drives
 * it). Its fibers (logging breaker transitions) live as long as the scope.
 */
export const make = (settings: HealthSettings): Effect.Effect<ModelHealth["Service"], never, Scope.Scope> =>
  makeWith(settings, Option.none())

/** {@link make} as a layer: one process, nothing shared. */
export const layerFrom = (settings: HealthSettings): Layer.Layer<ModelHealth> =>
  Layer.effect(ModelHealth, make(settings))

/** {@link layerFrom} with the default `resilience` settings, for tests. */
export const layerMemory: Layer.Layer<ModelHealth> = Layer.effect(
  ModelHealth,
  Effect.flatMap(Effect.orDie(makeConfig()), (config) => make(settingsOf(config)))
)

/**
 * Health shared through the Redis at `url`, keys under `prefix` (default `polyagent:health:`;
 * tests give each their own).
 */
export const layerRedis = (
  settings: HealthSettings,
  options: { readonly url: Redacted.Redacted<string>; readonly prefix?: string | undefined }
): Layer.Layer<ModelHealth> =>
  Layer.effect(
    ModelHealth,
    Effect.flatMap(SharedRedis.make({ url: options.url, prefix: options.prefix ?? "polyagent:health:" }), (store) =>
      makeWith(settings, Option.some(store))
    )
  )

/** Health shared through the SQL database (PostgreSQL between processes), tables of migration 10. */
export const layerSql = (settings: HealthSettings): Layer.Layer<ModelHealth, never, SqlClient.SqlClient> =>
  Layer.effect(
    ModelHealth,
    Effect.flatMap(SharedSql.make, (store) => makeWith(settings, Option.some(store)))
  )

/**
 * The layer `config` asks for: Redis when `redis_url` is set, else the database when
 * `storage.postgres_url` is set, else this process only.
 */
export const layerConfig = (config: AppConfigValue): Layer.Layer<ModelHealth, never, SqlClient.SqlClient> => {
  const settings = settingsOf(config)
  if (Option.isSome(config.redisUrl)) {
    return layerRedis(settings, { url: config.redisUrl.value, prefix: config.resilience.sharedState.redisPrefix })
  }
  if (Option.isSome(config.storage.postgresUrl)) return layerSql(settings)
  return layerFrom(settings)
}

/** {@link layerConfig} with the configuration from the `AppConfig` service. */
export const layer: Layer.Layer<ModelHealth, never, AppConfig | SqlClient.SqlClient> = Layer.unwrap(
  Effect.map(Effect.service(AppConfig), layerConfig)
)
