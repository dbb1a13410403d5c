/**
 * The request signatures seen within the replay window, so that a signed request is served once:
 * in Redis (`SET key 1 NX PX ttl`, shared by every process) when `REDIS_URL` is set, else in this
 * process, in a bounded map whose entries expire (the oldest are dropped first when it is full).
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as RedisConnection from "./internal/redisConnection.ts"

/** The store of seen signatures could not be asked (Redis down): the request cannot be served safely. */
export class SeenSignaturesUnavailable extends Schema.TaggedError<SeenSignaturesUnavailable>()(
  "SeenSignaturesUnavailable",
  { cause: Schema.Defect() }
) {
  override get message(): string {
    return "the store of seen request signatures is unavailable"
  }
}

/**
 * Seen signatures.
 *
 * When to use: after a request's signature was verified, `firstSeen` says whether it is new; a
 * signature seen before is a replay.
 *
 * Gotchas: keep each signature for twice the replay window: a timestamp may be that far from the
 * clock on either side.
 */
export class SeenSignatures extends Context.Service<
  SeenSignatures,
  {
    /** Records `signature` for `ttl`; true when it was not there yet. */
    readonly firstSeen: (signature: string, ttl: Duration.Duration) => Effect.Effect<boolean, SeenSignaturesUnavailable>
  }
>()("@polyagent/runtime/SeenSignatures") {}

/** How many signatures a process remembers at most. */
export const memoryCapacity = 100_000

/** Seen signatures in this process's memory: at most `capacity`, the oldest dropped first. */
export const layerMemory = (capacity = memoryCapacity): Layer.Layer<SeenSignatures> =>
  Layer.sync(SeenSignatures, () => {
    // Insertion order is age.
    const seen = new Map<string, number>()
    return SeenSignatures.of({
      firstSeen: (signature, ttl) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const until = seen.get(signature)
          if (until !== undefined && until > now) return false
          seen.delete(signature)
          // Expired entries at the front go first; then the oldest when still full.
          for (const [key, expiry] of seen) {
            if (expiry > now && seen.size < capacity) break
            seen.delete(key)
          }
          seen.set(signature, now + Duration.toMillis(ttl))
          return true
        })
    })
  })

/** Bound on one Redis command. */
const commandTimeoutMs = 2000

/** Seen signatures in the Redis at `url`, under `prefix`; the connection lives as long as the layer. */
export const layerRedis = (options: {
  readonly url: Redacted.Redacted<string>
  readonly prefix: string
}): Layer.Layer<SeenSignatures> =>
  Layer.effect(
    SeenSignatures,
    Effect.gen(function* () {
      const client = yield* RedisConnection.connect({ url: options.url, commandTimeoutMs })
      return SeenSignatures.of({
        firstSeen: (signature, ttl) =>
          Effect.tryPromise({
            try: () =>
              client.set(`${options.prefix}${signature}`, "1", "PX", Math.max(1, Duration.toMillis(ttl)), "NX"),
            catch: (cause) => new SeenSignaturesUnavailable({ cause })
          }).pipe(Effect.map((answer) => answer === "OK"))
      })
    })
  )
