/**
 * The composition of a PolyAgent server, in two parts:
 *
 * - the listener: the `node:http` server bound to the port, built first, so that the server
 *   answers (503, see `Listener.ts`) even while its storage cannot be reached;
 * - the application on it: database → storage and the cluster's runner → session actors → the
 *   HTTP stack with the fast lane in front. While the database is unreachable the application
 *   is built again every second, until it is; any other failure stops start-up.
 *
 * Once the stack serves, the start-up summary is logged (`StartupSummary.ts`). On SIGTERM the
 * application closes first: the HTTP stack stops accepting and lets in-flight requests finish,
 * then the runner hands its shards over, then the database closes.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import { ProviderCatalog } from "@polyagent/providers"
import { SafeHttp, ToolExecutor, ToolRegistry } from "@polyagent/tools"
import {
  AppConfig,
  Audit,
  Budgets,
  Database,
  Experiments,
  type ModelCatalog,
  KeyGuards,
  ModelHealth,
  ModelRouter,
  RetryBudget,
  SecretBox,
  SeenSignatures,
  Safety,
  SessionActor,
  SessionProtocol,
  SessionRecovery,
  Storage,
  TenantProviderKeys,
  WorkflowRuns,
  WorkflowStorage
} from "@polyagent/runtime"
import * as ClusterWorkflowEngine from "effect/cluster/ClusterWorkflowEngine"
import { Api } from "./Api.ts"
import * as ApiDocs from "./ApiDocs.ts"
import * as Authentication from "./Authentication.ts"
import * as Cluster from "./Cluster.ts"
import * as Cors from "./Cors.ts"
import * as CompletionsHandlers from "./CompletionsHandlers.ts"
import * as Edge from "./Edge.ts"
import * as FastLane from "./FastLane.ts"
import * as Handlers from "./Handlers.ts"
import * as Jwt from "./Jwt.ts"
import * as KeyUsage from "./KeyUsage.ts"
import { Listener, readTls } from "./Listener.ts"
import * as Metrics from "./Metrics.ts"
import * as RateLimit from "./RateLimit.ts"
import { Readiness } from "./Readiness.ts"
import * as RequestGuards from "./RequestGuards.ts"
import * as StartupSummary from "./StartupSummary.ts"

/** Options for tests and embedders. */
export interface Options {
  /**
   * Replaces the provider catalogue (tests use models that fail or hang on purpose); it may
   * record its calls in the server's `ModelHealth`.
   */
  readonly models?: Layer.Layer<ModelCatalog.ModelCatalog, never, ModelHealth.ModelHealth> | undefined
  /** Called with a newly created bootstrap admin key, which is shown only this once. */
  readonly announceAdminKey?: ((key: string) => Effect.Effect<void>) | undefined
  /** This process's place among `server.workers` processes: 0 for the first (or only) one. */
  readonly workerIndex?: number | undefined
}

const printAdminKey = (key: string) =>
  Effect.sync(() => {
    process.stdout.write(
      `\nA new admin API key was created for tenant "default". It is shown only now; store it:\n\n  ${key}\n\n`
    )
  })

/** The database of `config`: PostgreSQL when `POSTGRES_URL` is set, else the embedded SQLite file. */
export const database = (config: AppConfig.AppConfigValue) =>
  config.storage.postgresUrl._tag === "Some"
    ? Database.layerPg({ url: config.storage.postgresUrl.value })
    : Database.layerSqlite(config.storage.dataDir)

/**
 * The secrets at rest (`SecretBox`: the configured keys, else the data directory's key file on
 * embedded storage), the stores sealed with them, and the stores re-sealed under the current key
 * once they are open (after a key rotation).
 */
const secrets = (config: AppConfig.AppConfigValue, db: ReturnType<typeof database>) => {
  const box = SecretBox.layer({
    configured: config.security.secretKeys,
    dataDir: config.storage.postgresUrl._tag === "Some" ? undefined : config.storage.dataDir
  })
  const stores = Layer.mergeAll(TenantProviderKeys.layer, KeyGuards.layer)
  const rotation = Layer.effectDiscard(
    Effect.all([TenantProviderKeys.rotate, KeyGuards.rotate]).pipe(
      Effect.flatMap(([providers, guards]) => {
        const resealed = providers.resealed + guards.resealed
        const unreadable = providers.unreadable + guards.unreadable
        if (resealed === 0 && unreadable === 0) return Effect.void
        const line = unreadable > 0 ? Effect.logWarning("secrets re-sealed") : Effect.logInfo("secrets re-sealed")
        return Effect.annotateLogs(line, { resealed, unreadable })
      }),
      // A database that fails here fails elsewhere too; the rotation waits for the next start.
      Effect.catch((error) => Effect.logWarning("secrets could not be re-sealed", error))
    )
  )
  return Layer.merge(stores, rotation).pipe(Layer.provideMerge(box), Layer.provide(db))
}

