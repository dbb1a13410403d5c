/**
 * Token-bucket arithmetic, shared by the in-process limiter and mirrored line for line by the
 * Redis script (`rateLimiterRedis.ts`). Levels are whole numbers of 1/60,000 of a token, so a
 * bucket refills by exactly `requestsPerMinute` units per millisecond and every computation is
 * exact (no float drift between the two implementations, or between processes).
 */

/** One token, in units. */
export const unit = 60_000

/** A bucket's size and refill rate. */
export interface Limit {
  readonly requestsPerMinute: number
  readonly burst: number
}

/** A bucket as stored: its level (units) at time `at` (epoch ms). */
export interface Level {
  readonly level: number
  readonly at: number
}

/** The bucket's level at `now`: full when new; a clock behind `at` (another process's) refills nothing. */
export const refill = (stored: Level | undefined, limit: Limit, now: number): Level => {
  const capacity = limit.burst * unit
  if (stored === undefined) return { level: capacity, at: now }
  if (now <= stored.at) return { level: Math.min(capacity, stored.level), at: stored.at }
  return { level: Math.min(capacity, stored.level + (now - stored.at) * limit.requestsPerMinute), at: now }
}

/** Whole tokens in a bucket at `level`. */
export const tokens = (level: number): number => Math.floor(level / unit)

/** Milliseconds until a bucket at `level` holds a whole token again (0 when it does). */
export const waitMs = (level: number, limit: Limit): number =>
  level >= unit ? 0 : Math.ceil((unit - level) / limit.requestsPerMinute)

/** How long an untouched bucket is worth keeping: past this it is full again, as a new one. */
export const ttlMs = (limit: Limit): number => Math.ceil((limit.burst * unit) / limit.requestsPerMinute) + 1000
