/**
 * A/B experiments: weighted arms over models or routes (`routing.experiments`), a sticky arm per
 * session, an outcome per model call (success, latency, cost), feedback on sessions
 * (`POST /v1/feedback`) and per-arm results (`GET /v1/experiments/{id}`). Assignment is a pure
 * function of the experiment and the session id, so every process agrees on a session's arm with
 * no shared state; outcomes and feedback live in the database (`ExperimentStorage`), so every
 * process sees the same results.
 */
import * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Request from "effect/Request"
import * as RequestResolver from "effect/RequestResolver"
import * as Schema from "effect/Schema"
import type * as SqlClient from "effect/sql/SqlClient"
import { AppConfig } from "./AppConfig.ts"
import * as ExperimentStorage from "./ExperimentStorage.ts"
import * as Identifier from "./Identifier.ts"
import { SessionId, SessionNotFound } from "./Session.ts"
import { nowIso, type StorageError } from "./Storage.ts"

/** One arm: a model id or a route name, and its weight relative to the other arms. */
export interface Arm {
  readonly target: string
  readonly weight: number
}

/** An experiment: its id (what `routing.experiments` keys it by) and its arms. */
export interface Experiment {
  readonly id: string
  readonly arms: ReadonlyArray<Arm>
}

/** 32-bit FNV-1a over UTF-16 code units: the same number for the same text in every process. */
const fnv1a = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

/** MurmurHash3's finaliser: every input bit flips each output bit with probability ~1/2. */
const avalanche = (hash: number): number => {
  let h = hash ^ (hash >>> 16)
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A point in [0, 1) for `key` in `experimentId`: uniform, and independent between experiments. */
export const bucket = (experimentId: string, key: string): number =>
  avalanche(fnv1a(`${experimentId}\u0000${key}`)) / 2 ** 32

/**
 * The arm of `stickyKey` (a session id) in `experiment`: a pure function of the experiment's id,
 * its arms and the key — sticky, and the same in every process without shared state.
 *
 * When to use: when a request's model (or a route or `routing.auto` entry) names an experiment.
 *
 * Details: the key is hashed with the experiment id (FNV-1a, then MurmurHash3's finaliser) to a
 * point in [0, 1), which falls in an arm's share of the total weight, arms in their given order.
 *
 * Gotchas: changing the weights or the order of the arms moves some sessions to another arm;
 * arms with a weight ≤ 0 are never chosen; with no arm of positive weight (the configuration
 * refuses that) the answer is an arm with an empty target and weight 0.
 */
export const assign = (experiment: Experiment, stickyKey: string): Arm => {
  const arms = experiment.arms.filter((arm) => arm.weight > 0)
  const total = arms.reduce((sum, arm) => sum + arm.weight, 0)
  let point = bucket(experiment.id, stickyKey) * total
  for (const arm of arms) {
    if (point < arm.weight) return arm
    point -= arm.weight
  }
  // Only floating-point rounding gets here: the last arm owns the top of the range.
  return arms.at(-1) ?? { target: "", weight: 0 }
}

/** The experiments of `routing.experiments`, arms in the configuration's order. */
export const fromConfig = (
  experiments: Readonly<Record<string, { readonly arms: Readonly<Record<string, number>> }>>
): ReadonlyArray<Experiment> =>
  Object.entries(experiments).map(([id, { arms }]) => ({
    id,
    arms: Object.entries(arms).map(([target, weight]) => ({ target, weight }))
  }))

/** What one model call in an arm came to; `session_id` is `null` for stateless calls. */
export interface Outcome extends ExperimentStorage.Outcome {}

/** Feedback on a session, as `POST /v1/feedback` takes it: a score from -1 (bad) to 1 (good). */
export const Feedback = Schema.Struct({
  session_id: SessionId,
  score: Schema.Finite.check(
    Schema.isBetween({ minimum: -1, maximum: 1 }, { expected: "a number from -1 (bad) to 1 (good)" })
  ),
  comment: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(2_000)))
})
export type Feedback = typeof Feedback.Type

/** No experiment of this id is configured. */
export class ExperimentNotFound extends Schema.TaggedError<ExperimentNotFound>()("ExperimentNotFound", {
  id: Schema.String
}) {
  override get message(): string {
    return `experiment ${this.id} not found`
  }
}

/** The figures of one arm; all zeros for an arm without data (`requests` and `count` tell). */
export const ArmResults = Schema.Struct({
  target: Schema.String,
  /** The configured weight; 0 for an arm that has data but is no longer configured. */
  weight: Schema.Number,
  sessions: Schema.Int,
  requests: Schema.Int,
  errors: Schema.Int,
  error_rate: Schema.Number,
  /** Nearest-rank percentiles of the successful calls' latencies. */
  latency_ms: Schema.Struct({ p50: Schema.Number, p95: Schema.Number }),
  cost_usd: Schema.Struct({ total: Schema.Number, per_request: Schema.Number }),
  /** Feedback on the sessions that ran in this arm. */
  feedback: Schema.Struct({ count: Schema.Int, mean_score: Schema.Number })
})
export type ArmResults = typeof ArmResults.Type

/** `GET /v1/experiments/{id}`: the configured arms in order, then arms that have data only. */
export class ExperimentResults extends Schema.Class<ExperimentResults>("@polyagent/runtime/ExperimentResults")({
  id: Schema.String,
  arms: Schema.Array(ArmResults)
}) {}

