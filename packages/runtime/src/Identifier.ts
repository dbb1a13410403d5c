/**
 * Identifiers the runtime hands out: a short prefix that says what the id names,
 * then 22 characters of base62 randomness (≈131 bits, like a UUID).
 */
import * as Effect from "effect/Effect"
import { randomFillSync } from "node:crypto"

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/** A random base62 string of `length` characters (rejection sampling keeps it unbiased). */
export const randomBase62 = (length: number): string => {
  const out = length <= scratch.length ? scratch : Buffer.allocUnsafe(length)
  for (let i = 0; i < length; ) {
    const byte = randomByte()
    // 248 = 4 * 62: bytes above it would favour the first characters.
    if (byte < 248) out[i++] = ALPHABET.charCodeAt(byte % 62)
  }
  // One string, rather than one per character appended.
  return out.toString("latin1", 0, length)
}

const scratch = Buffer.alloc(64)

// Random bytes are drawn from the system a pool at a time: one call per id costs more than the id.
const pool = Buffer.alloc(4096)
let used = pool.length

const randomByte = (): number => {
  if (used === pool.length) {
    randomFillSync(pool)
    used = 0
  }
  return pool[used++] ?? 0
}

/** A new id such as `sess_3xQ…`; an Effect because every call answers differently. */
export const make = (prefix: string): Effect.Effect<string> => Effect.sync(() => makeUnsafe(prefix))

/** {@link make} run at once, for code outside Effect. */
export const makeUnsafe = (prefix: string): string => `${prefix}_${randomBase62(22)}`
