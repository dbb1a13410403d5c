/**
 * A retry budget (Finagle's, Envoy's `retry_budget`): over a short rolling window, retries may
 * add at most `ratio` of the requests plus `perSecond` for each second of the window. When a
 * provider fails every call, retries then cost at most 20% more upstream calls (plus a small
 * floor so that a quiet process can still retry), instead of multiplying the load on a
 * provider that is already down.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { AppConfig, type AppConfigValue, make as makeConfig } from "./AppConfig.ts"
import { RollingCounts } from "./internal/rolling.ts"

/** The budget's figures. */
export interface Settings {
  /** Share of the window's requests that may be retried (0.2 = 20%). */
  readonly ratio: number
  /** Retries allowed per second of the window on top of the ratio. */
  readonly perSecond: number
  readonly window: Duration.Duration
}

/**
 * The retry budget of this process.
 *
 * When to use: the router calls `request` once per request it serves (not per attempt), and
 * `acquire` before each retry, retrying only when it answers true.
 *
 * Details: over the last `window`, `acquire` answers true while retries so far are fewer than
 * `ratio × requests + perSecond × seconds` (the seconds of the window, or of the time since
 * the budget started when that is shorter, counting the current second); each true counts one retry. Time comes from
 * the `Clock` captured when the layer is built.
 *
 * Gotchas: counting retries as requests would let retries pay for themselves; call `request`
 * only for the first attempt of a request.
 */
export class RetryBudget extends Context.Service<
  RetryBudget,
  {
    /** Counts a request. */
    readonly request: () => void
    /** May I retry? True counts the retry against the budget. */
    readonly acquire: () => boolean
  }
>()("@polyagent/runtime/RetryBudget") {}

const REQUESTS = 0
const RETRIES = 1

/** A budget with the `Clock` of the current fiber. */
export const make = (settings: Settings): Effect.Effect<RetryBudget["Service"]> =>
  Effect.map(Effect.service(Clock.Clock), (clock) => {
    const windowMs = Duration.toMillis(settings.window)
    const counts = new RollingCounts(windowMs, 10, 2)
    const startedAt = clock.currentTimeMillisUnsafe()
    // The per-second part grows with the time the budget has run, so a fresh process cannot
    // spend a whole window's worth in its first second.
    const floor = (now: number) => (settings.perSecond * Math.min(windowMs, now - startedAt + 1000)) / 1000
    return RetryBudget.of({
      request: () => counts.add(clock.currentTimeMillisUnsafe(), REQUESTS),
      acquire: () => {
        const now = clock.currentTimeMillisUnsafe()
        const allowed = settings.ratio * counts.sum(now, REQUESTS) + floor(now)
        if (counts.sum(now, RETRIES) + 1 > allowed) return false
        counts.add(now, RETRIES)
        return true
      }
    })
  })

/** The settings of `config`'s `resilience.retry`. */
export const settingsOf = (config: AppConfigValue): Settings => ({
  ratio: config.resilience.retry.budgetRatio,
  perSecond: config.resilience.retry.budgetPerSecond,
  window: config.resilience.retry.budgetWindow
})

/**
 * How one call is retried on one model: `resilience.retry`'s attempts and backoff, in the shape
 * the router's failover takes (`baseDelay` doubles per retry with full jitter, up to `maxDelay`).
 */
export interface RetrySettings {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number
  readonly baseDelay: Duration.Duration
  /** The longest wait between two attempts; a provider asking for longer is not retried. */
  readonly maxDelay: Duration.Duration
}

/** The retry settings of `config`'s `resilience.retry`. */
export const retrySettingsOf = (config: AppConfigValue): RetrySettings => ({
  maxAttempts: config.resilience.retry.maxAttempts,
  baseDelay: config.resilience.retry.backoffBase,
  maxDelay: config.resilience.retry.backoffMax
})

/** A layer of {@link make}. */
export const layerFrom = (settings: Settings): Layer.Layer<RetryBudget> => Layer.effect(RetryBudget, make(settings))

/** A budget with the default `resilience.retry` (20% plus 10 per second over 10 s), for tests. */
export const layerMemory: Layer.Layer<RetryBudget> = Layer.effect(
  RetryBudget,
  Effect.flatMap(Effect.orDie(makeConfig()), (config) => make(settingsOf(config)))
)

/** The budget of the `AppConfig` service's `resilience.retry`. */
export const layer: Layer.Layer<RetryBudget, never, AppConfig> = Layer.unwrap(
  Effect.map(Effect.service(AppConfig), (config) => layerFrom(settingsOf(config)))
)