/** The results of one arm from its stored figures. */
const armResults = (target: string, weight: number, stats: ExperimentStorage.ArmStats | undefined): ArmResults => {
  const requests = stats?.requests ?? 0
  const errors = stats?.errors ?? 0
  const cost = stats?.cost_usd ?? 0
  return {
    target,
    weight,
    sessions: stats?.sessions ?? 0,
    requests,
    errors,
    error_rate: requests === 0 ? 0 : errors / requests,
    latency_ms: { p50: stats?.latency_p50 ?? 0, p95: stats?.latency_p95 ?? 0 },
    cost_usd: { total: cost, per_request: requests === 0 ? 0 : cost / requests },
    feedback: { count: stats?.feedback_count ?? 0, mean_score: stats?.feedback_mean ?? 0 }
  }
}

/**
 * Outcomes, feedback and results of the configured experiments.
 *
 * Gotchas: `record` waits until its outcome is stored (outcomes recorded at the same time are
 * written together); a caller on a hot path forks it. It never fails: an outcome that cannot be
 * stored is logged and dropped.
 */
export class Experiments extends Context.Service<
  Experiments,
  {
    /** Stores what a call in an arm came to; never fails (a failure is logged); batches concurrent records. */
    readonly record: (outcome: Outcome) => Effect.Effect<void>
    /** Stores feedback on the tenant's session; `SessionNotFound` when it has no such session. */
    readonly feedback: (
      tenant: string,
      feedback: { session_id: string; score: number; comment?: string }
    ) => Effect.Effect<void, SessionNotFound | StorageError>
    /** The per-arm results of a configured experiment (zeros without data). */
    readonly results: (
      tenant: string,
      id: string
    ) => Effect.Effect<ExperimentResults, ExperimentNotFound | StorageError>
  }
>()("@polyagent/runtime/Experiments") {
  /** No configured experiment, outcomes and feedback in memory: for tests of code that records outcomes. */
  static readonly layerMemory: Layer.Layer<Experiments> = Layer.suspend(() => layerMemory([]))
}

interface RecordOutcome extends Request.Request<void, StorageError> {
  readonly _tag: "RecordOutcome"
  readonly outcome: ExperimentStorage.StoredOutcome
}
const RecordOutcome = Request.tagged<RecordOutcome>("RecordOutcome")

/** The most outcomes written in one statement (10 parameters each). */
const maxBatch = 500

/** The service for `experiments`, on the `ExperimentStorage` in context. */
export const make = (experiments: ReadonlyArray<Experiment>) =>
  Effect.gen(function* () {
    const storage = yield* ExperimentStorage.ExperimentStorage
    const byId = new Map(experiments.map((experiment) => [experiment.id, experiment]))

    const resolver = RequestResolver.make<RecordOutcome>((entries) =>
      Effect.exit(storage.insertOutcomes(Arr.map(entries, (entry) => entry.request.outcome))).pipe(
        Effect.map((exit) => {
          for (const entry of entries) entry.completeUnsafe(exit)
        })
      )
    ).pipe(RequestResolver.batchN(maxBatch))

    const record = (outcome: Outcome) =>
      Effect.gen(function* () {
        const stored = { ...outcome, id: yield* Identifier.make("out"), created_at: yield* nowIso }
        const exit = yield* Effect.exit(Effect.request(RecordOutcome({ outcome: stored }), resolver))
        if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) {
          // The error's message only: its cause may quote the statement's values.
          const reason = Cause.findErrorOption(exit.cause)
          yield* Effect.logWarning("Experiments: an outcome could not be stored", {
            experiment: outcome.experiment,
            reason: reason._tag === "Some" ? reason.value.message : "defect"
          })
        }
      }).pipe(Effect.withSpan("Experiments.record", undefined, { captureStackTrace: false }))

    return Experiments.of({
      record,
      feedback: Effect.fn("Experiments.feedback")(function* (tenant, feedback) {
        const stored = yield* storage.insertFeedback(tenant, {
          id: yield* Identifier.make("fb"),
          session_id: feedback.session_id,
          score: feedback.score,
          comment: feedback.comment ?? null,
          created_at: yield* nowIso
        })
        if (!stored) return yield* new SessionNotFound({ session_id: feedback.session_id })
      }),
      results: Effect.fn("Experiments.results")(function* (tenant, id) {
        const experiment = byId.get(id)
        if (experiment === undefined) return yield* new ExperimentNotFound({ id })
        const stats = yield* storage.armStats(tenant, id)
        const configured = new Set(experiment.arms.map((arm) => arm.target))
        const arms = [
          ...experiment.arms.map((arm) =>
            armResults(
              arm.target,
              arm.weight,
              stats.find((row) => row.arm === arm.target)
            )
          ),
          ...stats.filter((row) => !configured.has(row.arm)).map((row) => armResults(row.arm, 0, row))
        ]
        return new ExperimentResults({ id, arms })
      })
    })
  })

/** The service for `experiments` on the database in context. */
export const layer = (experiments: ReadonlyArray<Experiment>): Layer.Layer<Experiments, never, SqlClient.SqlClient> =>
  Layer.effect(Experiments, make(experiments)).pipe(Layer.provide(ExperimentStorage.layerSql))

/** The service for `experiments` with outcomes and feedback in memory (`ExperimentStorage.layerMemory`). */
export const layerMemory = (experiments: ReadonlyArray<Experiment>): Layer.Layer<Experiments> =>
  Layer.effect(Experiments, make(experiments)).pipe(Layer.provide(ExperimentStorage.layerMemory))

/** The service for the experiments of `routing.experiments` in the `AppConfig`, on the database in context. */
export const layerConfig: Layer.Layer<Experiments, never, SqlClient.SqlClient | AppConfig> = Layer.unwrap(
  Effect.map(Effect.service(AppConfig), (config) => layer(fromConfig(config.routing.experiments)))
)
