/**
 * The one connection `SqliteClient` lends out: a `Connection` on a `DatabaseSync`. It prepares
 * statements (keeping an LRU cache of them), refuses SQL that holds several statements where
 * SQLite would silently run only the first, binds only values SQLite can store, reads rows,
 * values, run info and streamed chunks, and turns node:sqlite's errors into `SqlError`s
 * classified from SQLite's own result code.
 */
import * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import * as Result from "effect/Result"
import * as SqlClient from "effect/sql/SqlClient"
import type { Connection, Row } from "effect/sql/SqlConnection"
import { classifySqliteError, ConnectionError, SqlError, SqlSyntaxError, UnknownError } from "effect/sql/SqlError"
import * as Stream from "effect/Stream"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { DatabaseSync, type SQLInputValue, type SQLOutputValue, type StatementSync } from "node:sqlite"
import { types } from "node:util"

// --- Opening ---

const isFilePath = (filename: string): boolean =>
  filename !== "" && filename !== ":memory:" && !filename.startsWith("file:")

/** Opens the database, creating a file's directory when it is missing and the database is writable. */
export const openDatabase = (filename: string, readonly: boolean): Effect.Effect<DatabaseSync, SqlError> =>
  Effect.try({
    try: () => {
      if (!readonly && isFilePath(filename)) mkdirSync(dirname(filename), { recursive: true })
      return new DatabaseSync(filename, { readOnly: readonly })
    },
    catch: (cause) =>
      new SqlError({
        reason: new ConnectionError({ cause, message: `SqliteClient.open: ${messageOf(cause)}`, operation: "open" })
      })
  })

// --- The connection ---

const STREAM_CHUNK_SIZE = 128

interface Prepared {
  readonly statement: StatementSync
  /** Whether the statement has result columns: rows to read, or only changes to count. */
  readonly returnsRows: boolean
}

