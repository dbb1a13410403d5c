/**
 * What A/B experiments keep, next to `Storage` and on the same database (SQLite or PostgreSQL,
 * the same SQL for both): one row per model call that ran in an arm (`experiment_outcomes`),
 * feedback on sessions (`session_feedback`), and the per-arm statistics of an experiment computed
 * in SQL — counts, costs, nearest-rank latency percentiles, and feedback joined to arms through
 * the outcomes of each session. `Experiments` is the service the rest of the runtime uses.
 */
import * as Arr from "effect/Array"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import { failWith, queryOn, type StorageError } from "./internal/storageQuery.ts"
import { insertRows } from "./internal/storedText.ts"

/** What one model call in an arm came to; `session_id` is `null` for stateless calls. */
export interface Outcome {
  readonly tenant: string
  readonly experiment: string
  readonly arm: string
  readonly session_id: string | null
  readonly request_id: string
  readonly ok: boolean
  readonly latency_ms: number
  readonly cost_usd: number
}

/** An outcome as stored: its own id and time besides what the caller recorded. */
export interface StoredOutcome extends Outcome {
  readonly id: string
  readonly created_at: string
}

/** Feedback on a session as stored. */
export interface StoredFeedback {
  readonly id: string
  readonly session_id: string
  readonly score: number
  readonly comment: string | null
  readonly created_at: string
}

const Count = Schema.Number
/** One arm's figures as the database computes them; an arm without outcomes has none. */
export const ArmStats = Schema.Struct({
  arm: Schema.String,
  requests: Count,
  sessions: Count,
  errors: Count,
  cost_usd: Schema.Number,
  /** Nearest-rank percentiles of the successful calls' latencies; `null` without a successful call. */
  latency_p50: Schema.NullOr(Schema.Number),
  latency_p95: Schema.NullOr(Schema.Number),
  feedback_count: Count,
  /** `null` without feedback. */
  feedback_mean: Schema.NullOr(Schema.Number)
})
export type ArmStats = typeof ArmStats.Type

const decodeTotals = Schema.decodeUnknownEffect(
  Schema.Array(
    Schema.Struct({ arm: Schema.String, requests: Count, sessions: Count, errors: Count, cost_usd: Schema.Number })
  )
)
const decodeRanks = Schema.decodeUnknownEffect(
  Schema.Array(
    Schema.Struct({ arm: Schema.String, latency_ms: Schema.Number, is_p50: Schema.Number, is_p95: Schema.Number })
  )
)
const decodeFeedback = Schema.decodeUnknownEffect(
  Schema.Array(Schema.Struct({ arm: Schema.String, n: Count, mean: Schema.Number }))
)

/**
 * The storage of experiments.
 *
 * Gotchas: outcomes are never deleted with their session (an experiment's figures outlive the
 * conversations they were measured on).
 */
export class ExperimentStorage extends Context.Service<
  ExperimentStorage,
  {
    /** Stores outcomes, in one statement. */
    readonly insertOutcomes: (outcomes: Arr.NonEmptyReadonlyArray<StoredOutcome>) => Effect.Effect<void, StorageError>
    /** Stores feedback on the tenant's session, in one statement; `false` when the session does not exist. */
    readonly insertFeedback: (tenant: string, feedback: StoredFeedback) => Effect.Effect<boolean, StorageError>
    /** The figures of each arm of the experiment that has outcomes, in the arms' order. */
    readonly armStats: (tenant: string, experiment: string) => Effect.Effect<ReadonlyArray<ArmStats>, StorageError>
  }
>()("@polyagent/runtime/ExperimentStorage") {}

