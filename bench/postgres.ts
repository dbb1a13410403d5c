/**
 * `--postgres`: the zero-config scenarios on PostgreSQL instead of the embedded database. The
 * bench creates a schema of its own (`bench_<random>`) in the given database, points the server at
 * it with `POSTGRES_URL=<url>?options=-c search_path=<schema>` (as the e2e harness does), and drops
 * it with everything in it at the end, also on failure and Ctrl-C. The URL is never printed: it may
 * hold a password.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { randomBytes } from "node:crypto"

/** The local test database (trust auth), as in the e2e harness. */
export const DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"

/** A schema of the bench's own in a PostgreSQL database. */
export interface BenchSchema {
  readonly name: string
  /** The URL the server gets: the database's, with `search_path` set to the schema. */
  readonly serverUrl: string
  readonly drop: () => Promise<void>
}

const withPg = <A>(url: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>): Promise<A> =>
  Effect.runPromise(
    Effect.gen(function* () {
      return yield* f(yield* SqlClient.SqlClient)
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url) })), Effect.orDie)
  )

/** Creates `bench_<random>` in the database at `url`. */
export async function createBenchSchema(url: string): Promise<BenchSchema> {
  const name = `bench_${randomBytes(6).toString("hex")}`
  await withPg(url, (sql) => sql`CREATE SCHEMA ${sql(name)}`)
  const separator = url.includes("?") ? "&" : "?"
  return {
    name,
    serverUrl: `${url}${separator}options=${encodeURIComponent(`-c search_path=${name}`)}`,
    drop: () => withPg(url, (sql) => sql`DROP SCHEMA IF EXISTS ${sql(name)} CASCADE`).then(() => undefined)
  }
}
