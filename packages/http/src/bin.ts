/**
 * `npm start`: loads the configuration and runs the server until SIGTERM or SIGINT, when
 * it stops accepting, lets in-flight turns finish within `server.shutdown_grace`, closes
 * storage and exits 0. A start-up failure (invalid configuration, port in use, a data
 * directory another process holds) prints one line naming the cause to stderr and exits 1.
 * An unreachable database is no start-up failure: the server answers 503 until it is
 * reachable. With `server.workers` > 1 this process starts the workers and supervises them
 * (`Workers.ts`).
 *
 * Everything else is a log line on stdout, in the configured format (`ServerLogger.ts`): the
 * start-up summary once the server listens, one line per request, `PolyAgent stopping` when a
 * stop signal arrives (which one, and the grace) and `PolyAgent stopped` once shutdown finished.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import { AppConfig } from "@polyagent/runtime"
import * as StartupGarbage from "./internal/startupGarbage.ts"
import type * as Server from "./Server.ts"
import * as ServerLogger from "./ServerLogger.ts"
import * as Workers from "./Workers.ts"

const cannotStart = (message: string) =>
  Effect.sync(() => {
    process.stderr.write(`PolyAgent cannot start: ${message}\n`)
    process.exitCode = 1
  })

const causeMessage = (cause: unknown) => (cause instanceof Error ? cause.message : "unknown error")

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

/**
 * One server process: the whole server in this process, or one worker of several. The server's
 * modules are imported here, so that the primary of several workers, which serves nothing, does
 * not load them.
 */
const runServer = (config: AppConfig.AppConfigValue, workerIndex: number | undefined) =>
  Effect.promise((): Promise<typeof Server> => import("./Server.ts"))
    .pipe(
      Effect.flatMap((Server) =>
        Layer.launch(
          Server.layer(config, { workerIndex }).pipe(
            Layer.tap(() => Effect.andThen(Workers.ready, StartupGarbage.collect))
          )
        )
      )
    )
    .pipe(
      Effect.catchTag("ServeError", (error) =>
        cannotStart(`cannot listen on ${config.server.host}:${config.server.port}: ${causeMessage(error.cause)}`)
      ),
      Effect.catchTag("SocketServerError", (error) =>
        cannotStart(`cannot listen for the other runners of the cluster: ${causeMessage(error.reason.cause)}`)
      )
    )

/** The primary of `server.workers` processes: it starts them and stops them. */
const runWorkers = (config: AppConfig.AppConfigValue) =>
  Effect.andThen(
    Effect.annotateLogs(Effect.logInfo("PolyAgent starting its workers"), {
      workers: config.server.workers,
      port: config.server.port
    }),
    Workers.supervise(config.server.workers)
  )

const serve = (config: AppConfig.AppConfigValue) =>
  Effect.gen(function* () {
    const sinceSignal = yield* announceStop(config.server.shutdownGrace)
    const stopped = Effect.flatMap(sinceSignal, (elapsed) =>
      Effect.annotateLogs(Effect.logInfo("PolyAgent stopped"), {
        exit_code: 0,
        ...(elapsed === undefined ? {} : { shutdown_ms: elapsed })
      })
    )
    const index = Workers.workerIndex()
    if (config.server.workers > 1 && index === undefined) {
      return yield* runWorkers(config).pipe(Effect.onInterrupt(() => stopped))
    }
    return yield* runServer(config, index).pipe(Effect.onInterrupt(() => stopped))
  }).pipe(Effect.scoped, Effect.provide(ServerLogger.layer(config.log, config.redaction)))

const main = Effect.flatMap(AppConfig.load(), serve).pipe(
  // Every other typed failure has a message written for the operator (no SQL, no secret).
  Effect.catch((error) => cannotStart(error.message))
)

/** A stop by signal is the normal end of a server: exit 0 once shutdown has finished. */
const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

NodeRuntime.runMain(main, { teardown })
