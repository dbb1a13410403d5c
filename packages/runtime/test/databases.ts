/**
 * The two databases the storage suites run on: the embedded SQLite file in a temporary
 * directory, and PostgreSQL (the local server, database `test`) in a schema of its own per
 * run, dropped afterwards.
 */
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Database from "../src/Database.ts"

const PG_URL = "postgres://postgres@127.0.0.1:5432/test"

export const sqlite = Layer.unwrap(
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "polyagent-storage-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  ).pipe(Effect.map((dir) => Database.layerSqlite(dir)))
)

export const postgres = Layer.unwrap(
  Effect.sync(() => {
    const schema = `test_storage_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`
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

/** Both databases, named, for `describe.each`. */
export const databases: Array<[string, Layer.Layer<SqlClient.SqlClient | Database.Probe, unknown>]> = [
  ["SQLite", sqlite],
  ["PostgreSQL", postgres]
]
