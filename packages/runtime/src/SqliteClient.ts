/**
 * Effect's `SqlClient` on Node 24's built-in `node:sqlite` (`DatabaseSync`). Effect's own
 * `@effect/sql-sqlite-node` imports `effect/unstable/*` and does not load on effect 4.1, so
 * PolyAgent's embedded database, `Storage` and the cluster's message and runner storage run on
 * this one. The database is opened once per layer with WAL, `synchronous = NORMAL`, foreign
 * keys and a 5 s busy timeout, and closed when the layer's scope closes. With WAL and `NORMAL`
 * a commit is not synced to disk: a committed transaction survives a crash of the process
 * (kill -9), not a power loss or a crash of the machine. The WAL is checkpointed every 10,000
 * pages (~40 MB) instead of SQLite's 1,000: a checkpoint blocks the one connection, and fewer,
 * larger ones cost less per write. `node:sqlite` is
 * synchronous, so there is one connection, lent to one statement, stream or transaction at a
 * time through a semaphore; transactions use `BEGIN`/`COMMIT`/`ROLLBACK` and savepoints when
 * nested. Failures are `SqlError`s classified from SQLite's own result code, so a duplicate key
 * is a `UniqueViolation`.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Reactivity from "effect/reactivity/Reactivity"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import * as Statement from "effect/sql/Statement"
import { makeConnection, openDatabase, toSqlError } from "./internal/sqliteConnection.ts"

/**
 * Runtime identifier carried by every `SqliteClient`.
 */
export const TypeId: TypeId = "~@polyagent/runtime/SqliteClient"

/**
 * Type-level identifier carried by every `SqliteClient`.
 */
export type TypeId = "~@polyagent/runtime/SqliteClient"

/**
 * A `SqlClient` on `node:sqlite`, with the configuration it was opened with.
 *
 * Gotcha: `sql.updateValues` compiles to nothing on SQLite; update rows one by one.
 */
export interface SqliteClient extends SqlClient.SqlClient {
  readonly [TypeId]: TypeId
  readonly config: SqliteClientConfig
}

/**
 * Service tag for the SQLite client. The layers also provide it as `SqlClient.SqlClient`,
 * which is what code that should run on SQLite and PostgreSQL alike asks for.
 */
export const SqliteClient = Context.Service<SqliteClient>("@polyagent/runtime/SqliteClient")

/**
 * How to open the database.
 */
export interface SqliteClientConfig {
  /** A file path (its directory is created when missing), or `":memory:"`. */
  readonly filename: string
  /** Open without write access: no directory is created and the journal mode is left as it is. */
  readonly readonly?: boolean | undefined
  /** How many prepared statements to keep, least recently used evicted first. Defaults to 200. */
  readonly prepareCacheSize?: number | undefined
  readonly spanAttributes?: Record<string, unknown> | undefined
  /** Renames result columns, e.g. `snake_case` to `camelCase`. */
  readonly transformResultNames?: ((str: string) => string) | undefined
  /** Renames identifiers written with `sql("name")` and `sql.insert`, e.g. `camelCase` to `snake_case`. */
  readonly transformQueryNames?: ((str: string) => string) | undefined
}

/**
 * What `.raw` returns for a statement without result columns (an `INSERT` without
 * `RETURNING`, an `UPDATE`, a `DELETE`); a statement with result columns returns its rows.
 * Both numbers are bigints when `SqlClient.SafeIntegers` is provided as `true`.
 */
export interface RunInfo {
  readonly changes: number | bigint
  readonly lastInsertRowid: number | bigint
}

/**
 * Opens the database and builds the client; the database closes with the scope.
 *
 * Gotchas: a statement waits while another fiber holds the connection (a transaction or an
 * unfinished `.stream`), so running a query outside the transaction from inside it, or from
 * a stream's consumer, waits forever. Several statements in one `sql` template run only
 * through `.unprepared` and only without parameters; otherwise they fail with
 * `SqlSyntaxError` rather than SQLite silently running the first one.
 */
export const make = Effect.fn("SqliteClient.make")(function* (
  config: SqliteClientConfig
): Effect.fn.Return<SqliteClient, SqlError, Scope.Scope | Reactivity.Reactivity> {
  const readonly = config.readonly === true
  const db = yield* Effect.acquireRelease(openDatabase(config.filename, readonly), (db) =>
    Effect.sync(() => {
      if (db.isOpen) db.close()
    })
  )
  yield* Effect.try({
    try: () => db.exec(readonly ? PRAGMAS_READONLY : PRAGMAS),
    catch: (cause) => toSqlError(cause, "open")
  })

  const connection = makeConnection(db, config.prepareCacheSize ?? DEFAULT_PREPARE_CACHE_SIZE)
  const acquirers = SqlClient.makeSqliteAcquirers({
    connection: Effect.succeed(connection),
    semaphore: yield* Semaphore.make(1),
    isTransaction: () => db.isTransaction
  })
  const client = yield* SqlClient.make({
    ...acquirers,
    compiler: Statement.makeCompilerSqlite(config.transformQueryNames),
    // The name of Effect's own node:sqlite driver: code in effect that special-cases drivers treats both alike.
    driver: "sqlite-node",
    spanAttributes: [...Object.entries(config.spanAttributes ?? {}), ["db.system.name", "sqlite"]],
    transformRows:
      config.transformResultNames === undefined
        ? undefined
        : Statement.defaultTransforms(config.transformResultNames).array,
    // SQLite prepares BEGIN/COMMIT/ROLLBACK/SAVEPOINT like any statement, so they come from the cache.
    prepareTransactionControls: true,
    // Without it, every nested transaction would leave a savepoint on SQLite's stack until COMMIT.
    releaseSavepoint: (name) => `RELEASE SAVEPOINT ${name}`
  })
  return Object.assign(client, { [TypeId]: TypeId, config })
})

/**
 * Provides `SqliteClient` and `SqlClient.SqlClient` (with its `Reactivity`); the database
 * closes when the layer's scope closes.
 */
export const layer = (config: SqliteClientConfig): Layer.Layer<SqliteClient | SqlClient.SqlClient, SqlError> =>
  Layer.effectContext(
    Effect.map(make(config), (client) =>
      Context.make(SqliteClient, client).pipe(Context.add(SqlClient.SqlClient, client))
    )
  ).pipe(Layer.provide(Reactivity.layer))

// --- Opening ---

const DEFAULT_PREPARE_CACHE_SIZE = 200
// busy_timeout first, so switching to WAL waits for another process's lock instead of failing.
const PRAGMAS =
  "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; " +
  "PRAGMA wal_autocheckpoint = 10000;"
const PRAGMAS_READONLY = "PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
