/**
 * The `resilience:` section of the configuration: circuit breakers and health windows, retries
 * and their budget, dynamic weights, and how health is shared between processes. Part of
 * `AppConfig`'s closed schema; `config/polyagent.yaml` documents every key at its default.
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import { DurationSetting } from "./durationSetting.ts"

const int = (minimum: number, maximum: number) => {
  const expected = `an integer between ${minimum} and ${maximum}`
  return Schema.Number.check(Schema.isInt({ expected }), Schema.isBetween({ minimum, maximum }, { expected }))
}
const ratio = (minimum: number, maximum: number) =>
  Schema.Finite.check(
    Schema.isBetween({ minimum, maximum }, { expected: `a number between ${minimum} and ${maximum}` })
  )
const positiveDuration = DurationSetting.check(
  Schema.makeFilter((duration) => (Duration.toMillis(duration) > 0 ? undefined : "expected a duration above 0"))
)

/** Refuses a section whose duration `low` is longer than its duration `high`. */
const notAbove = <K extends string>(low: K, high: K, message: string) =>
  Schema.makeFilter((section: { readonly [key in K]: Duration.Duration }) =>
    Duration.isGreaterThan(section[low], section[high]) ? message : undefined
  )

const Breaker = Schema.Struct({
  window: positiveDuration,
  failureRatio: ratio(0.01, 1),
  minRequests: int(1, 100_000),
  consecutiveFailures: int(1, 100_000),
  openBase: positiveDuration,
  openMax: positiveDuration,
  halfOpenProbes: int(1, 1000),
  probeTimeout: positiveDuration
})
  .pipe(
    Schema.encodeKeys({
      failureRatio: "failure_ratio",
      minRequests: "min_requests",
      consecutiveFailures: "consecutive_failures",
      openBase: "open_base",
      openMax: "open_max",
      halfOpenProbes: "half_open_probes",
      probeTimeout: "probe_timeout"
    })
  )
  .check(notAbove("openBase", "openMax", "expected open_base <= open_max"))

const Retry = Schema.Struct({
  maxAttempts: int(1, 10),
  backoffBase: positiveDuration,
  backoffMax: positiveDuration,
  budgetRatio: ratio(0, 10),
  budgetPerSecond: ratio(0, 1_000_000),
  budgetWindow: positiveDuration
})
  .pipe(
    Schema.encodeKeys({
      maxAttempts: "max_attempts",
      backoffBase: "backoff_base",
      backoffMax: "backoff_max",
      budgetRatio: "budget_ratio",
      budgetPerSecond: "budget_per_second",
      budgetWindow: "budget_window"
    })
  )
  .check(notAbove("backoffBase", "backoffMax", "expected backoff_base <= backoff_max"))

const DynamicWeights = Schema.Struct({ min: ratio(0, 1), max: ratio(1, 100) })

const SharedState = Schema.Struct({
  syncInterval: positiveDuration,
  onUnavailable: Schema.Literals(["fail_open", "fail_closed"]),
  redisPrefix: Schema.NonEmptyString
}).pipe(
  Schema.encodeKeys({ syncInterval: "sync_interval", onUnavailable: "on_unavailable", redisPrefix: "redis_prefix" })
)

/** The `resilience:` section. */
export const Resilience = Schema.Struct({
  breaker: Breaker,
  retry: Retry,
  dynamicWeights: DynamicWeights,
  sharedState: SharedState
}).pipe(Schema.encodeKeys({ dynamicWeights: "dynamic_weights", sharedState: "shared_state" }))

/** Its defaults, in YAML shape. */
export const resilienceDefaults: typeof Resilience.Encoded = {
  breaker: {
    window: "60s",
    failure_ratio: 0.5,
    min_requests: 10,
    consecutive_failures: 5,
    open_base: "5s",
    open_max: "5m",
    half_open_probes: 1,
    probe_timeout: "60s"
  },
  retry: {
    max_attempts: 3,
    backoff_base: "200 millis",
    backoff_max: "2s",
    budget_ratio: 0.2,
    budget_per_second: 10,
    budget_window: "10s"
  },
  dynamic_weights: { min: 0.25, max: 2 },
  shared_state: { sync_interval: "1s", on_unavailable: "fail_open", redis_prefix: "polyagent:health:" }
}
