/**
 * The garbage of start-up, collected once the server listens. Loading ~500 modules and building
 * the layers leaves ~20 MB of dead objects in the heap, which V8 frees only at its next full
 * collection. An idle server never gets one: V8's memory reducer, whose job that is, keeps
 * judging the allocation rate too high (`--trace-memory-reducer` prints "high alloc" every 8 s
 * for as long as the server idles), so the memory stayed taken until traffic came.
 */
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

/**
 * One full collection, marked concurrently: the event loop keeps serving but for the final pause
 * (~60–70 ms measured on one busy core, right after the server started listening). Without
 * `--expose-gc` the `gc` function exists only in a context made while the flag is on, so the flag
 * is on for the time it takes to make one.
 */
export const collect: Effect.Effect<void> = Effect.suspend(() => {
  setFlagsFromString("--expose-gc")
  const gc: unknown = runInNewContext("gc")
  setFlagsFromString("--no-expose-gc")
  return Predicate.isFunction(gc) ? Effect.promise(() => gc({ type: "major", execution: "async" })) : Effect.void
})