/** Builds the experiments' storage on the `SqlClient` in context, whose tables `Database` created. */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const query = queryOn(sql)

  const totals = (tenant: string, experiment: string) =>
    query`SELECT arm, CAST(COUNT(*) AS INTEGER) AS requests, CAST(COUNT(DISTINCT session_id) AS INTEGER) AS sessions,
                 CAST(SUM(CASE WHEN ok = 0 THEN 1 ELSE 0 END) AS INTEGER) AS errors, SUM(cost_usd) AS cost_usd
          FROM experiment_outcomes WHERE tenant = ${tenant} AND experiment = ${experiment}
          GROUP BY arm ORDER BY arm`.pipe(Effect.flatMap(decodeTotals))

  // Nearest rank: the p-th percentile of n values is the ceil(p * n / 100)-th smallest, in integer
  // arithmetic so that both databases (SQLite has no CEIL everywhere, no percentile_cont) agree.
  const ranks = (tenant: string, experiment: string) =>
    query`SELECT arm, latency_ms,
                 CASE WHEN rn = (n * 50 + 99) / 100 THEN 1 ELSE 0 END AS is_p50,
                 CASE WHEN rn = (n * 95 + 99) / 100 THEN 1 ELSE 0 END AS is_p95
          FROM (SELECT arm, latency_ms,
                       ROW_NUMBER() OVER (PARTITION BY arm ORDER BY latency_ms) AS rn,
                       COUNT(*) OVER (PARTITION BY arm) AS n
                FROM experiment_outcomes WHERE tenant = ${tenant} AND experiment = ${experiment} AND ok = 1) ranked
          WHERE rn = (n * 50 + 99) / 100 OR rn = (n * 95 + 99) / 100`.pipe(Effect.flatMap(decodeRanks))

  // A session's feedback counts for every arm the session ran in (one, as assignment is sticky).
  const feedback = (tenant: string, experiment: string) =>
    query`SELECT s.arm AS arm, CAST(COUNT(*) AS INTEGER) AS n, AVG(f.score) AS mean
          FROM session_feedback f
          JOIN (SELECT DISTINCT arm, session_id FROM experiment_outcomes
                WHERE tenant = ${tenant} AND experiment = ${experiment} AND session_id IS NOT NULL) s
            ON f.session_id = s.session_id
          WHERE f.tenant = ${tenant}
          GROUP BY s.arm`.pipe(Effect.flatMap(decodeFeedback))

  return ExperimentStorage.of({
    insertOutcomes: (outcomes) =>
      sql`INSERT INTO experiment_outcomes ${insertRows(
        sql,
        Arr.map(outcomes, (outcome) => ({ ...outcome, ok: outcome.ok ? 1 : 0 }))
      )}`.pipe(Effect.asVoid, failWith("insertOutcomes")),
    insertFeedback: (tenant, { id, session_id, score, comment, created_at }) =>
      // Typed casts: PostgreSQL cannot infer the parameters' types in a SELECT list.
      query`INSERT INTO session_feedback (tenant, id, session_id, score, comment, created_at)
            SELECT tenant, CAST(${id} AS TEXT), id, CAST(${score} AS DOUBLE PRECISION), CAST(${comment} AS TEXT),
                   CAST(${created_at} AS TEXT)
            FROM sessions WHERE tenant = ${tenant} AND id = ${session_id} RETURNING id`.pipe(
        Effect.map((rows) => rows.length === 1),
        failWith("insertFeedback")
      ),
    armStats: (tenant, experiment) =>
      Effect.all([totals(tenant, experiment), ranks(tenant, experiment), feedback(tenant, experiment)], {
        concurrency: "unbounded"
      }).pipe(
        Effect.map(([totalRows, rankRows, feedbackRows]) =>
          totalRows.map((row): ArmStats => {
            const ranked = rankRows.filter((rank) => rank.arm === row.arm)
            const given = feedbackRows.find((entry) => entry.arm === row.arm)
            return {
              ...row,
              latency_p50: ranked.find((rank) => rank.is_p50 === 1)?.latency_ms ?? null,
              latency_p95: ranked.find((rank) => rank.is_p95 === 1)?.latency_ms ?? null,
              feedback_count: given?.n ?? 0,
              feedback_mean: given?.mean ?? null
            }
          })
        ),
        failWith("experimentResults")
      )
  })
})

/** The experiments' storage on the `SqlClient` in context (SQLite or PostgreSQL), migrated by `Database`. */
export const layerSql: Layer.Layer<ExperimentStorage, never, SqlClient.SqlClient> = Layer.effect(
  ExperimentStorage,
  make
)

/** The nearest-rank `p`-th percentile of ascending `sorted`, as the SQL computes it. */
const nearestRank = (sorted: ReadonlyArray<number>, p: number): number | null =>
  sorted.length === 0 ? null : (sorted[Math.ceil((p * sorted.length) / 100) - 1] ?? null)

/**
 * The experiments' storage in memory, for tests and single-process use without a database: the
 * same figures as the SQL, computed over arrays.
 *
 * Gotchas: without the sessions table, a session exists for feedback once an outcome of the
 * tenant names it.
 */
export const makeMemory = (): ExperimentStorage["Service"] => {
  const outcomes: Array<StoredOutcome> = []
  const feedback: Array<StoredFeedback & { readonly tenant: string }> = []
  return ExperimentStorage.of({
    insertOutcomes: (stored) => Effect.sync(() => void outcomes.push(...stored)),
    insertFeedback: (tenant, given) =>
      Effect.sync(() => {
        const known = outcomes.some((outcome) => outcome.tenant === tenant && outcome.session_id === given.session_id)
        if (known) feedback.push({ ...given, tenant })
        return known
      }),
    armStats: (tenant, experiment) =>
      Effect.sync(() => {
        const byArm = Arr.groupBy(
          outcomes.filter((outcome) => outcome.tenant === tenant && outcome.experiment === experiment),
          (outcome) => outcome.arm
        )
        return Object.keys(byArm)
          .sort()
          .map((arm): ArmStats => {
            const rows = byArm[arm] ?? []
            const sessions = new Set(rows.flatMap((row) => (row.session_id === null ? [] : [row.session_id])))
            const latencies = rows.filter((row) => row.ok).map((row) => row.latency_ms)
            latencies.sort((a, b) => a - b)
            const scores = feedback.filter((entry) => entry.tenant === tenant && sessions.has(entry.session_id))
            return {
              arm,
              requests: rows.length,
              sessions: sessions.size,
              errors: rows.filter((row) => !row.ok).length,
              cost_usd: rows.reduce((sum, row) => sum + row.cost_usd, 0),
              latency_p50: nearestRank(latencies, 50),
              latency_p95: nearestRank(latencies, 95),
              feedback_count: scores.length,
              feedback_mean:
                scores.length === 0 ? null : scores.reduce((sum, entry) => sum + entry.score, 0) / scores.length
            }
          })
      })
  })
}

/** The experiments' storage in memory (see {@link makeMemory}). */
export const layerMemory: Layer.Layer<ExperimentStorage> = Layer.sync(ExperimentStorage, makeMemory)