/** Signatures seen within the replay window: shared through Redis when configured. */
const seenSignatures = (config: AppConfig.AppConfigValue) =>
  config.redisUrl._tag === "Some"
    ? SeenSignatures.layerRedis({ url: config.redisUrl.value, prefix: "polyagent:signatures:" })
    : SeenSignatures.layerMemory()

/** Everything that runs on the database, serving on the {@link Listener} once built. */
const application = (config: AppConfig.AppConfigValue, options: Options) => {
  const db = database(config)
  const storage = (config.redaction.storage ? Storage.layerSqlRedacting : Storage.layerSql).pipe(Layer.provide(db))
  const budgets = Budgets.layer(config.budgets).pipe(Layer.provide(db))
  // Durable, written in the background, flushed when the server stops cleanly.
  const audit = Audit.layer.pipe(Layer.provide(db))
  const sealed = secrets(config, db)
  const guards = RequestGuards.layer({ security: config.security, trustedProxies: config.server.trustedProxies }).pipe(
    Layer.provide([sealed, seenSignatures(config), audit])
  )
  const experiments = Experiments.layer(Experiments.fromConfig(config.routing.experiments)).pipe(Layer.provide(db))
  const cluster = Cluster.layer(config, options.workerIndex).pipe(Layer.provide(db))
  // Health shared through Redis when configured, else PostgreSQL, else kept in this process.
  const health = ModelHealth.layerConfig(config).pipe(Layer.provide(db))
  const models = (options.models ?? ProviderCatalog.layer(config)).pipe(Layer.provideMerge(health))
  // Loaded at start-up so that a broken plugin stops the server with a message naming it.
  const registry = ToolRegistry.layer(config.plugins, { cwd: process.cwd() })
  const tools = ToolExecutor.layer({
    timeout: config.tools.timeout,
    concurrency: config.tools.concurrency,
    maxResultBytes: config.tools.maxResultBytes,
    hostServices: { network: [SafeHttp.SafeHttp] }
  }).pipe(Layer.provide(SafeHttp.layer({ allowHosts: config.tools.network.allowHosts })), Layer.provideMerge(registry))
  const settings = SessionProtocol.layerSettings({
    turnTimeout: config.server.requestTimeout,
    maxToolSteps: config.tools.maxSteps,
    contextStrategy: config.sessions.contextStrategy
  })
  const sessions = SessionActor.layer({ maxIdleTime: config.sessions.maxIdle })
  // Workflow runs: durable executions on the cluster's engine, their state in the workflow tables.
  const workflowStorage = WorkflowStorage.layer.pipe(Layer.provide(db))
  const workflows = WorkflowRuns.layer().pipe(
    Layer.provide(ClusterWorkflowEngine.layer),
    Layer.provideMerge(workflowStorage)
  )
  // The router and the catalogue share one ModelHealth (the same layer value, built once).
  const routing = ModelRouter.layer.pipe(
    Layer.provide([
      AppConfig.AppConfig.layerFrom(config),
      health,
      RetryBudget.layerFrom(RetryBudget.settingsOf(config)),
      experiments,
      sealed
    ])
  )
  const bootstrap = Layer.effectDiscard(
    Authentication.bootstrapAdminKey(config.security.adminKey, {
      announce: options.announceAdminKey ?? printAdminKey,
      // Workers of one machine start together: the first one alone creates a missing admin key.
      create: (options.workerIndex ?? 0) === 0
    })
  )
  const cors = Cors.make(config.cors.origins)
  const api = HttpApiBuilder.layer(Api, { openapiPath: "/openapi.json" }).pipe(
    Layer.provide([Handlers.layer, CompletionsHandlers.layer]),
    Layer.provide([Authentication.layer, Edge.layerRequestErrors])
  )
  const routes = Layer.mergeAll(
    api,
    ApiDocs.layer({ path: "/docs" }),
    Metrics.layer({ public: config.metrics.public }),
    Edge.layer({ bodyLimit: config.server.bodyLimit, cors })
  )
  // The stack attaches last: until then the listener answers 503.
  const stack = HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true })
  const http = (
    config.server.fastLane ? Layer.mergeAll(stack, FastLane.layer({ bodyLimit: config.server.bodyLimit, cors })) : stack
  ).pipe(
    Layer.provide([
      Authentication.layerKeyCache,
      Readiness.layer,
      RateLimit.layerConfig(config),
      Jwt.layer(config.security.jwt),
      KeyUsage.layer(config.audit.sampleKeyUse),
      guards
    ])
  )
  const summary = StartupSummary.layer(config).pipe(Layer.provideMerge(http))
  // The safety policies: their model checks go through the router, their decisions to the audit log.
  const safety = Safety.layer(config.safety)
  // Turns a crash interrupted between their tool calls and their answer finish in the background.
  const recovery = Layer.effectDiscard(Effect.forkScoped(SessionRecovery.resumeUnfinished))
  return Layer.mergeAll(summary, recovery).pipe(
    Layer.provide(bootstrap),
    Layer.provide(sessions),
    Layer.provide(workflows),
    Layer.provideMerge(safety),
    Layer.provideMerge(routing),
    Layer.provideMerge(
      Layer.mergeAll(db, storage, budgets, experiments, models, cluster, tools, settings, audit, sealed, guards)
    )
  )
}

