/** Seen signatures, in the process (on the TestClock) and in the real Redis: new once, then a replay until they expire. */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { randomBytes } from "node:crypto"
import * as SeenSignatures from "../src/SeenSignatures.ts"

const firstSeen = (signature: string, ttl: Duration.Duration) =>
  Effect.flatMap(SeenSignatures.SeenSignatures, (seen) => seen.firstSeen(signature, ttl))

describe("SeenSignatures", () => {
  it.effect("in the process: new once, a replay within its time, new again after it; bounded", () =>
    Effect.gen(function* () {
      const ttl = Duration.seconds(600)
      assert.isTrue(yield* firstSeen("a", ttl))
      assert.isFalse(yield* firstSeen("a", ttl))
      yield* TestClock.adjust(Duration.seconds(599))
      assert.isFalse(yield* firstSeen("a", ttl))
      yield* TestClock.adjust(Duration.seconds(2))
      assert.isTrue(yield* firstSeen("a", ttl))
      // Capacity 3: the oldest goes first.
      for (const signature of ["b", "c", "d"]) assert.isTrue(yield* firstSeen(signature, ttl))
      assert.isTrue(yield* firstSeen("a", ttl))
      assert.isFalse(yield* firstSeen("d", ttl))
    }).pipe(Effect.provide(SeenSignatures.layerMemory(3)))
  )

  it.effect("in Redis: shared by every client of the prefix", () =>
    Effect.gen(function* () {
      const signature = randomBytes(8).toString("hex")
      assert.isTrue(yield* firstSeen(signature, Duration.seconds(5)))
      assert.isFalse(yield* firstSeen(signature, Duration.seconds(5)))
    }).pipe(
      Effect.provide(
        SeenSignatures.layerRedis({ url: Redacted.make("redis://127.0.0.1:6379"), prefix: "test:seen-signatures:" })
      ),
      Effect.scoped
    )
  )

  it.effect("with Redis unreachable: a typed failure, never a pass", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(firstSeen("x", Duration.seconds(5)))
      assert.strictEqual(error._tag, "SeenSignaturesUnavailable")
    }).pipe(
      Effect.provide(SeenSignatures.layerRedis({ url: Redacted.make("redis://127.0.0.1:1"), prefix: "test:" })),
      Effect.scoped
    )
  )
})
