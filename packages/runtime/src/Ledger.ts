/**
 * The usage ledger as reports read it: what `Budgets` `settle` wrote (one row per model that
 * answered part of a request), summed by model, API key, UTC day or tenant over a time range,
 * for one tenant, one key of it, or every tenant.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import { isUnreachable } from "./Database.ts"
import { within } from "./internal/bounded.ts"
import { decodeRows, encodeArgument } from "./internal/storedText.ts"
import { operationTimeout, StorageError } from "./Storage.ts"

/** What a report sums by: the model, the API key, the UTC day (`YYYY-MM-DD`) or the tenant. */
export const GroupBy = Schema.Literals(["model", "key", "day", "tenant"])
export type GroupBy = typeof GroupBy.Type

/** Which rows a report sums. */
export interface UsageQuery {
  readonly groupBy: GroupBy
  /** The tenant whose usage it is; `null` for every tenant. */
  readonly tenant: string | null
  /** Only this API key's usage; `null` for every key. */
  readonly keyId: string | null
  /** Only rows written at or after this ISO 8601 UTC time (`2026-12-03T00:00:00.000Z`). */
  readonly from: string | null
  /** Only rows written before this ISO 8601 UTC time. */
  readonly to: string | null
}

/** One group of a report. `group` is null for usage without a key when grouped by key. */
export class UsageGroup extends Schema.Class<UsageGroup>("@polyagent/runtime/UsageGroup")({
  group: Schema.NullOr(Schema.String),
  /** Distinct requests: one that failed over to a second model counts once in its tenant, key and day. */
  requests: Schema.Int,
  prompt_tokens: Schema.Int,
  completion_tokens: Schema.Int,
  cost_usd: Schema.Number
}) {}

/** Reports on the usage ledger. */
export class Ledger extends Context.Service<
  Ledger,
  {
    /**
     * The usage matching `query`, one entry per group, ordered by group.
     *
     * Gotchas: costs are sums of micro-dollar amounts, rounded to a micro-dollar.
     */
    readonly report: (query: UsageQuery) => Effect.Effect<ReadonlyArray<UsageGroup>, StorageError>
  }
>()("@polyagent/runtime/Ledger") {}

const columns: Record<GroupBy, string> = { model: "model", key: "key_id", day: "day", tenant: "tenant" }

const Row = Schema.Struct({
  grouped: Schema.NullOr(Schema.String),
  requests: Schema.Unknown,
  prompt_tokens: Schema.Unknown,
  completion_tokens: Schema.Unknown,
  cost_usd: Schema.Unknown
})
const decodeRowsOf = Schema.decodeUnknownEffect(Schema.Array(Row))

// PostgreSQL answers COUNT as a bigint and SUM of integers as a numeric string; SQLite as numbers.
const numberOf = (value: unknown): number =>
  typeof value === "number" ? value : typeof value === "string" || typeof value === "bigint" ? Number(value) : 0

/** The ledger's reports on the `SqlClient` in context. */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  return Ledger.of({
    report: (query) => {
      const column = sql.literal(columns[query.groupBy])
      const filters = [
        ...(query.tenant === null ? [] : [sql`tenant = ${encodeArgument(query.tenant)}`]),
        ...(query.keyId === null ? [] : [sql`key_id = ${encodeArgument(query.keyId)}`]),
        ...(query.from === null ? [] : [sql`created_at >= ${query.from}`]),
        ...(query.to === null ? [] : [sql`created_at < ${query.to}`])
      ]
      return sql`SELECT ${column} AS grouped, COUNT(DISTINCT request_id) AS requests,
                   SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
                   SUM(cost_usd) AS cost_usd
                 FROM usage_ledger ${filters.length === 0 ? sql.literal("") : sql`WHERE ${sql.and(filters)}`}
                 GROUP BY ${column} ORDER BY ${column}`.pipe(
        Effect.map(decodeRows),
        Effect.flatMap(decodeRowsOf),
        Effect.map((rows) =>
          rows.map(
            (row) =>
              new UsageGroup({
                group: row.grouped,
                requests: numberOf(row.requests),
                prompt_tokens: numberOf(row.prompt_tokens),
                completion_tokens: numberOf(row.completion_tokens),
                cost_usd: Math.round(numberOf(row.cost_usd) * 1e6) / 1e6
              })
          )
        ),
        within(operationTimeout),
        Effect.mapError(
          (cause) => new StorageError({ operation: "usageReport", unavailable: isUnreachable(cause), cause })
        )
      )
    }
  })
})

/** The ledger on the `SqlClient` in context (SQLite or PostgreSQL), migrated by `Database`. */
export const layer: Layer.Layer<Ledger, never, SqlClient.SqlClient> = Layer.effect(Ledger, make)
