/**
 * `npm start`: loads the configuration and runs the server until SIGTERM or SIGINT, when
 * it stops accepting, lets in-flight turns finish within `server.shutdown_grace`, closes
 * storage and exits 0. A start-up failure (invalid configuration, port in use) prints one
 * line naming the cause to stderr and exits 1.
 *
 * Everything else is a log line on stdout, in the configured format (`ServerLogger.ts`): the
 * start-up summary once the server listens, one line per request, `PolyAgent stopping` when a
 * stop signal arrives (which one, and the grace) and `PolyAgent stopped` once shutdown finished.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Clock, Duration, Effect, Exit, Layer, Runtime } from "effect"
import { AppConfig } from "@polyagent/runtime"
import * as Server from "./Server.ts"
import * as ServerLogger from "./ServerLogger.ts"

const cannotStart = (message: string) =>
  Effect.sync(() => {
    process.stderr.write(`PolyAgent cannot start: ${message}\n`)
    process.exitCode = 1
  })

const stopSignals = ["SIGTERM", "SIGINT"] as const

/**
 * Logs the stop signal when it arrives. `NodeRuntime.runMain` has its own listeners, which
 * interrupt the program; these only say so, at once, before the shutdown begins.
 */
const announceStop = (grace: Duration.Duration) =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    const clock = yield* Clock.Clock
    let signalledAt: number | undefined
    const onSignal = (signal: NodeJS.Signals) => {
      signalledAt ??= clock.currentTimeMillisUnsafe()
      Effect.runForkWith(context)(
        Effect.annotateLogs(Effect.logInfo("PolyAgent stopping"), { signal, grace_ms: Duration.toMillis(grace) })
      )
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        for (const signal of stopSignals) process.on(signal, onSignal)
      }),
      () =>
        Effect.sync(() => {
          for (const signal of stopSignals) process.off(signal, onSignal)
        })
    )
    /** How long ago the signal came, once it did. */
    return Effect.map(Clock.currentTimeMillis, (now) => (signalledAt === undefined ? undefined : now - signalledAt))
  })

const serve = (config: AppConfig.AppConfigValue) =>
  Effect.gen(function* () {
    const sinceSignal = yield* announceStop(config.server.shutdownGrace)
    yield* Layer.launch(Server.layer(config)).pipe(
      Effect.onInterrupt(() =>
        Effect.flatMap(sinceSignal, (elapsed) =>
          Effect.annotateLogs(Effect.logInfo("PolyAgent stopped"), {
            exit_code: 0,
            ...(elapsed === undefined ? {} : { shutdown_ms: elapsed })
          })
        )
      ),
      Effect.catchTag("ServeError", (error) =>
        cannotStart(
          `cannot listen on ${config.server.host}:${config.server.port}: ${error.cause instanceof Error ? error.cause.message : "unknown error"}`
        )
      )
    )
  }).pipe(Effect.scoped, Effect.provide(ServerLogger.layer(config.log)))

const main = Effect.flatMap(AppConfig.load(), serve).pipe(
  Effect.catchTag("ConfigError", (error) => cannotStart(error.message)),
  Effect.catchTag("PluginLoadError", (error) => cannotStart(error.message))
)

/** A stop by signal is the normal end of a server: exit 0 once shutdown has finished. */
const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

NodeRuntime.runMain(main, { teardown })
