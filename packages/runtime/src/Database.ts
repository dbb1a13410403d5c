/**
 * The database PolyAgent runs on, ready to use: the embedded SQLite file under the data
 * directory by default, PostgreSQL when `POSTGRES_URL` is set. Both provide effect/sql's
 * `SqlClient`, which `Storage` and the cluster's own message and runner storage share, and
 * both layers create or upgrade every table first — PolyAgent's own and effect/cluster's — so
 * nothing else runs a migration.
 *
 * Several processes may start together: on PostgreSQL the migrations run under an advisory
 * lock, so exactly one of them migrates and the others wait, then find nothing to do. The
 * embedded database belongs to one process: a second one pointed at the same data directory
 * is refused before it opens the database (see {@link DataDirInUse}). The PostgreSQL driver is
 * imported only when PostgreSQL is used: loading it costs a start on SQLite 50–100 ms of CPU.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as SqlMessageStorage from "effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "effect/cluster/SqlRunnerStorage"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import { isSqlError, type SqlError } from "effect/sql/SqlError"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { DatabaseSync } from "node:sqlite"
import { join } from "node:path"
import { within } from "./internal/bounded.ts"
import { migrations } from "./internal/migrations.ts"
import * as SqliteClient from "./SqliteClient.ts"

/** The database could not be prepared: unreachable, refused, or a migration failed. */
export class DatabaseError extends Schema.TaggedError<DatabaseError>()("DatabaseError", {
  /** `unreachable`: no connection could be made (start-up waits and tries again). */
  reason: Schema.Literals(["unreachable", "migration"]),
  cause: Schema.Defect()
}) {
  override get message(): string {
    return this.reason === "unreachable"
      ? "the database is unreachable"
      : "the database schema could not be created or upgraded"
  }
}

/** Another process holds the embedded database's data directory. */
export class DataDirInUse extends Schema.TaggedError<DataDirInUse>()("DataDirInUse", {
  dataDir: Schema.String,
  pid: Schema.NullOr(Schema.Number)
}) {
  override get message(): string {
    const holder = this.pid === null ? "another PolyAgent process" : `another PolyAgent process (pid ${this.pid})`
    return `the data directory ${this.dataDir} is in use by ${holder}; stop it, or give this one its own POLYAGENT_DATA_DIR (several processes share data only through PostgreSQL)`
  }
}

/**
 * Whether `error` (a `SqlError`, or an error caused by one) says the database could not be
 * reached — refused, cut, or not answering in time — rather than that it refused a statement.
 *
 * **When to use**: to answer 503 `unavailable` (try again) instead of 500 for a storage failure.
 */
export const isUnreachable = (error: unknown): boolean => {
  for (let cause = error, depth = 0; cause !== undefined && depth < 4; depth++) {
    if (isSqlError(cause)) return cause.reason._tag === "ConnectionError"
    if (Predicate.isTagged(cause, "TimeoutError")) return true
    cause = Predicate.hasProperty(cause, "cause") ? cause.cause : undefined
  }
  return false
}

/**
 * What went wrong with the database, in one line for a log: the messages along the error's
 * `cause` chain, outermost first (`the database is unreachable: PgConnection: Failed to
 * connect: connect ECONNREFUSED 127.0.0.1:5432`). Connection errors name the server, never a
 * password; no SQL is quoted.
 */
export const describeFailure = (error: unknown): string => {
  const messages: Array<string> = []
  for (let cause = error, depth = 0; cause !== undefined && depth < 6; depth++) {
    const message = Predicate.hasProperty(cause, "message") ? String(cause.message) : undefined
    if (message !== undefined && message !== "" && messages.at(-1) !== message) messages.push(message)
    cause = Predicate.hasProperty(cause, "cause") ? cause.cause : undefined
  }
  return messages.join(": ")
}

/** Bound on one start-up step against the database (connecting, migrating): a frozen server counts as down. */
const startupTimeout = Duration.seconds(20)

/** A ping slower than this counts as a failure: a frozen database is a down one. */
export const pingTimeout = Duration.millis(1500)

/**
 * A second, small pool of connections to the same database, for what must not wait behind the
 * requests' queries: the cluster's heartbeats and shard locks, and health pings.
 *
 * **When to use**: for bookkeeping whose delay has consequences of its own — a shard lock
 * refreshed late is lost, and its sessions stop mid-turn; a slow ping reads as an outage.
 *
 * **Gotchas**: on SQLite it is the one connection there is (one process, no pool to wait on).
 */
export class ControlClient extends Context.Service<ControlClient, SqlClient.SqlClient>()(
  "@polyagent/runtime/Database/ControlClient"
) {}

/** How many connections the {@link ControlClient} pool holds on PostgreSQL. */
const controlConnections = 4

/**
 * A round trip to the database that load does not delay.
 *
 * **When to use**: to tell whether the database is up (health, readiness).
 *
 * **Details**: the ping runs on the {@link ControlClient}, not on the pool the requests use, so
 * a busy pool is not taken for a dead database. It fails as `unreachable` when the database
 * refuses, cuts, or takes longer than {@link pingTimeout}.
 */
export class Probe extends Context.Service<Probe, { readonly ping: Effect.Effect<void, DatabaseError> }>()(
  "@polyagent/runtime/Database/Probe"
) {}

/** The probe on the control client in context. */
const layerProbe = Layer.effect(
  Probe,
  Effect.map(Effect.service(ControlClient), (sql) =>
    Probe.of({
      ping: sql`SELECT 1`.pipe(
        within(pingTimeout),
        Effect.asVoid,
        Effect.mapError((cause) => new DatabaseError({ reason: "unreachable", cause }))
      )
    })
  )
)

