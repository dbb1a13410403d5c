/**
 * Group commit of turn writes. Many sessions store their turns at once; each turn's write (its
 * messages, its session's `updated_at`, a new session's row) is a request to one resolver, which
 * writes the turns that are waiting together: one transaction on SQLite (one commit instead of
 * one per turn), one statement on PostgreSQL (one round trip and one WAL flush). A caller still
 * gets its answer only once its turn is committed. When a batch fails, its turns are written again
 * one by one, so only the turn at fault fails.
 */
import * as Arr from "effect/Array"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Request from "effect/Request"
import * as RequestResolver from "effect/RequestResolver"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { encodeArgument, insertRows } from "./storedText.ts"

/** One turn's write: its message rows (strings not yet encoded), and what it does to its session. */
export interface TurnWrite extends Request.Request<void, SqlError> {
  readonly _tag: "TurnWrite"
  readonly tenant: string
  readonly sessionId: string
  readonly rows: Arr.NonEmptyReadonlyArray<Record<string, unknown>>
  /** The session's new `updated_at`: its last message's time. */
  readonly updatedAt: string
  /** The new session's row to write first, or `undefined` for a session that exists. */
  readonly create: { readonly agentId: string | null; readonly createdAt: string } | undefined
}

export const TurnWrite = Request.tagged<TurnWrite>("TurnWrite")

/** The most turns written together; SQLite binds at most 32,766 parameters (17 per message). */
const maxBatch = 64

/** Writes turns together; `write` answers once the turn is committed. */
export const make = (sql: SqlClient.SqlClient): ((write: TurnWrite) => Effect.Effect<void, SqlError>) => {
  const insert = (rows: Arr.NonEmptyReadonlyArray<Record<string, unknown>>) => insertRows(sql, rows)
  const sessionRow = (write: TurnWrite, create: NonNullable<TurnWrite["create"]>): Record<string, unknown> => ({
    tenant: write.tenant,
    id: write.sessionId,
    agent_id: create.agentId,
    created_at: create.createdAt,
    updated_at: write.updatedAt
  })

  /** The turns' writes, in the statements both databases run alike. */
  const parts = (writes: Arr.NonEmptyReadonlyArray<TurnWrite>) => {
    const created = writes.flatMap((write) => (write.create === undefined ? [] : [sessionRow(write, write.create)]))
    // Existing sessions move their updated_at through a VALUES list of (tenant, id, updated_at), one
    // row per session: its latest time, should two writes of one session meet (two processes wrote).
    const latest = new Map<string, TurnWrite>()
    for (const write of writes) {
      if (write.create !== undefined) continue
      const key = JSON.stringify([write.tenant, write.sessionId])
      const seen = latest.get(key)
      if (seen === undefined || seen.updatedAt < write.updatedAt) latest.set(key, write)
    }
    const touched = Array.from(
      latest.values(),
      (write) =>
        sql`(${encodeArgument(write.tenant)}, ${encodeArgument(write.sessionId)}, ${encodeArgument(write.updatedAt)})`
    )
    return {
      created: Arr.isReadonlyArrayNonEmpty(created) ? insert(created) : undefined,
      touched:
        touched.length === 0
          ? undefined
          : sql`UPDATE sessions SET updated_at = v.column3 FROM (VALUES ${sql.csv(touched)}) AS v
                WHERE sessions.tenant = v.column1 AND sessions.id = v.column2`,
      messages: insert(Arr.flatMap(writes, (write) => write.rows))
    }
  }

  const writeBatch = (writes: Arr.NonEmptyReadonlyArray<TurnWrite>): Effect.Effect<void, SqlError> => {
    const { created, touched, messages } = parts(writes)
    return sql.onDialectOrElse({
      // One statement: PostgreSQL runs data-modifying CTEs atomically, and checks the
      // messages' foreign key against the sessions created in the same statement.
      pg: () =>
        Effect.asVoid(
          sql`WITH ${sql.csv([
            ...(created === undefined ? [] : [sql`created AS (INSERT INTO sessions ${created} RETURNING 1)`]),
            ...(touched === undefined ? [] : [sql`touched AS (${touched} RETURNING 1)`]),
            sql`stored AS (INSERT INTO messages ${messages} RETURNING 1)`
          ])} SELECT 1`
        ),
      orElse: () =>
        Effect.gen(function* () {
          if (created !== undefined) yield* sql`INSERT INTO sessions ${created}`
          yield* sql`INSERT INTO messages ${messages}`
          if (touched !== undefined) yield* touched
        }).pipe(sql.withTransaction)
    })
  }

  const resolver = RequestResolver.make<TurnWrite>((entries) =>
    Effect.exit(writeBatch(Arr.map(entries, (entry) => entry.request))).pipe(
      Effect.flatMap((exit) =>
        Exit.isSuccess(exit) || entries.length === 1
          ? Effect.sync(() => {
              for (const entry of entries) entry.completeUnsafe(exit)
            })
          : // One turn at fault (a taken number, a duplicate key) must not fail the others.
            Effect.forEach(
              entries,
              (entry) => Effect.map(Effect.exit(writeBatch([entry.request])), (own) => entry.completeUnsafe(own)),
              { discard: true }
            )
      )
    )
  ).pipe(RequestResolver.batchN(maxBatch))

  // Uninterruptible: a caller that gives up must not leave its turn half known (written, but not in its history).
  return (write) => Effect.uninterruptible(Effect.request(write, resolver))
}
