/**
 * Where `Budgets` keeps its counts: SQL alike on SQLite and PostgreSQL, or one process's memory. A budgeted scope (a tenant, a key) has one
 * `budget_spend` row per period (a UTC day `2026-12-03` or month `2026-12`) with what was spent and
 * what calls in flight hold reserved. Reserving is one conditional upsert per row, all in one
 * transaction: PostgreSQL locks each row and checks the condition on its latest version, so
 * processes racing for the last dollars are admitted one after another; SQLite has one writer.
 * Settling is group-committed: the settlements that wait together are one transaction (their
 * ledger rows in one insert, one update per budget row they touch), and each caller is answered
 * once its own is committed.
 */
import * as Arr from "effect/Array"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Request from "effect/Request"
import * as RequestResolver from "effect/RequestResolver"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { encodeArgument, insertRows } from "./storedText.ts"

/** A reservation held on one budget row. */
export interface Hold {
  /** `tenant:<tenant>` or `key:<key id>`. */
  readonly scope: string
  /** The UTC day (`YYYY-MM-DD`) or month (`YYYY-MM`). */
  readonly period: string
  readonly limitUsd: number
}

/** The budget row that refused a reservation. */
export class Refused extends Data.TaggedError("Refused")<{ readonly hold: Hold }> {}

/** One call's settlement: its ledger rows, and what it releases and spends on each budget row it held. */
export interface Settlement extends Request.Request<void, SqlError> {
  readonly _tag: "Settlement"
  readonly rows: ReadonlyArray<Record<string, unknown>>
  readonly holds: ReadonlyArray<Hold>
  readonly reservedUsd: number
  readonly spentUsd: number
}

export const Settlement = Request.tagged<Settlement>("Settlement")

/** The most settlements committed together (13 parameters a ledger row; SQLite binds 32,766). */
const maxBatch = 128

/** The budget rows' order, so that two transactions never wait on each other's rows (no deadlock). */
const byRow = (a: Hold, b: Hold): number =>
  a.scope < b.scope ? -1 : a.scope > b.scope ? 1 : a.period < b.period ? -1 : a.period > b.period ? 1 : 0

/** Where budgets are kept: the database every process shares, or one process's memory. */
export interface Store {
  /**
   * Adds `amountUsd` to the reserved amount of every held row whose spent + reserved is under its
   * limit, all or nothing; fails with {@link Refused} (nothing reserved) at the first that is not.
   */
  readonly reserve: (
    holds: Arr.NonEmptyReadonlyArray<Hold>,
    amountUsd: number
  ) => Effect.Effect<void, SqlError | Refused>
  /** Writes the settlement; answers once it is committed. */
  readonly settle: (settlement: Settlement) => Effect.Effect<void, SqlError>
  /** The monthly budget a key was created with; `null` when it has none (or no such key). */
  readonly keyBudget: (keyId: string) => Effect.Effect<number | null, SqlError>
}

/**
 * Budgets in this process's memory, with the same rule: for one process without shared storage,
 * and for tests. No ledger is kept (its charges only count against the budgets), and no key has a
 * budget of its own.
 */
export const memory = (): Store => {
  const rows = new Map<string, { spent: number; reserved: number }>()
  const rowOf = (hold: Hold) => {
    const key = JSON.stringify([hold.scope, hold.period])
    let row = rows.get(key)
    if (row === undefined) rows.set(key, (row = { spent: 0, reserved: 0 }))
    return row
  }
  return {
    reserve: (holds, amountUsd) =>
      Effect.suspend(() => {
        const refused = holds.find((hold) => {
          const row = rowOf(hold)
          return hold.limitUsd <= 0 || row.spent + row.reserved >= hold.limitUsd
        })
        if (refused !== undefined) return Effect.fail(new Refused({ hold: refused }))
        for (const hold of holds) rowOf(hold).reserved += amountUsd
        return Effect.void
      }),
    settle: (settlement) =>
      Effect.sync(() => {
        for (const hold of settlement.holds) {
          const row = rowOf(hold)
          row.spent += settlement.spentUsd
          row.reserved -= settlement.reservedUsd
        }
      }),
    keyBudget: () => Effect.succeed(null)
  }
}

