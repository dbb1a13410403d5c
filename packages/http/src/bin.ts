/**
 * `npm start`: loads the configuration and runs the server until SIGTERM or SIGINT, when
 * it stops accepting, lets in-flight turns finish within `server.shutdown_grace`, closes
 * storage and exits 0. A start-up failure (invalid configuration, port in use) prints one
 * line naming the cause and exits 1.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import { AppConfig } from "@polyagent/runtime"
import * as StartupGarbage from "./internal/startupGarbage.ts"
import * as Server from "./Server.ts"

const cannotStart = (message: string) =>
  Effect.sync(() => {
    process.stderr.write(`PolyAgent cannot start: ${message}\n`)
    process.exitCode = 1
  })

const main = Effect.gen(function* () {
  const config = yield* AppConfig.load()
  const storage = Option.isSome(config.storage.postgresUrl) ? "PostgreSQL" : `SQLite in ${config.storage.dataDir}`
  yield* Effect.logInfo(`PolyAgent starting (storage: ${storage}, default model: ${config.models.default})`)
  yield* Layer.launch(Server.layer(config).pipe(Layer.tap(() => StartupGarbage.collect))).pipe(
    Effect.catchTag("ServeError", (error) =>
      cannotStart(
        `cannot listen on ${config.server.host}:${config.server.port}: ${error.cause instanceof Error ? error.cause.message : "unknown error"}`
      )
    )
  )
}).pipe(
  Effect.catchTag("ConfigError", (error) => cannotStart(error.message)),
  Effect.catchTag("PluginLoadError", (error) => cannotStart(error.message))
)

/** A stop by signal is the normal end of a server: exit 0 once shutdown has finished. */
const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

NodeRuntime.runMain(main, { teardown })
