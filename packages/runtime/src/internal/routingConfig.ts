/**
 * The `routing:` section of the configuration: fallbacks, routes and their strategies, `auto`,
 * A/B experiments, tenants' policies and the task classifier (see `ModelRouter`). Part of
 * `AppConfig`'s closed schema; `config/polyagent.yaml` documents every key at its default. Which
 * models the names stand for is checked against the catalogue when the router starts.
 */
import * as Schema from "effect/Schema"
import * as TaskType from "../TaskType.ts"
import { DurationSetting } from "./durationSetting.ts"

const NonEmpty = Schema.NonEmptyString

/** How a route orders its candidates (see `ModelRouter`). */
export const RouteStrategy = Schema.Literals(["cost", "latency", "quality", "balanced", "weighted", "ordered"])

const Weight = Schema.Finite.check(Schema.isGreaterThan(0))
const Share = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))

/** One entry of `routing.routes`: a named virtual model over several models. */
export const RouteEntry = Schema.Struct({
  strategy: RouteStrategy,
  /** The models of the route, in order (`ordered`), or with their weights (`weighted`; others ignore weights). */
  candidates: Schema.Union([
    Schema.NonEmptyArray(NonEmpty),
    Schema.Record(Schema.String, Weight).check(
      Schema.makeFilter((record) => (Object.keys(record).length > 0 ? undefined : "expected at least one model"))
    )
  ]),
  /** What `balanced` weighs; each share is relative to the others. */
  weights: Schema.optionalKey(Schema.Struct({ cost: Share, latency: Share, quality: Share, reliability: Share }))
})

/** The keys `routing.auto` takes: the task types of `TaskType` and `default`. */
export const autoKeys: ReadonlyArray<string> = [...TaskType.TaskType.literals, "default"]
/** An experiment's id: it is a path segment of `GET /v1/experiments/{id}`. */
const experimentId = /^[A-Za-z0-9_.-]{1,64}$/
/** An arm: a model id or a route name. */
const ArmTarget = Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(200))
const ArmWeight = Schema.Finite.check(Schema.isGreaterThan(0, { expected: "a weight > 0" }))

/**
 * `routing.experiments`: A/B experiments, each with weighted arms over models or routes; the ids
 * are path segments of `GET /v1/experiments/{id}`.
 */
const ExperimentsSetting = Schema.Record(
  Schema.String,
  Schema.Struct({
    arms: Schema.Record(ArmTarget, ArmWeight).check(
      Schema.makeFilter((arms) => (Object.keys(arms).length > 0 ? undefined : "expected at least one arm"))
    )
  })
).check(
  Schema.makeFilter((experiments) => {
    const invalid = Object.keys(experiments).filter((id) => !experimentId.test(id))
    return invalid.length === 0
      ? undefined
      : `expected experiment ids of 1-64 letters, digits or _.-; cannot use ${JSON.stringify(invalid)}`
  })
)

/** The `routing` section. */
export const Routing = Schema.Struct({
  /** A model → the models tried in order when it fails retryably before its first token. */
  fallbacks: Schema.Record(Schema.String, Schema.Array(NonEmpty)),
  /** Named virtual models: a request's `model` may name a route. */
  routes: Schema.Record(Schema.String, RouteEntry),
  /** `model: "auto"`: the detected task type → a model or a route; `default` for the others. */
  auto: Schema.Record(Schema.String, NonEmpty).check(
    Schema.makeFilter((record) => {
      const unknown = Object.keys(record).filter((key) => !autoKeys.includes(key))
      return unknown.length === 0
        ? undefined
        : `expected task types (${autoKeys.join(", ")}); unknown: ${unknown.join(", ")}`
    })
  ),
  /** A/B experiments: a request's `model` (or a route's or `auto`'s target) may name one. */
  experiments: ExperimentsSetting,
  /** What each tenant may use: `{<tenant>: {models: [...]}}`; a tenant not listed may use every model. */
  tenants: Schema.Record(Schema.String, Schema.Struct({ models: Schema.NonEmptyArray(NonEmpty) })),
  /** The model that classifies `auto` requests' task type; null: fast rules only. */
  classifier: Schema.Struct({ model: Schema.NullOr(NonEmpty), timeout: DurationSetting })
})

/** The defaults of `routing`, in YAML shape: no routing, every request names its model. */
export const routingDefaults: typeof Routing.Encoded = {
  fallbacks: {},
  routes: {},
  auto: {},
  experiments: {},
  tenants: {},
  classifier: { model: null, timeout: "2s" }
}