/** Budgets in the database of `sql`. */
export const make = (sql: SqlClient.SqlClient): Store => {
  /**
   * Adds `amountUsd` to the reserved amount of every held row whose spent + reserved is under its
   * limit, in one transaction; fails with {@link Refused} (nothing reserved) at the first that is not.
   */
  const reserve = (
    holds: Arr.NonEmptyReadonlyArray<Hold>,
    amountUsd: number
  ): Effect.Effect<void, SqlError | Refused> =>
    Effect.forEach(
      [...holds].sort(byRow),
      (hold) =>
        hold.limitUsd <= 0
          ? Effect.fail(new Refused({ hold }))
          : sql`INSERT INTO budget_spend (scope, period, spent_usd, reserved_usd)
                VALUES (${encodeArgument(hold.scope)}, ${hold.period}, 0, ${amountUsd})
                ON CONFLICT (scope, period) DO UPDATE SET reserved_usd = budget_spend.reserved_usd + ${amountUsd}
                WHERE budget_spend.spent_usd + budget_spend.reserved_usd < ${hold.limitUsd}
                RETURNING period`.pipe(
              Effect.flatMap((rows) => (rows.length === 1 ? Effect.void : Effect.fail(new Refused({ hold }))))
            ),
      { discard: true }
    ).pipe(sql.withTransaction)

  const writeBatch = (settlements: Arr.NonEmptyReadonlyArray<Settlement>): Effect.Effect<void, SqlError> => {
    const rows = settlements.flatMap((settlement) => settlement.rows)
    // One update per budget row, however many settlements of the batch held it.
    const changes = new Map<string, { hold: Hold; reserved: number; spent: number }>()
    for (const settlement of settlements) {
      for (const hold of settlement.holds) {
        const key = JSON.stringify([hold.scope, hold.period])
        const change = changes.get(key) ?? { hold, reserved: 0, spent: 0 }
        change.reserved += settlement.reservedUsd
        change.spent += settlement.spentUsd
        changes.set(key, change)
      }
    }
    return Effect.gen(function* () {
      if (Arr.isReadonlyArrayNonEmpty(rows)) yield* sql`INSERT INTO usage_ledger ${insertRows(sql, rows)}`
      for (const { hold, reserved, spent } of Array.from(changes.values()).sort((a, b) => byRow(a.hold, b.hold))) {
        yield* sql`UPDATE budget_spend SET spent_usd = spent_usd + ${spent}, reserved_usd = reserved_usd - ${reserved}
                   WHERE scope = ${encodeArgument(hold.scope)} AND period = ${hold.period}`
      }
    }).pipe(sql.withTransaction)
  }

  const resolver = RequestResolver.make<Settlement>((entries) =>
    Effect.flatMap(Effect.exit(writeBatch(Arr.map(entries, (entry) => entry.request))), (exit) =>
      Effect.sync(() => {
        for (const entry of entries) entry.completeUnsafe(exit)
      })
    )
  ).pipe(RequestResolver.batchN(maxBatch))

  // With the others waiting now.
  const settle: Store["settle"] = (settlement) => Effect.uninterruptible(Effect.request(settlement, resolver))

  const keyBudget: Store["keyBudget"] = (keyId) =>
    Effect.map(
      sql<{ readonly budget_usd: unknown }>`SELECT budget_usd FROM api_keys WHERE id = ${encodeArgument(keyId)}`,
      (rows) => {
        const value = rows[0]?.budget_usd
        return typeof value === "number" ? value : typeof value === "string" ? Number(value) : null
      }
    )

  return { reserve, settle, keyBudget }
}
