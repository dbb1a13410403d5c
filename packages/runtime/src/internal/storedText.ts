/**
 * Text as the databases keep it. Every JavaScript string is valid input — a JSON string may hold
 * U+0000 and lone UTF-16 surrogates (`"\ud800"`) — but PostgreSQL's TEXT cannot hold U+0000, and
 * neither database keeps a lone surrogate (UTF-8 has no encoding for it: it comes back as U+FFFD).
 * So a text that holds either, or that starts with {@link marker}, is stored as the marker followed
 * by its JSON form (`JSON.stringify` escapes both), and read back with `JSON.parse`; every other
 * text — nearly all of them — is stored as it is. Reversible for every string, and `encode` is
 * deterministic, so an encoded text can be compared for equality in SQL.
 *
 * `Storage` applies it in one place: every string bound to a statement is encoded
 * ({@link encodeArgument}, {@link encodeRow}) and every string read is decoded ({@link decodeRows}),
 * whatever its column — JSON columns included, which never need it (`JSON.stringify` escapes U+0000
 * and lone surrogates, and JSON never starts with the marker).
 */
import * as Arr from "effect/Array"
import type * as SqlClient from "effect/sql/SqlClient"
import type { Row } from "effect/sql/SqlConnection"

/**
 * U+FDD0, a Unicode noncharacter ("for a process's internal use", never interchanged as text):
 * a stored text starting with it is an encoded one.
 */
export const marker = "\uFDD0"

/** Whether `text` cannot be stored as it is. */
const needsEncoding = (text: string): boolean =>
  text.startsWith(marker) || text.includes("\u0000") || !text.isWellFormed()

/** `text` as stored: itself, or the marker and its JSON form (see the module comment). */
export const encode = (text: string): string => (needsEncoding(text) ? marker + JSON.stringify(text) : text)

/**
 * The text a stored value was encoded from.
 *
 * Gotcha: a text stored before this encoding existed that starts with the marker and then reads as a
 * JSON string is decoded too; one that does not read as a JSON string comes back as it is.
 */
export const decode = (stored: string): string => {
  if (!stored.startsWith(marker)) return stored
  const parsed = parseJson(stored.slice(marker.length))
  return typeof parsed === "string" ? parsed : stored
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** A statement argument as bound: strings encoded, everything else (numbers, null, SQL helpers) as it is. */
export const encodeArgument = (value: unknown): unknown => (typeof value === "string" ? encode(value) : value)

/** A row to insert, its strings encoded. */
export const encodeRow = <A extends Record<string, unknown>>(row: A): Record<string, unknown> => {
  const encoded: Record<string, unknown> = {}
  for (const key in row) encoded[key] = encodeArgument(row[key])
  return encoded
}

/** `sql.insert` of rows with their strings encoded. */
export const insertRows = (sql: SqlClient.SqlClient, rows: Arr.NonEmptyReadonlyArray<Record<string, unknown>>) =>
  sql.insert(Arr.map(rows, encodeRow))

/** Rows as read, their encoded strings decoded; a row with none (nearly all) is not copied. */
export const decodeRows = (rows: ReadonlyArray<Row>): ReadonlyArray<Row> =>
  rows.map((row) => {
    let decoded: Record<string, unknown> | undefined
    for (const key in row) {
      const value = row[key]
      if (typeof value === "string" && value.startsWith(marker)) {
        decoded ??= { ...row }
        decoded[key] = decode(value)
      }
    }
    return decoded ?? row
  })
