/**
 * `npm start`: loads the configuration and runs the server until SIGTERM or SIGINT, when
 * it stops accepting, lets in-flight turns finish within `server.shutdown_grace`, and
 * closes storage. An invalid configuration stops start-up with a message naming the key.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer, Option } from "effect"
import { AppConfig } from "@polyagent/runtime"
import * as Server from "./Server.ts"

const main = Effect.gen(function* () {
  const config = yield* AppConfig.load()
  const storage = Option.isSome(config.storage.postgresUrl) ? "PostgreSQL" : `SQLite in ${config.storage.dataDir}`
  yield* Effect.logInfo(`PolyAgent starting (storage: ${storage}, default model: ${config.models.default})`)
  yield* Layer.launch(Server.layer(config))
}).pipe(
  Effect.catchTag("ConfigError", (error) =>
    Effect.sync(() => {
      process.stderr.write(`PolyAgent cannot start: ${error.message}\n`)
      process.exitCode = 1
    })
  )
)

NodeRuntime.runMain(main)
