/**
 * Where processes share model health: each publishes its own window of every model it called
 * (thinned to a few latency points) and the breaker records it changed; each reads the others'.
 * Stores: Redis (`sharedHealthRedis.ts`), the SQL database (`sharedHealthSql.ts`). A store's
 * operations fail with {@link SharedStateError} and never retry: the sync loop of `ModelHealth`
 * counts and logs failures, and tries again at its next tick.
 */
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { BreakerRecord } from "./circuitBreaker.ts"
import type { WindowSummary } from "./rolling.ts"

/** The shared store could not be reached or answered something unreadable. */
export class SharedStateError extends Schema.TaggedError<SharedStateError>()("SharedStateError", {
  store: Schema.Literals(["redis", "sql"]),
  cause: Schema.Defect()
}) {
  override get message(): string {
    return `the shared health state (${this.store}) is unreachable`
  }
}

/** One process's window of one model, as of `at`. */
export interface SharedWindow {
  readonly process: string
  readonly model: string
  readonly at: number
  readonly summary: WindowSummary
}

/** What every process shared, as read at one time. */
export interface SharedView {
  readonly windows: ReadonlyArray<SharedWindow>
  readonly breakers: ReadonlyMap<string, BreakerRecord>
}

/** A place processes share health through. */
export interface SharedStore {
  readonly name: "redis" | "sql"
  /** Replaces this process's windows; forgets everyone's older than `staleBefore`. */
  readonly publishWindows: (
    windows: ReadonlyArray<SharedWindow>,
    staleBefore: number
  ) => Effect.Effect<void, SharedStateError>
  /** Stores `record` for `model` unless a newer one is there. */
  readonly publishBreaker: (model: string, record: BreakerRecord) => Effect.Effect<void, SharedStateError>
  /** Windows published at or after `since`, and every breaker record. */
  readonly read: (since: number) => Effect.Effect<SharedView, SharedStateError>
}

const Samples = Schema.Array(Schema.Finite)

/** A window summary as stored (JSON). */
export const SummaryJson = Schema.fromJsonString(
  Schema.Struct({ requests: Schema.Finite, failures: Schema.Finite, latency: Samples, ttft: Samples })
)

/** A breaker record as stored (JSON). */
export const BreakerJson = Schema.fromJsonString(
  Schema.Struct({
    state: Schema.Literals(["open", "closed"]),
    openUntil: Schema.Finite,
    level: Schema.Finite,
    updatedAt: Schema.Finite
  })
)

/** Latency points a process shares per model: percentiles of the merged view stay close. */
export const sharedPoints = 32

export const encodeSummary = Schema.encodeSync(SummaryJson)
export const encodeBreaker = Schema.encodeSync(BreakerJson)
const decodeSummary = Schema.decodeUnknownOption(SummaryJson)
const decodeBreaker = Schema.decodeUnknownOption(BreakerJson)

/** A stored summary, or undefined when it is not one (a store shared with a newer version, a stray key). */
export const readSummary = (text: unknown): WindowSummary | undefined => {
  const decoded = decodeSummary(text)
  return decoded._tag === "Some" ? decoded.value : undefined
}

/** A stored breaker record, or undefined when it is not one. */
export const readBreaker = (text: unknown): BreakerRecord | undefined => {
  const decoded = decodeBreaker(text)
  return decoded._tag === "Some" ? decoded.value : undefined
}
