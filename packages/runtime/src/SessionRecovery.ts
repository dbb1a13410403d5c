/**
 * Recovery after a crash: the turns a killed process left between their tool calls and their
 * answer are found in storage at start-up and finished by their sessions (`Resume`), which run
 * again only the calls that have no result.
 */
import * as Effect from "effect/Effect"
import { entityId, Session } from "./SessionProtocol.ts"
import { Storage } from "./Storage.ts"

/**
 * Resumes, in the background, every turn a crash left between its tool calls and its answer:
 * run once at start-up, after the session entity is registered.
 */
export const resumeUnfinished = Effect.gen(function* () {
  const storage = yield* Storage
  const clientFor = yield* Session.client
  const sessions = yield* storage.listUnfinishedSessions
  yield* Effect.forEach(
    sessions,
    ({ tenant, id }) =>
      clientFor(entityId(tenant, id))
        .Resume()
        .pipe(
          Effect.tap((resumed) =>
            resumed ? Effect.logInfo(`resumed the interrupted turn of session ${id}`) : Effect.void
          ),
          Effect.catchCause((cause) => Effect.logWarning(`could not resume session ${id}`, cause))
        ),
    { concurrency: 4, discard: true }
  )
}).pipe(Effect.catchCause((cause) => Effect.logWarning("could not look for interrupted turns", cause)))
