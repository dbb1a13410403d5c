/**
 * What every SQL module of the runtime (`Storage`, `ExperimentStorage`) does around its
 * statements, and the error they fail with (re-exported by `Storage`): strings encoded on the
 * way in and decoded on the way out (`storedText.ts`), and every failure bounded in time and
 * turned into a `StorageError` that names the operation.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as SqlClient from "effect/sql/SqlClient"
import type { Row } from "effect/sql/SqlConnection"
import type { SqlError } from "effect/sql/SqlError"
import { isUnreachable } from "../Database.ts"
import { within } from "./bounded.ts"
import { decodeRows, encodeArgument } from "./storedText.ts"

/**
 * A storage operation failed. The message names the operation, never SQL or values.
 * `unavailable` says the database could not be reached in time (answer 503 and let the client
 * retry) rather than that it refused the operation.
 */
export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  operation: Schema.String,
  unavailable: Schema.optionalKey(Schema.Boolean),
  cause: Schema.Defect()
}) {
  override get message(): string {
    return this.unavailable === true
      ? `storage is unavailable (during ${this.operation})`
      : `storage failed during ${this.operation}`
  }
}

/**
 * Bound on one storage operation. Past it the operation is interrupted and fails as
 * `unavailable`: a database that stops answering (a frozen server, a cut connection the
 * kernel has not noticed yet) must not hold a request for longer.
 */
export const operationTimeout = Duration.seconds(4)

/** The storage failure of `cause`, `unavailable` when the database could not be reached in time. */
export const storageError = (operation: string, cause: unknown) =>
  new StorageError({ operation, unavailable: isUnreachable(cause), cause })

/** Bounds `effect` by the operation timeout and names its failure `operation`. */
export const failWith =
  (operation: string) =>
  <A, R>(effect: Effect.Effect<A, SqlError | Schema.SchemaError, R>): Effect.Effect<A, StorageError, R> =>
    effect.pipe(
      within(operationTimeout),
      Effect.mapError((cause) => storageError(operation, cause))
    )

/** `sql` with every string argument encoded and its rows decoded: the statements of the runtime go through it. */
export const queryOn =
  (sql: SqlClient.SqlClient) =>
  (strings: TemplateStringsArray, ...args: Array<unknown>): Effect.Effect<ReadonlyArray<Row>, SqlError> =>
    Effect.map(sql<Row>(strings, ...args.map(encodeArgument)), decodeRows)