// The key of the advisory lock that serialises migrations: any constant that no one else uses.
const MIGRATION_LOCK = 0x706f6c79 // "poly"

/**
 * Every table PolyAgent needs, created or upgraded: its own (`polyagent_migrations`) and the
 * cluster's message and runner storage (in the tables effect/cluster's own layers would use).
 */
const migrateAll = Effect.all(
  [
    Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: "polyagent_migrations" }),
    Migrator.make({})({ loader: SqlMessageStorage.migrations(), table: "cluster_migrations" }),
    Migrator.make({})({ loader: SqlRunnerStorage.migrations({}), table: "cluster_runner_migrations" })
  ],
  { discard: true }
)

/**
 * Runs every migration once. On PostgreSQL a session-level advisory lock, held on a connection
 * of its own, makes processes that start together take turns (even `CREATE TABLE IF NOT
 * EXISTS` races between two sessions).
 */
export const migrate: Effect.Effect<void, DatabaseError, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const locked = Effect.scoped(
    Effect.gen(function* () {
      const connection = yield* sql.reserve
      yield* Effect.acquireRelease(connection.executeRaw(`SELECT pg_advisory_lock(${MIGRATION_LOCK})`, []), () =>
        Effect.ignore(connection.executeRaw(`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`, []))
      )
      yield* migrateAll
    })
  )
  yield* sql.onDialectOrElse({ pg: () => locked, orElse: () => migrateAll })
}).pipe(
  Effect.timeout(startupTimeout),
  Effect.mapError((cause) => new DatabaseError({ reason: isUnreachable(cause) ? "unreachable" : "migration", cause })),
  Effect.withSpan("Database.migrate")
)

/** A layer's database, migrated before anything uses it. */
const migrated = <A, E, R>(client: Layer.Layer<A | SqlClient.SqlClient, E, R>) =>
  Layer.provideMerge(Layer.effectDiscard(migrate), client)

/**
 * Holds `dataDir` for this process until the layer's scope closes. The lock is SQLite's own
 * exclusive lock on `polyagent.lock`: the kernel drops it when the process dies, even by
 * SIGKILL, so a crash never leaves the directory locked. The holder's pid is written next to
 * it for the refusal's message.
 */
const lockDataDir = (dataDir: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        mkdirSync(dataDir, { recursive: true })
        const lock = new DatabaseSync(join(dataDir, "polyagent.lock"), { timeout: 0 })
        try {
          lock.exec("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE")
        } catch (cause) {
          lock.close()
          throw cause
        }
        writeFileSync(join(dataDir, "polyagent.pid"), `${process.pid}\n`)
        return lock
      },
      catch: () => new DataDirInUse({ dataDir, pid: holderPid(dataDir) })
    }),
    (lock) => Effect.sync(() => lock.close())
  )

const holderPid = (dataDir: string): number | null => {
  try {
    const pid = Number.parseInt(readFileSync(join(dataDir, "polyagent.pid"), "utf8"), 10)
    return Number.isSafeInteger(pid) ? pid : null
  } catch {
    return null
  }
}

/** The embedded database: `polyagent.db` in `dataDir`, created when missing, held by this process alone. */
export const layerSqlite = (
  dataDir: string
): Layer.Layer<SqlClient.SqlClient | ControlClient | Probe, SqlError | DatabaseError | DataDirInUse> =>
  Layer.provideMerge(
    Layer.provideMerge(layerProbe, Layer.effect(ControlClient, Effect.service(SqlClient.SqlClient))),
    migrated(
      SqliteClient.layer({ filename: join(dataDir, "polyagent.db") }).pipe(
        Layer.provide(Layer.effectDiscard(lockDataDir(dataDir)))
      )
    )
  )

/** How long a new PostgreSQL connection may take before the database counts as unreachable. */
export const connectTimeout = Duration.seconds(3)

/**
 * PostgreSQL at `url`. With `schema`, every table lives in that schema (created when
 * missing), so several deployments or test runs can share one database.
 */
export const layerPg = (options: {
  readonly url: Redacted.Redacted<string>
  readonly schema?: string | undefined
}): Layer.Layer<SqlClient.SqlClient | ControlClient | Probe, DatabaseError> => {
  const settings = {
    url: options.url,
    applicationName: "polyagent",
    connectTimeout,
    keepAlive: Duration.seconds(5),
    ...(options.schema === undefined ? {} : { startupParameters: { search_path: options.schema } })
  }
  const unreachable = Effect.mapError((cause: SqlError) => new DatabaseError({ reason: "unreachable", cause }))
  const pg = Effect.promise(() => import("@effect/sql-pg"))
  const control = Layer.effect(
    ControlClient,
    Effect.flatMap(pg, ({ PgClient }) =>
      PgClient.make({ ...settings, maxConnections: controlConnections }).pipe(unreachable)
    )
  ).pipe(Layer.provide(Reactivity.layer))
  const client = Layer.merge(
    Layer.unwrap(Effect.map(pg, ({ PgClient }) => PgClient.layerFrom(PgClient.make(settings).pipe(unreachable)))),
    Layer.provideMerge(layerProbe, control)
  )
  if (options.schema === undefined) return migrated(client)
  const schema = options.schema
  // search_path is resolved per statement, so creating the schema after connecting is enough.
  const ensureSchema = Layer.effectDiscard(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(schema)}`
    }).pipe(
      Effect.timeout(startupTimeout),
      Effect.mapError(
        (cause) => new DatabaseError({ reason: isUnreachable(cause) ? "unreachable" : "migration", cause })
      )
    )
  )
  return migrated(Layer.provideMerge(ensureSchema, client))
}
