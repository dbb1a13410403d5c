/**
 * Shared health in the SQL database (PostgreSQL when several processes share one; the embedded
 * SQLite works too, for one process): the tables `health_windows` and `health_breakers` of
 * migration `10_model_health`. A breaker record is replaced only by a newer one.
 */
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"
import type { BreakerRecord } from "./circuitBreaker.ts"
import * as Shared from "./sharedHealth.ts"

interface WindowRow {
  readonly process_id: string
  readonly model: string
  readonly at: string | number
  readonly summary: string
}

interface BreakerRow {
  readonly model: string
  readonly record: string
}

/** Bound on one statement, so a database that does not answer cannot stall a sync for long. */
const statementTimeout = "2 seconds"

const bounded = <A, E>(effect: Effect.Effect<A, E>) =>
  effect.pipe(
    Effect.timeout(statementTimeout),
    Effect.mapError((cause) => new Shared.SharedStateError({ store: "sql", cause }))
  )

/** A store over the current `SqlClient`. */
export const make: Effect.Effect<Shared.SharedStore, never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  return {
    name: "sql",
    publishWindows: (windows: ReadonlyArray<Shared.SharedWindow>, staleBefore: number) =>
      bounded(
        Effect.gen(function* () {
          yield* sql`DELETE FROM health_windows WHERE at < ${staleBefore}`
          for (const window of windows) {
            yield* sql`INSERT INTO health_windows (process_id, model, at, summary)
                VALUES (${window.process}, ${window.model}, ${window.at}, ${Shared.encodeSummary(window.summary)})
                ON CONFLICT (process_id, model) DO UPDATE SET at = excluded.at, summary = excluded.summary`
          }
        })
      ),
    publishBreaker: (model: string, record: BreakerRecord) =>
      bounded(
        sql`INSERT INTO health_breakers (model, updated_at, record)
            VALUES (${model}, ${record.updatedAt}, ${Shared.encodeBreaker(record)})
            ON CONFLICT (model) DO UPDATE SET updated_at = excluded.updated_at, record = excluded.record
            WHERE health_breakers.updated_at <= excluded.updated_at`
      ).pipe(Effect.asVoid),
    read: (since: number) =>
      bounded(
        Effect.all([
          sql<WindowRow>`SELECT process_id, model, at, summary FROM health_windows WHERE at >= ${since}`,
          sql<BreakerRow>`SELECT model, record FROM health_breakers`
        ])
      ).pipe(
        Effect.map(([windows, breakers]) => ({
          windows: windows.flatMap((row): ReadonlyArray<Shared.SharedWindow> => {
            const summary = Shared.readSummary(row.summary)
            return summary === undefined
              ? []
              : [{ process: row.process_id, model: row.model, at: Number(row.at), summary }]
          }),
          breakers: new Map(
            breakers.flatMap((row) => {
              const record = Shared.readBreaker(row.record)
              return record === undefined ? [] : [[row.model, record] as const]
            })
          )
        }))
      )
  } satisfies Shared.SharedStore
})
