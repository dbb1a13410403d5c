/**
 * Whether the server can serve what needs storage right now. A background fiber pings the
 * database every {@link interval} (`Database.Probe`: on a connection of its own, so a busy
 * pool is not taken for a dead database); a ping that fails or takes longer than
 * `Database.pingTimeout` marks storage down, the next one that answers marks it up again.
 *
 * While storage is down the edge answers 503 `unavailable` at once instead of letting
 * requests wait on a database that does not answer, `GET /v1/health` answers 503 `down`, and
 * turns in flight are answered 503 as soon as the outage is seen (they could not be stored).
 * So a lost database costs a client at most a few seconds, never a hung request, and service
 * comes back within a second or two of the database.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Latch from "effect/Latch"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import { Database } from "@polyagent/runtime"

/** How often storage is pinged. */
export const interval = Duration.seconds(1)

/** What the edge knows of storage. */
export class Readiness extends Context.Service<
  Readiness,
  {
    /** Whether the last ping answered (a plain read, for the hot path). */
    readonly isUp: () => boolean
    /** Completes when storage is seen down (at once if it is down now). */
    readonly down: Effect.Effect<void>
  }
>()("@polyagent/http/Readiness") {
  /**
   * Pings the database for as long as the layer lives, starting from "up" (the
   * server was built on a database that answered).
   *
   * **Gotchas**: transitions are logged once each (`storage is down`, `storage is back`), not
   * per ping.
   */
  static readonly layer: Layer.Layer<Readiness, never, Database.Probe> = Layer.effect(
    Readiness,
    Effect.gen(function* () {
      const probe = yield* Database.Probe
      let up = true
      // Open while storage is down: `down` waits on it.
      const outage = Latch.makeUnsafe(false)
      const check = Effect.flatMap(Effect.result(probe.ping), (result) => {
        const answered = Result.isSuccess(result)
        if (answered === up) return Effect.void
        up = answered
        return Result.isSuccess(result)
          ? Effect.andThen(outage.close, Effect.logInfo("storage is back; serving again"))
          : Effect.andThen(
              outage.open,
              Effect.annotateLogs(Effect.logWarning("storage is down; answering 503 until it is back"), {
                reason: Database.describeFailure(result.failure)
              })
            )
      })
      yield* check.pipe(Effect.repeat(Schedule.spaced(interval)), Effect.forkScoped)
      return Readiness.of({ isUp: () => up, down: outage.await })
    })
  )
}
