/**
 * The one way this package opens a Redis connection (ioredis): commands fail at once while
 * disconnected (no offline queue, one retry) and after `commandTimeoutMs`, and the client
 * reconnects by itself in the background. A Redis outage therefore costs a failed command,
 * never a blocked caller; each user decides what a failed command means (shared health keeps
 * its own view, rate limits fail open or closed).
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"

/** Bound on connecting (and on the wait for the first connection at start-up). */
const connectTimeoutMs = 2000

/** A connection to the Redis at `url`, closed with the scope; waits for the first connection (or its failure). */
export const connect = (options: {
  readonly url: Redacted.Redacted<string>
  readonly commandTimeoutMs: number
}): Effect.Effect<Redis, never, Scope.Scope> =>
  Effect.gen(function* () {
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const redis = new Redis(Redacted.value(options.url), {
          lazyConnect: false,
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          // A busy machine may take a while to connect; a short command timeout must not cut that.
          connectTimeout: Math.max(connectTimeoutMs, options.commandTimeoutMs),
          commandTimeout: options.commandTimeoutMs,
          retryStrategy: (times) => Math.min(times * 200, 2000)
        })
        // Failures surface as failed commands, which each user handles.
        redis.on("error", () => undefined)
        return redis
      }),
      (redis) => Effect.sync(() => redis.disconnect())
    )
    // Commands fail while disconnected: wait for the first connection (or its failure) first.
    yield* Effect.callback<void>((resume) => {
      const settled = () => resume(Effect.void)
      client.once("ready", settled)
      client.once("error", settled)
      return Effect.sync(() => {
        client.off("ready", settled)
        client.off("error", settled)
      })
    }).pipe(Effect.timeoutOption(Math.max(connectTimeoutMs, options.commandTimeoutMs)))
    return client
  })