/** A failure that says the database cannot be reached (yet), rather than that something is wrong. */
const isUnreachable = (error: unknown): boolean =>
  (error instanceof Database.DatabaseError && error.reason === "unreachable") ||
  (error instanceof Storage.StorageError && error.unavailable === true)

/** How often start-up tries again while the database is unreachable. */
const retryEvery = Duration.seconds(1)

/**
 * `layer`, built again every {@link retryEvery} while its failure says the database is
 * unreachable. Each attempt gets a scope of its own, closed when it fails, so a half-built
 * attempt leaves nothing behind; the first such failure is logged, the later ones are not.
 */
const untilReachable = <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const scope = yield* Effect.scope
      let warned = false
      const attempt = Effect.gen(function* () {
        const child = yield* Scope.fork(scope, "sequential")
        return yield* Layer.buildWithScope(layer, child).pipe(
          Effect.onError((cause) => Scope.close(child, Exit.failCause(cause)))
        )
      })
      return yield* attempt.pipe(
        Effect.tapError((error) => {
          if (!isUnreachable(error) || warned) return Effect.void
          warned = true
          return Effect.annotateLogs(Effect.logWarning("storage is unreachable; answering 503 until it is not"), {
            retry_every_ms: Duration.toMillis(retryEvery),
            reason: Database.describeFailure(error)
          })
        }),
        Effect.retry({ while: isUnreachable, schedule: Schedule.spaced(retryEvery) }),
        Effect.tap(() => (warned ? Effect.logInfo("storage is reachable again; the server is ready") : Effect.void))
      )
    })
  )

/** The whole server as one layer; building it binds the port (`HttpServer` tells the address). */
export const layer = (config: AppConfig.AppConfigValue, options: Options = {}) => {
  const listener = Layer.unwrap(
    Effect.gen(function* () {
      const listener = yield* Listener
      return NodeHttpServer.layer(() => listener.server, {
        host: config.server.host,
        port: config.server.port,
        gracefulShutdownTimeout: Duration.toMillis(config.server.shutdownGrace)
      })
    })
  ).pipe(
    Layer.provideMerge(
      Layer.unwrap(
        Effect.map(config.server.tls === null ? Effect.undefined : readTls(config.server.tls), (tls) =>
          Listener.layer(
            {
              maxHeaderSize: config.server.maxHeaderSize,
              headersTimeoutMs: Duration.toMillis(config.server.headersTimeout),
              receiveTimeoutMs: Duration.toMillis(config.server.receiveTimeout)
            },
            tls
          )
        )
      )
    )
  )
  return untilReachable(application(config, options)).pipe(Layer.provideMerge(listener))
}
