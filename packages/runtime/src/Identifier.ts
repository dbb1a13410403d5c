/**
 * Identifiers the runtime hands out: a short prefix that says what the id names,
 * then 22 characters of base62 randomness (≈131 bits, like a UUID).
 */
import { Effect } from "effect"
import { randomBytes } from "node:crypto"

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/** A random base62 string of `length` characters (rejection sampling keeps it unbiased). */
export const randomBase62 = (length: number): string => {
  let out = ""
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 * 62: bytes above it would favour the first characters.
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62]
    }
  }
  return out
}

/** A new id such as `sess_3xQ…`; an Effect because every call answers differently. */
export const make = (prefix: string): Effect.Effect<string> => Effect.sync(() => `${prefix}_${randomBase62(22)}`)
