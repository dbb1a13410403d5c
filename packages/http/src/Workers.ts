/**
 * `server.workers: N` (env `POLYAGENT_WORKERS`): N server processes on one machine, sharing
 * the listening port through `node:cluster`, each a runner of the PostgreSQL cluster (one
 * core each). The primary process serves nothing itself: it starts the workers, starts again
 * a worker that dies once it was up, and on SIGTERM or SIGINT stops them all — each finishing
 * its in-flight requests and handing its shards over — before it exits.
 *
 * A worker that fails before it is ready (a port in use, an invalid plugin) would fail again:
 * the primary then stops the others and exits 1. A worker is ready once its server serves
 * ({@link ready}).
 */
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import cluster, { type Worker } from "node:cluster"

/** The environment variable that tells a worker its index (0 … N−1). */
const WORKER_INDEX = "POLYAGENT_WORKER_INDEX"

/** This process's index among the workers: `undefined` in the primary or a process on its own. */
export const workerIndex = (): number | undefined => {
  if (cluster.isPrimary) return undefined
  const index = Number(process.env[WORKER_INDEX])
  return Number.isSafeInteger(index) ? index : undefined
}

/** The message a worker sends the primary once its server serves. */
const READY = "polyagent:ready"

/** Tells the primary, if there is one, that this worker's server serves. */
export const ready: Effect.Effect<void> = Effect.sync(() => {
  if (!cluster.isPrimary) process.send?.(READY)
})

/** A worker that dies once it was ready is started again after this pause (no hot loop of restarts). */
const restartPause = Duration.seconds(1)

/** A worker failed to start, so the primary stopped. */
export class WorkerFailed extends Data.TaggedError("WorkerFailed")<{ readonly message: string }> {}

/**
 * Runs `count` workers until interrupted (SIGTERM, SIGINT) or until one of them fails to
 * start. Interruption stops every worker with SIGTERM and waits for them to exit.
 */
export const supervise = (count: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      // Worker exits arrive as node:cluster events; their log lines go through the server's logger.
      const log = Effect.runForkWith(yield* Effect.context<never>())
      const failed = yield* Deferred.make<never, WorkerFailed>()
      const workers = new Map<number, Worker>()
      let stopping = false

      const start = (index: number): void => {
        const worker = cluster.fork({ [WORKER_INDEX]: String(index) })
        let isReady = false
        workers.set(index, worker)
        worker.on("message", (message) => {
          if (message === READY) isReady = true
        })
        worker.once("exit", (code, signal) => {
          if (workers.get(index) === worker) workers.delete(index)
          if (stopping) return
          const how = signal === null ? `code ${code}` : `signal ${signal}`
          if (!isReady) {
            Deferred.doneUnsafe(
              failed,
              Effect.fail(new WorkerFailed({ message: `worker ${index} exited while starting (${how})` }))
            )
            return
          }
          log(
            Effect.annotateLogs(Effect.logWarning("worker exited; starting it again"), {
              worker: index,
              exit: how
            }).pipe(
              Effect.andThen(Effect.sleep(restartPause)),
              Effect.andThen(
                Effect.sync(() => {
                  if (!stopping) start(index)
                })
              )
            )
          )
        })
      }

      const stopAll = Effect.callback<void>((resume) => {
        stopping = true
        const running = [...workers.values()].filter((worker) => !worker.isDead())
        if (running.length === 0) return resume(Effect.void)
        let left = running.length
        for (const worker of running) {
          worker.once("exit", () => {
            left -= 1
            if (left === 0) resume(Effect.void)
          })
          worker.process.kill("SIGTERM")
        }
      })
      yield* Effect.addFinalizer(() => stopAll)

      yield* Effect.sync(() => {
        for (let index = 0; index < count; index++) start(index)
      })
      return yield* Deferred.await(failed)
    })
  )
