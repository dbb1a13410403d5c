/**
 * What the server notes when an API key is used: the key's `last_used_at` (written at most once a
 * minute per key, by one background fiber, never while the request waits), and a sample of uses
 * in the audit log (`audit.sample_key_use`, drawn from `Random`, so tests can make it
 * deterministic). The stack's middleware and the fast lane both call {@link KeyUsage} `used`.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import { Audit, Storage } from "@polyagent/runtime"
import type { Principal } from "./Api.ts"

/** The least time between two writes of one key's `last_used_at`. */
export const lastUsedEvery = Duration.minutes(1)
/** At most this many keys' last writes are remembered; the oldest is forgotten first. */
const rememberedKeys = 10_000

/**
 * Key use.
 *
 * When to use: once per request authenticated with an API key, after it is authenticated.
 *
 * Details: `used` costs the request no I/O: a due `last_used_at` is queued for the writer, a
 * sampled audit entry goes to the audit log's own queue.
 *
 * Gotchas: `last_used_at` lags by up to a minute; a write that fails is logged and not retried
 * (the next use a minute later writes it).
 */
export class KeyUsage extends Context.Service<
  KeyUsage,
  { readonly used: (principal: Principal["Service"], requestId: string) => Effect.Effect<void> }
>()("@polyagent/http/KeyUsage") {}

/** Key use on the server's `Storage` and `Audit`, sampling `sampleKeyUse` of uses into the audit log. */
export const layer = (sampleKeyUse: number): Layer.Layer<KeyUsage, never, Storage.Storage | Audit.Audit> =>
  Layer.effect(
    KeyUsage,
    Effect.gen(function* () {
      const storage = yield* Storage.Storage
      const audit = yield* Audit.Audit
      const every = Duration.toMillis(lastUsedEvery)
      // Insertion order is age: the first entry is the oldest.
      const written = new Map<string, number>()
      let due = new Set<string>()
      const wake = yield* Queue.sliding<void>(1)

      const write = Effect.suspend(() => {
        const ids = [...due]
        due = new Set()
        if (ids.length === 0) return Effect.void
        return Effect.flatMap(Storage.nowIso, (now) => storage.touchApiKeys(ids, now)).pipe(
          Effect.catch((error) => Effect.logWarning("last_used_at could not be written", error))
        )
      })
      yield* Effect.addFinalizer(() => write)
      yield* Effect.forkScoped(Effect.forever(Effect.andThen(Queue.take(wake), Effect.uninterruptible(write))))

      const touch = (id: string, now: number) => {
        const last = written.get(id)
        if (last !== undefined && now - last < every) return false
        written.delete(id)
        if (written.size >= rememberedKeys) written.delete(written.keys().next().value ?? "")
        written.set(id, now)
        due.add(id)
        return true
      }

      return KeyUsage.of({
        used: (principal, requestId) =>
          Effect.gen(function* () {
            if (principal.keyId === null) return
            if (touch(principal.keyId, yield* Clock.currentTimeMillis)) yield* Queue.offer(wake, undefined)
            if (sampleKeyUse > 0 && (yield* Random.next) < sampleKeyUse) {
              yield* audit.record({
                actor: principal.keyId,
                tenant: principal.tenant,
                action: "key.use",
                target: principal.keyId,
                request_id: requestId,
                outcome: "ok"
              })
            }
          })
      })
    })
  )
