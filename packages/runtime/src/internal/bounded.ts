/** Waiting that ends on time even when the work cannot be interrupted at once. */
import type * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"

/**
 * `effect`, or a `TimeoutError` after `timeout` even when it is stuck where it cannot be
 * interrupted (a query on a connection whose server froze): it runs on a fiber of its own,
 * which is interrupted in the background when the caller stops waiting.
 */
export const within =
  (timeout: Duration.Input) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | Cause.TimeoutError, R> =>
    Effect.flatMap(Effect.forkDetach(effect, { startImmediately: true }), (fiber) =>
      Fiber.join(fiber).pipe(
        Effect.timeout(timeout),
        Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Effect.sync(() => fiber.interruptUnsafe())))
      )
    )
