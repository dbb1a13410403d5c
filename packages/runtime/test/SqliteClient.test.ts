import { assert, describe, it } from "@effect/vitest"
import { Array as Arr, Effect, Layer, Ref, Schema, Stream } from "effect"
import * as ClusterSchema from "effect/cluster/ClusterSchema"
import * as Entity from "effect/cluster/Entity"
import * as SingleRunner from "effect/cluster/SingleRunner"
import * as Digest from "effect/crypto/Digest"
import * as Rpc from "effect/rpc/Rpc"
import * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import {
  ConnectionError,
  ConstraintError,
  isSqlError,
  SqlSyntaxError,
  UniqueViolation,
  UnknownError
} from "effect/sql/SqlError"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as SqliteClient from "../src/SqliteClient.ts"

/** A directory under the OS temp dir, removed with the test's scope. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "polyagent-sqlite-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

describe("SqliteClient", () => {
  it.layer(SqliteClient.layer({ filename: ":memory:" }))("in memory", (it) => {
    it.effect("creates a table, inserts with parameters and selects the rows back", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER)`
        yield* sql`INSERT INTO people (name, age) VALUES (${"Ada"}, ${36})`
        yield* sql`INSERT INTO people ${sql.insert([
          { name: "Grace", age: 85 },
          { name: "Linus", age: null }
        ])}`
        const rows = yield* sql<{ id: number; name: string; age: number | null }>`SELECT * FROM people ORDER BY id`
        assert.deepStrictEqual(rows, [
          { id: 1, name: "Ada", age: 36 },
          { id: 2, name: "Grace", age: 85 },
          { id: 3, name: "Linus", age: null }
        ])
        const some = yield* sql<{ name: string }>`SELECT name FROM people WHERE id IN ${sql.in([1, 3])} ORDER BY id`
        assert.deepStrictEqual(
          some.map((row) => row.name),
          ["Ada", "Linus"]
        )
        const none = yield* sql`SELECT name FROM people WHERE ${sql.in("id", [])}`
        assert.strictEqual(none.length, 0)
      })
    )

    it.effect("answers values, raw run info and unprepared statements", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE pairs (id INTEGER PRIMARY KEY, label TEXT)`
        const info = yield* sql`INSERT INTO pairs (label) VALUES (${"a"})`.raw
        assert.deepStrictEqual(info, { changes: 1, lastInsertRowid: 1 })
        yield* sql`INSERT INTO pairs (label) VALUES (${"b"})`
        // the same column twice: arrays keep both, where objects would keep one
        const values = yield* sql`SELECT id, label, label FROM pairs ORDER BY id`.values
        assert.deepStrictEqual(values, [
          [1, "a", "a"],
          [2, "b", "b"]
        ])
        // a statement used as values and as rows alike, from the same cache entry
        const asRows = yield* sql`SELECT id, label, label FROM pairs ORDER BY id`
        assert.deepStrictEqual(asRows[0], { id: 1, label: "a" })
        const unpreparedValues = yield* sql`SELECT label FROM pairs WHERE id = ${2}`.valuesUnprepared
        assert.deepStrictEqual(unpreparedValues, [["b"]])
        const unprepared = yield* sql`SELECT label FROM pairs WHERE id = ${1}`.unprepared
        assert.deepStrictEqual(unprepared, [{ label: "a" }])
        const rawRows = yield* sql`SELECT label FROM pairs WHERE id = ${1}`.raw
        assert.deepStrictEqual(rawRows, [{ label: "a" }])
        const returning = yield* sql<{ id: number }>`INSERT INTO pairs (label) VALUES (${"c"}) RETURNING id`
        assert.deepStrictEqual(returning, [{ id: 3 }])
      })
    )

    it.effect("streams rows in chunks and gives the connection back when the stream stops early", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE numbers (n INTEGER NOT NULL)`
        const rows = Arr.makeBy(300, (n) => ({ n }))
        yield* sql`INSERT INTO numbers ${sql.insert(rows)}`
        const all = yield* Stream.runCollect(sql<{ n: number }>`SELECT n FROM numbers ORDER BY n`.stream)
        assert.strictEqual(all.length, 300)
        assert.deepStrictEqual(all[299], { n: 299 })
        const firstThree = yield* Stream.runCollect(
          sql<{ n: number }>`SELECT n FROM numbers WHERE n >= ${10} ORDER BY n`.stream.pipe(Stream.take(3))
        )
        assert.deepStrictEqual(
          firstThree.map((row) => row.n),
          [10, 11, 12]
        )
        // would wait forever if the stream had kept the connection
        yield* sql`DELETE FROM numbers`
        const empty = yield* Stream.runCollect(sql`SELECT n FROM numbers`.stream)
        assert.strictEqual(empty.length, 0)
      })
    )

    it.effect("commits a transaction, and a failing one leaves no rows", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE ledger (entry TEXT NOT NULL)`
        yield* sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`INSERT INTO ledger (entry) VALUES (${"one"})`
            yield* sql`INSERT INTO ledger (entry) VALUES (${"two"})`
          })
        )
        const failed = yield* sql
          .withTransaction(
            Effect.gen(function* () {
              yield* sql`INSERT INTO ledger (entry) VALUES (${"three"})`
              return yield* Effect.fail("boom" as const)
            })
          )
          .pipe(Effect.flip)
        assert.strictEqual(failed, "boom")
        const entries = yield* sql<{ entry: string }>`SELECT entry FROM ledger ORDER BY rowid`
        assert.deepStrictEqual(
          entries.map((row) => row.entry),
          ["one", "two"]
        )
      })
    )

    it.effect("rolls a failed nested transaction back to its savepoint and keeps the outer one", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE nested (entry TEXT NOT NULL)`
        yield* sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`INSERT INTO nested (entry) VALUES (${"outer"})`
            yield* sql.withTransaction(sql`INSERT INTO nested (entry) VALUES (${"inner-ok"})`)
            const inner = yield* sql
              .withTransaction(
                Effect.gen(function* () {
                  yield* sql`INSERT INTO nested (entry) VALUES (${"inner-failed"})`
                  return yield* Effect.fail("inner" as const)
                })
              )
              .pipe(Effect.flip)
            assert.strictEqual(inner, "inner")
            yield* sql`INSERT INTO nested (entry) VALUES (${"after"})`
          })
        )
        const entries = yield* sql<{ entry: string }>`SELECT entry FROM nested ORDER BY rowid`
        assert.deepStrictEqual(
          entries.map((row) => row.entry),
          ["outer", "inner-ok", "after"]
        )
      })
    )

    it.effect("runs concurrent transactions one after the other", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE tickets (n INTEGER NOT NULL)`
        // read-then-write with a yield in between: only serialised transactions give distinct numbers
        yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          () =>
            sql.withTransaction(
              Effect.gen(function* () {
                const [row] = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM tickets`
                yield* Effect.yieldNow
                yield* sql`INSERT INTO tickets (n) VALUES (${row?.n ?? -1})`
              })
            ),
          { concurrency: "unbounded", discard: true }
        )
        const numbers = yield* sql<{ n: number }>`SELECT n FROM tickets ORDER BY n`
        assert.deepStrictEqual(
          numbers.map((row) => row.n),
          Array.from({ length: 20 }, (_, i) => i)
        )
      })
    )

    it.effect("reports a unique violation as such, without the bound values", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)`
        yield* sql`INSERT INTO accounts ${sql.insert({ email: "secret@example.com" })}`
        const error = yield* sql`INSERT INTO accounts ${sql.insert({ email: "secret@example.com" })}`.pipe(Effect.flip)
        assert.isTrue(isSqlError(error))
        assert.instanceOf(error.reason, UniqueViolation)
        if (error.reason instanceof UniqueViolation) assert.strictEqual(error.reason.constraint, "accounts.email")
        assert.isFalse(error.isRetryable)
        assert.include(error.message, "UNIQUE constraint failed")
        assert.notInclude(error.message, "secret")
        assert.notInclude(JSON.stringify(error.reason), "secret")
        // A taken primary key is a unique violation too, as PostgreSQL reports it.
        yield* sql`CREATE TABLE turns (session TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (session, seq))`
        yield* sql`INSERT INTO turns ${sql.insert({ session: "s", seq: 1 })}`
        const taken = yield* sql`INSERT INTO turns ${sql.insert({ session: "s", seq: 1 })}`.pipe(Effect.flip)
        assert.instanceOf(taken.reason, UniqueViolation)
      })
    )

    it.effect("enforces foreign keys, and tells other constraint failures from unique ones", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE parents (id INTEGER PRIMARY KEY)`
        yield* sql`CREATE TABLE children (id INTEGER PRIMARY KEY, parent INTEGER NOT NULL REFERENCES parents (id))`
        const error = yield* sql`INSERT INTO children (parent) VALUES (${42})`.pipe(Effect.flip)
        assert.instanceOf(error.reason, ConstraintError)
        const syntax = yield* sql`SELEC 1`.pipe(Effect.flip)
        assert.isTrue(isSqlError(syntax))
        assert.include(syntax.message, "syntax error")
      })
    )

    it.effect("binds booleans, undefined and bytes, and refuses values SQLite would store as NULL", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE binds (flag INTEGER, missing TEXT, bytes BLOB)`
        yield* sql`INSERT INTO binds (flag, missing, bytes) VALUES (${true}, ${undefined}, ${new Uint8Array([1, 2, 3])})`
        const [row] = yield* sql<{ flag: number; missing: null; bytes: Uint8Array }>`SELECT * FROM binds`
        assert.strictEqual(row?.flag, 1)
        assert.strictEqual(row?.missing, null)
        assert.deepStrictEqual(Array.from(row?.bytes ?? []), [1, 2, 3])
        // node:sqlite would read a Date as a bag of named parameters and store NULL
        const date = yield* sql`INSERT INTO binds (missing) VALUES (${new Date(0)})`.pipe(Effect.flip)
        assert.instanceOf(date.reason, UnknownError)
        assert.include(date.message, "parameter 1 is a Date")
        const count = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM binds`
        assert.deepStrictEqual(count, [{ n: 1 }])
      })
    )

    it.effect("refuses several statements in a prepared query and runs them unprepared", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE multi (n INTEGER)`
        const prepared = yield* sql`INSERT INTO multi VALUES (1); INSERT INTO multi VALUES (2)`.pipe(Effect.flip)
        assert.instanceOf(prepared.reason, SqlSyntaxError)
        const withParams = yield* sql`INSERT INTO multi VALUES (${1}); INSERT INTO multi VALUES (2)`.unprepared.pipe(
          Effect.flip
        )
        assert.instanceOf(withParams.reason, SqlSyntaxError)
        assert.deepStrictEqual(yield* sql`SELECT n FROM multi`, [])
        const last = yield* sql`
          INSERT INTO multi VALUES (1); -- a comment with a ; in it
          INSERT INTO multi VALUES (';');
          SELECT COUNT(*) AS n FROM multi; /* trailing */
        `.unprepared
        assert.deepStrictEqual(last, [{ n: 2 }])
        // a trailing semicolon and comment are not another statement
        assert.deepStrictEqual(yield* sql`SELECT 1 AS one; -- done`, [{ one: 1 }])
      })
    )

    it.effect("reads big integers as bigint when SafeIntegers is on, and fails cleanly when it is off", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const big = yield* sql`SELECT ${9007199254740993n} AS big`.pipe(
          Effect.provideService(SqlClient.SafeIntegers, true)
        )
        assert.deepStrictEqual(big, [{ big: 9007199254740993n }])
        const error = yield* sql`SELECT ${9007199254740993n} AS big`.pipe(Effect.flip)
        assert.isTrue(isSqlError(error))
        assert.include(error.message, "SafeIntegers")
        assert.notInclude(error.message, "9007199254740993")
      })
    )

    it.effect("runs migrations once", () =>
      Effect.gen(function* () {
        const run = Migrator.make({})({
          loader: Migrator.fromRecord({
            "1_create": Effect.gen(function* () {
              const sql = yield* SqlClient.SqlClient
              yield* sql`CREATE TABLE migrated (id INTEGER PRIMARY KEY)`
            }),
            "2_index": Effect.gen(function* () {
              const sql = yield* SqlClient.SqlClient
              yield* sql`CREATE INDEX migrated_id ON migrated (id)`
            })
          }),
          table: "test_migrations"
        })
        assert.deepStrictEqual(yield* run, [
          [1, "create"],
          [2, "index"]
        ])
        assert.deepStrictEqual(yield* run, [])
      })
    )
  })

  it.effect("renames columns with transformResultNames and transformQueryNames", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE renamed (user_id INTEGER, display_name TEXT)`
      yield* sql`INSERT INTO renamed ${sql.insert({ userId: 7, displayName: "Ada" })}`
      assert.deepStrictEqual(yield* sql`SELECT * FROM renamed`, [{ userId: 7, displayName: "Ada" }])
      const streamed = yield* Stream.runCollect(sql`SELECT * FROM renamed`.stream)
      assert.deepStrictEqual(streamed, [{ userId: 7, displayName: "Ada" }])
      assert.deepStrictEqual(yield* sql`SELECT * FROM renamed`.withoutTransform, [{ user_id: 7, display_name: "Ada" }])
    }).pipe(
      Effect.provide(
        SqliteClient.layer({
          filename: ":memory:",
          transformQueryNames: (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
          transformResultNames: (name) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
        })
      )
    )
  )

  it.effect("opens a file in WAL mode, creating its directory, and keeps the data across reopening", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const filename = join(dir, "nested", "deeper", "data.db")
      const layer = SqliteClient.layer({ filename })
      const pragmas = yield* Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE kept (note TEXT NOT NULL)`
        yield* sql`INSERT INTO kept (note) VALUES (${"remember me"})`
        return [
          yield* sql`PRAGMA journal_mode`,
          yield* sql`PRAGMA synchronous`,
          yield* sql`PRAGMA foreign_keys`,
          yield* sql`PRAGMA busy_timeout`,
          yield* sql`PRAGMA wal_autocheckpoint`
        ]
      }).pipe(Effect.provide(layer))
      assert.deepStrictEqual(pragmas, [
        [{ journal_mode: "wal" }],
        [{ synchronous: 1 }],
        [{ foreign_keys: 1 }],
        [{ timeout: 5000 }],
        [{ wal_autocheckpoint: 10000 }]
      ])
      assert.isTrue(existsSync(filename))
      const notes = yield* Effect.gen(function* () {
        const client = yield* SqliteClient.SqliteClient
        assert.strictEqual(client.config.filename, filename)
        return yield* client<{ note: string }>`SELECT note FROM kept`
      }).pipe(Effect.provide(layer))
      assert.deepStrictEqual(notes, [{ note: "remember me" }])

      const readonly = SqliteClient.layer({ filename, readonly: true })
      const readBack = yield* Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const write = yield* sql`INSERT INTO kept (note) VALUES (${"nope"})`.pipe(Effect.flip)
        assert.isTrue(isSqlError(write))
        return yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM kept`
      }).pipe(Effect.provide(readonly))
      assert.deepStrictEqual(readBack, [{ n: 1 }])
    })
  )

  it.effect("fails to open with a ConnectionError", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      writeFileSync(join(dir, "a-file"), "")
      const error = yield* Effect.flip(
        Effect.provide(Effect.void, SqliteClient.layer({ filename: join(dir, "a-file", "db.sqlite") }))
      )
      assert.instanceOf(error.reason, ConnectionError)
      assert.isTrue(error.isRetryable)
    })
  )

  describe("as the cluster's storage", () => {
    const Increment = Rpc.make("Increment", { payload: { amount: Schema.Int }, success: Schema.Int })
    const Deposit = Rpc.make("Deposit", { payload: { amount: Schema.Int }, success: Schema.Int }).annotate(
      ClusterSchema.Persisted,
      true
    )
    const Counter = Entity.make("Counter", [Increment, Deposit])
    const CounterLive = Counter.toLayer(
      Effect.gen(function* () {
        const total = yield* Ref.make(0)
        return Counter.of({
          Increment: ({ payload }) => Ref.updateAndGet(total, (n) => n + payload.amount),
          Deposit: ({ payload }) => Ref.updateAndGet(total, (n) => n + payload.amount)
        })
      })
    )
    const clusterOn = (filename: string) =>
      CounterLive.pipe(
        Layer.provideMerge(SingleRunner.layer({ runnerStorage: "sql" })),
        Layer.provideMerge(SqliteClient.layer({ filename })),
        Layer.provide(Digest.layerWebCrypto)
      )

    // live clock: the cluster's own schedules have to run
    it.live(
      "runs SingleRunner with SQL runner and message storage, volatile and persisted messages",
      () =>
        Effect.gen(function* () {
          const dir = yield* tempDir
          const filename = join(dir, "cluster.db")
          yield* Effect.gen(function* () {
            const counter = (yield* Counter.client)("counter-1")
            assert.strictEqual(yield* counter.Increment({ amount: 2 }), 2)
            assert.strictEqual(yield* counter.Increment({ amount: 3 }), 5)
            assert.strictEqual(yield* counter.Deposit({ amount: 10 }), 15)
            const sql = yield* SqlClient.SqlClient
            const stored = yield* sql<{ tag: string; processed: number }>`
              SELECT tag, processed FROM cluster_messages WHERE entity_id = ${"counter-1"}`
            assert.deepStrictEqual(stored, [{ tag: "Deposit", processed: 1 }])
            const runners = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM cluster_runners`
            assert.deepStrictEqual(runners, [{ n: 1 }])
          }).pipe(Effect.provide(clusterOn(filename)))

          // a second start on the same file: migrations already ran, storage still works
          yield* Effect.gen(function* () {
            const counter = (yield* Counter.client)("counter-2")
            assert.strictEqual(yield* counter.Deposit({ amount: 4 }), 4)
            const sql = yield* SqlClient.SqlClient
            const deposits = yield* sql<{ n: number }>`
              SELECT COUNT(*) AS n FROM cluster_messages WHERE tag = ${"Deposit"} AND processed = 1`
            assert.deepStrictEqual(deposits, [{ n: 2 }])
          }).pipe(Effect.provide(clusterOn(filename)))
        }),
      30_000
    )
  })
})