type Values = ReadonlyArray<SQLInputValue>
type Read<A> = (prepared: Prepared, values: Values, safeIntegers: boolean) => A
type TransformRows = (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

/** The connection on `db`, keeping up to `cacheSize` prepared statements. */
export const makeConnection = (db: DatabaseSync, cacheSize: number): Connection => {
  const cache = makeStatementCache(cacheSize)

  const prepareCached = (sql: string, operation: string): Result.Result<Prepared, SqlError> => {
    const cached = cache.get(sql)
    if (cached !== undefined) return Result.succeed(cached)
    return Result.map(prepareSingle(db, sql, operation), (prepared) => {
      cache.set(sql, prepared)
      return prepared
    })
  }

  const runPrepared = <A>(operation: string, sql: string, params: ReadonlyArray<unknown>, read: Read<A>) =>
    withSafeIntegers((safeIntegers) =>
      Result.flatMap(bindAll(params), (values) =>
        Result.flatMap(prepareCached(sql, operation), (prepared) =>
          attempt(operation, () => read(prepared, values, safeIntegers))
        )
      )
    )

  // Runs each statement of `sql` in turn and answers with the last one's result.
  const runUnprepared = <A>(operation: string, sql: string, params: ReadonlyArray<unknown>, read: Read<A>) =>
    withSafeIntegers((safeIntegers): Result.Result<A, SqlError> => {
      const bound = bindAll(params)
      if (Result.isFailure(bound)) return Result.fail(bound.failure)
      const values = bound.success
      let remaining = sql
      for (;;) {
        const first = prepareFirst(db, remaining, operation)
        if (Result.isFailure(first)) return Result.fail(first.failure)
        const { prepared, rest } = first.success
        const more = hasStatement(rest)
        // node:sqlite cannot tell how many of the parameters belong to each statement.
        if (more && values.length > 0) return Result.fail(severalStatementsError(operation))
        const result = attempt(operation, () => read(prepared, values, safeIntegers))
        if (Result.isFailure(result) || !more) return result
        remaining = rest
      }
    })

  const openCursor = (sql: string, params: ReadonlyArray<unknown>) =>
    withSafeIntegers((safeIntegers) =>
      Result.flatMap(bindAll(params), (values) =>
        // Not from the cache: the cursor keeps its statement until the stream ends.
        Result.flatMap(prepareSingle(db, sql, "executeStream"), ({ returnsRows, statement }) =>
          attempt("executeStream", (): Iterator<Record<string, SQLOutputValue>> => {
            statement.setReadBigInts(safeIntegers)
            statement.setReturnArrays(false)
            if (returnsRows) return statement.iterate(...values)
            statement.run(...values)
            return emptyCursor()
          })
        )
      )
    )

  return {
    execute: (sql, params, transformRows) =>
      applyTransform(runPrepared("execute", sql, params, readRows), transformRows),
    executeRaw: (sql, params) => runPrepared("executeRaw", sql, params, readRaw),
    executeValues: (sql, params) => runPrepared("executeValues", sql, params, readValues),
    executeValuesUnprepared: (sql, params) => runUnprepared("executeValuesUnprepared", sql, params, readValues),
    executeUnprepared: (sql, params, transformRows) =>
      applyTransform(runUnprepared("executeUnprepared", sql, params, readRows), transformRows),
    executeStream: (sql, params, transformRows) =>
      Stream.unwrap(
        Effect.map(
          Effect.acquireRelease(openCursor(sql, params), (cursor) =>
            Effect.sync(() => {
              // Resetting the statement ends its read transaction, which would otherwise hold back WAL checkpoints.
              if (db.isOpen) cursor.return?.()
            })
          ),
          (cursor) => Stream.fromPull(Effect.succeed(pullChunk(cursor, transformRows)))
        )
      )
  }
}

const pullChunk = (
  cursor: Iterator<Record<string, SQLOutputValue>>,
  transformRows: TransformRows
): Effect.Effect<Arr.NonEmptyReadonlyArray<Row>, SqlError | Cause.Done> =>
  Effect.suspend((): Effect.Effect<Arr.NonEmptyReadonlyArray<Row>, SqlError | Cause.Done> => {
    const chunk = attempt("executeStream", () => {
      const rows: Array<Row> = []
      while (rows.length < STREAM_CHUNK_SIZE) {
        const next = cursor.next()
        if (next.done === true) break
        rows.push({ ...next.value })
      }
      return rows
    })
    if (Result.isFailure(chunk)) return Effect.fail(chunk.failure)
    const rows = transformRows === undefined ? chunk.success : transformRows(chunk.success)
    return Arr.isReadonlyArrayNonEmpty(rows) ? Effect.succeed(rows) : Cause.done()
  })

const withSafeIntegers = <A>(f: (safeIntegers: boolean) => Result.Result<A, SqlError>): Effect.Effect<A, SqlError> =>
  Effect.withFiber((fiber) => Effect.fromResult(f(fiber.getRef(SqlClient.SafeIntegers))))

const applyTransform = (
  effect: Effect.Effect<ReadonlyArray<Row>, SqlError>,
  transformRows: TransformRows
): Effect.Effect<ReadonlyArray<Row>, SqlError> =>
  transformRows === undefined ? effect : Effect.map(effect, (rows) => transformRows(rows))

const attempt = <A>(operation: string, f: () => A): Result.Result<A, SqlError> =>
  Result.try({ try: f, catch: (cause) => toSqlError(cause, operation) })

const emptyCursor = (): Iterator<Record<string, SQLOutputValue>> => [][Symbol.iterator]()

// --- Reading results ---

// node:sqlite's rows have a null prototype; plain objects behave as everywhere else (equality, spreading, Schema).
const readRows: Read<ReadonlyArray<Row>> = ({ returnsRows, statement }, values, safeIntegers) => {
  statement.setReadBigInts(safeIntegers)
  statement.setReturnArrays(false)
  if (!returnsRows) {
    statement.run(...values)
    return []
  }
  return statement.all(...values).map((row) => ({ ...row }))
}

const readValues: Read<ReadonlyArray<ReadonlyArray<unknown>>> = ({ returnsRows, statement }, values, safeIntegers) => {
  statement.setReadBigInts(safeIntegers)
  statement.setReturnArrays(true)
  if (!returnsRows) {
    statement.run(...values)
    return []
  }
  return valueRows(statement.all(...values))
}

// The shape of `SqliteClient.RunInfo`, declared again: importing it from there would be an import cycle.
interface RunInfo {
  readonly changes: number | bigint
  readonly lastInsertRowid: number | bigint
}

const readRaw: Read<ReadonlyArray<Row> | RunInfo> = (prepared, values, safeIntegers) => {
  if (prepared.returnsRows) return readRows(prepared, values, safeIntegers)
  prepared.statement.setReadBigInts(safeIntegers)
  const { changes, lastInsertRowid } = prepared.statement.run(...values)
  return { changes, lastInsertRowid }
}

// The .d.ts types rows as records whatever setReturnArrays says; the guard narrows without a cast.
const valueRows = (rows: ReadonlyArray<unknown>): ReadonlyArray<ReadonlyArray<unknown>> => {
  const out: Array<ReadonlyArray<unknown>> = []
  for (const row of rows) if (isValueRow(row)) out.push(row)
  return out
}

const isValueRow = (row: unknown): row is ReadonlyArray<unknown> => Array.isArray(row)

// --- Preparing ---

interface StatementCache {
  readonly get: (sql: string) => Prepared | undefined
  readonly set: (sql: string, prepared: Prepared) => void
}

/** A least-recently-used cache: a `Map` iterates in insertion order, so a hit is moved to the end. */
const makeStatementCache = (capacity: number): StatementCache => {
  const entries = new Map<string, Prepared>()
  return {
    get: (sql) => {
      const hit = entries.get(sql)
      if (hit !== undefined) {
        entries.delete(sql)
        entries.set(sql, hit)
      }
      return hit
    },
    set: (sql, prepared) => {
      if (capacity <= 0) return
      entries.set(sql, prepared)
      if (entries.size <= capacity) return
      const oldest = entries.keys().next()
      if (oldest.done !== true) entries.delete(oldest.value)
    }
  }
}

/**
 * Prepares the first statement of `sql` and returns the text after it. SQLite's `prepare`
 * compiles one statement and ignores the rest; `sourceSQL` is the part it compiled.
 */
const prepareFirst = (
  db: DatabaseSync,
  sql: string,
  operation: string
): Result.Result<{ readonly prepared: Prepared; readonly rest: string }, SqlError> =>
  attempt(operation, () => {
    const statement = db.prepare(sql)
    const source = statement.sourceSQL
    return {
      prepared: { statement, returnsRows: statement.columns().length > 0 },
      rest: sql.startsWith(source) ? sql.slice(source.length) : ""
    }
  })

/** Prepares `sql`, failing when it holds more than one statement. */
const prepareSingle = (db: DatabaseSync, sql: string, operation: string): Result.Result<Prepared, SqlError> =>
  Result.flatMap(prepareFirst(db, sql, operation), ({ prepared, rest }) =>
    hasStatement(rest) ? Result.fail(severalStatementsError(operation)) : Result.succeed(prepared)
  )

/**
 * Whether `text`, which starts where a complete statement ended, holds another statement:
 * anything but whitespace, semicolons and comments.
 */
const hasStatement = (text: string): boolean => {
  let i = 0
  while (i < text.length) {
    const char = text.charAt(i)
    if (char === ";" || char.trim() === "") {
      i++
    } else if (text.startsWith("--", i)) {
      const end = text.indexOf("\n", i)
      if (end === -1) return false
      i = end + 1
    } else if (text.startsWith("/*", i)) {
      const end = text.indexOf("*/", i + 2)
      if (end === -1) return false
      i = end + 2
    } else {
      return true
    }
  }
  return false
}

// --- Binding parameters ---

/**
 * node:sqlite binds an object as a bag of named parameters, so a `Date` would silently
 * store NULL: only values SQLite can store are let through. Booleans become 1/0 (SQLite's
 * TRUE/FALSE), `undefined` becomes NULL.
 */
const bindAll = (params: ReadonlyArray<unknown>): Result.Result<Values, SqlError> => {
  const values: Array<SQLInputValue> = []
  for (const param of params) {
    const value = toInputValue(param)
    if (value === undefined) return Result.fail(bindError(values.length + 1, param))
    values.push(value)
  }
  return Result.succeed(values)
}

const toInputValue = (value: unknown): SQLInputValue | undefined => {
  if (value === null || value === undefined) return null
  if (typeof value === "string" || typeof value === "number" || typeof value === "bigint") return value
  if (typeof value === "boolean") return value ? 1 : 0
  if (types.isArrayBufferView(value)) return value
  return undefined
}

// Names the parameter's position and type, never its value.
const bindError = (position: number, value: unknown): SqlError => {
  const kind = value instanceof Date ? "a Date (bind toISOString() or getTime())" : `of type ${typeof value}`
  const message = `SqliteClient: parameter ${position} is ${kind}; SQLite binds strings, numbers, bigints, booleans, null and Uint8Array`
  return new SqlError({ reason: new UnknownError({ cause: new TypeError(message), message, operation: "bind" }) })
}

// --- Errors ---

const severalStatementsError = (operation: string): SqlError => {
  const message =
    `SqliteClient.${operation}: the SQL holds several statements and SQLite would run only the first; ` +
    "send one statement per query, or use .unprepared without parameters"
  return new SqlError({ reason: new SqlSyntaxError({ cause: new Error(message), message, operation }) })
}

// SQLITE_CONSTRAINT_PRIMARYKEY and SQLITE_CONSTRAINT_UNIQUE: a taken key, whichever constraint holds it.
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555
const SQLITE_CONSTRAINT_UNIQUE = 2067

/**
 * node:sqlite's errors say `code: "ERR_SQLITE_ERROR"` and keep SQLite's result code in
 * `errcode`; `classifySqliteError` reads `code`/`errno`, so the cause handed to it carries
 * the result code there (2067 is a unique violation), plus `errstr` and the original error.
 * A taken primary key (1555) is a unique violation too, as PostgreSQL reports it.
 */
export const toSqlError = (error: unknown, operation: string): SqlError => {
  if (Predicate.hasProperty(error, "code") && error.code === "ERR_OUT_OF_RANGE") return outOfRangeError(operation)
  const message = `SqliteClient.${operation}: ${messageOf(error)}`
  const reported = Predicate.hasProperty(error, "errcode") ? error.errcode : undefined
  const errcode = reported === SQLITE_CONSTRAINT_PRIMARYKEY ? SQLITE_CONSTRAINT_UNIQUE : reported
  const cause =
    typeof errcode === "number"
      ? {
          code: errcode,
          errno: errcode,
          errstr: Predicate.hasProperty(error, "errstr") ? error.errstr : undefined,
          message: messageOf(error),
          cause: error
        }
      : error
  return new SqlError({ reason: classifySqliteError(cause, { message, operation }) })
}

// node:sqlite's own message quotes the value, which may be one the caller bound.
const outOfRangeError = (operation: string): SqlError => {
  const message =
    `SqliteClient.${operation}: an integer in the result is beyond Number.MAX_SAFE_INTEGER; ` +
    "provide SqlClient.SafeIntegers as true to read integers as bigints"
  return new SqlError({ reason: new UnknownError({ cause: new RangeError(message), message, operation }) })
}

const messageOf = (error: unknown): string =>
  Predicate.hasProperty(error, "message") && typeof error.message === "string" ? error.message : String(error)
