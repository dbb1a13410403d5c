/**
 * The database connection PolyAgent runs on: the embedded SQLite file under the data
 * directory by default, PostgreSQL when `POSTGRES_URL` is set. Both provide effect/sql's
 * `SqlClient`, which `Storage` and the cluster's own message and runner storage share.
 * The PostgreSQL driver is imported only when PostgreSQL is used: loading it costs a start on
 * SQLite 50–100 ms of CPU for nothing.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { join } from "node:path"
import * as SqliteClient from "./SqliteClient.ts"

/** The embedded database: `polyagent.db` in `dataDir`, created when missing. */
export const layerSqlite = (dataDir: string): Layer.Layer<SqlClient.SqlClient, SqlError> =>
  SqliteClient.layer({ filename: join(dataDir, "polyagent.db") })

/**
 * PostgreSQL at `url`. With `schema`, every table lives in that schema (created when
 * missing), so several deployments or test runs can share one database.
 */
export const layerPg = (options: {
  readonly url: Redacted.Redacted<string>
  readonly schema?: string | undefined
}): Layer.Layer<SqlClient.SqlClient, SqlError> => {
  const client = Layer.unwrap(
    Effect.map(
      Effect.promise(() => import("@effect/sql-pg")),
      ({ PgClient }) =>
        PgClient.layer({
          url: options.url,
          applicationName: "polyagent",
          ...(options.schema === undefined ? {} : { startupParameters: { search_path: options.schema } })
        })
    )
  )
  if (options.schema === undefined) return client
  const schema = options.schema
  // search_path is resolved per statement, so creating the schema after connecting is enough.
  const ensureSchema = Layer.effectDiscard(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(schema)}`
    })
  )
  return Layer.provideMerge(ensureSchema, client)
}
