/**
 * The two databases suites run on: the embedded SQLite file in a temporary directory, and the
 * local PostgreSQL server (database `test`) in a schema of its own, dropped afterwards. Each
 * build of a layer is a fresh database.
 */
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Database from "../../src/Database.ts"

/** The local server of the test suites (trust auth). */
export const PG_URL = "postgres://postgres@127.0.0.1:5432/test"

/** A fresh SQLite database in a temporary directory, removed with the layer. */
export const sqlite = Layer.unwrap(
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "polyagent-storage-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  ).pipe(Effect.map((dir) => Database.layerSqlite(dir)))
)

let schemas = 0

/** A fresh PostgreSQL schema named after `prefix`, dropped with the layer. */
export const postgres = (prefix: string) =>
  Layer.unwrap(
    Effect.sync(() => {
      const schema = `${prefix}_${process.pid}_${Date.now()}_${schemas++}`
      const client = Database.layerPg({ url: Redacted.make(PG_URL), schema })
      const dropSchema = Layer.effectDiscard(
        Effect.addFinalizer(() =>
          Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            yield* sql`DROP SCHEMA ${sql(schema)} CASCADE`
          }).pipe(Effect.orDie)
        )
      )
      return Layer.provideMerge(dropSchema, client)
    })
  )

/** Both databases, by name, for `describe.each`. */
export const databases = (
  prefix: string
): Array<[string, Layer.Layer<SqlClient.SqlClient | Database.Probe, unknown>]> => [
  ["SQLite", sqlite],
  ["PostgreSQL", postgres(prefix)]
]
