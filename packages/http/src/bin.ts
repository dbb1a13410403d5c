/**
 * `npm start`: loads the configuration and runs the server until SIGTERM or SIGINT, when
 * it stops accepting, lets in-flight turns finish within `server.shutdown_grace`, closes
 * storage and exits 0. A start-up failure (invalid configuration, port in use, a data
 * directory another process holds) prints one line naming the cause and exits 1. An
 * unreachable database is no start-up failure: the server answers 503 until it is reachable.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit, Layer, Option, Runtime } from "effect"
import { AppConfig } from "@polyagent/runtime"
import * as Server from "./Server.ts"
import * as Workers from "./Workers.ts"

const cannotStart = (message: string) =>
  Effect.sync(() => {
    process.stderr.write(`PolyAgent cannot start: ${message}\n`)
    process.exitCode = 1
  })

const causeMessage = (cause: unknown) => (cause instanceof Error ? cause.message : "unknown error")

const main = Effect.gen(function* () {
  const config = yield* AppConfig.load()
  const index = Workers.workerIndex()
  if (config.server.workers > 1 && index === undefined) {
    yield* Effect.logInfo(`PolyAgent starting ${config.server.workers} worker processes on port ${config.server.port}`)
    return yield* Workers.supervise(config.server.workers)
  }
  const storage = Option.isSome(config.storage.postgresUrl) ? "PostgreSQL" : `SQLite in ${config.storage.dataDir}`
  yield* Effect.logInfo(`PolyAgent starting (storage: ${storage}, default model: ${config.models.default})`)
  yield* Layer.launch(Server.layer(config, { workerIndex: index })).pipe(
    Effect.catchTag("ServeError", (error) =>
      cannotStart(`cannot listen on ${config.server.host}:${config.server.port}: ${causeMessage(error.cause)}`)
    ),
    Effect.catchTag("SocketServerError", (error) =>
      cannotStart(`cannot listen for the other runners of the cluster: ${causeMessage(error.reason.cause)}`)
    )
  )
}).pipe(
  // Every other typed failure has a message written for the operator (no SQL, no secret).
  Effect.catch((error) => cannotStart(error.message))
)

/** A stop by signal is the normal end of a server: exit 0 once shutdown has finished. */
const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

NodeRuntime.runMain(main, { teardown })
