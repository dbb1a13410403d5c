/**
 * The composition of a PolyAgent server: configuration → database → storage and the
 * cluster's single runner → session actors → the HTTP edge, with the fast lane for relayed
 * completions in front of it (`FastLane.ts`). Nothing else happens here.
 */
import * as NodeCrypto from "@effect/platform-node/NodeCrypto"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as SingleRunner from "effect/cluster/SingleRunner"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import { ProviderCatalog } from "@polyagent/providers"
import { SafeHttp, ToolExecutor, ToolRegistry } from "@polyagent/tools"
import { type AppConfig, Database, type ModelCatalog, SessionActor, Storage } from "@polyagent/runtime"
import { Api } from "./Api.ts"
import * as ApiDocs from "./ApiDocs.ts"
import * as Authentication from "./Authentication.ts"
import * as Edge from "./Edge.ts"
import * as FastLane from "./FastLane.ts"
import * as Handlers from "./Handlers.ts"

/** Options for tests and embedders. */
export interface Options {
  /** Replaces the provider catalogue (tests use models that fail or hang on purpose). */
  readonly models?: Layer.Layer<ModelCatalog.ModelCatalog> | undefined
  /** Called with a newly created bootstrap admin key, which is shown only this once. */
  readonly announceAdminKey?: ((key: string) => Effect.Effect<void>) | undefined
}

const printAdminKey = (key: string) =>
  Effect.sync(() => {
    process.stdout.write(
      `\nA new admin API key was created for tenant "default". It is shown only now; store it:\n\n  ${key}\n\n`
    )
  })

/** The database of `config`: PostgreSQL when `POSTGRES_URL` is set, else the embedded SQLite file. */
export const database = (config: AppConfig.AppConfigValue) =>
  Option.match(config.storage.postgresUrl, {
    onNone: () => Database.layerSqlite(config.storage.dataDir),
    onSome: (url) => Database.layerPg({ url })
  })

/** The whole server as one layer; building it binds the port (`HttpServer` tells the address). */
export const layer = (config: AppConfig.AppConfigValue, options: Options = {}) => {
  const db = database(config)
  const storage = Storage.layerSql.pipe(Layer.provide(db))
  const cluster = SingleRunner.layer({
    runnerStorage: "sql",
    shardingConfig: { entityMaxIdleTime: config.sessions.maxIdle, maxResidentEntities: config.sessions.maxResident }
  }).pipe(Layer.provide([db, NodeCrypto.layerDigest]))
  const models = options.models ?? ProviderCatalog.layer(config)
  // Loaded at start-up so that a broken plugin stops the server with a message naming it.
  const registry = ToolRegistry.layer(config.plugins, { cwd: process.cwd() })
  const tools = ToolExecutor.layer({
    timeout: config.tools.timeout,
    concurrency: config.tools.concurrency,
    maxResultBytes: config.tools.maxResultBytes,
    hostServices: { network: [SafeHttp.SafeHttp] }
  }).pipe(Layer.provide(SafeHttp.layer({ allowHosts: config.tools.network.allowHosts })), Layer.provideMerge(registry))
  const settings = SessionActor.layerSettings({
    turnTimeout: config.server.requestTimeout,
    maxToolSteps: config.tools.maxSteps,
    contextStrategy: config.sessions.contextStrategy
  })
  const sessions = SessionActor.layer({ maxIdleTime: config.sessions.maxIdle })
  const bootstrap = Layer.effectDiscard(
    Authentication.bootstrapAdminKey(config.security.adminKey, options.announceAdminKey ?? printAdminKey)
  )
  const api = HttpApiBuilder.layer(Api, { openapiPath: "/openapi.json" }).pipe(
    Layer.provide(Handlers.layer),
    Layer.provide([Authentication.layer, Edge.layerRequestErrors])
  )
  const routes = Layer.mergeAll(
    api,
    ApiDocs.layer({ path: "/docs" }),
    Edge.layer({ bodyLimit: config.server.bodyLimit })
  )
  const http = Layer.unwrap(
    Effect.map(FastLane.make({ bodyLimit: config.server.bodyLimit }), (createServer) =>
      HttpRouter.serve(routes, { disableLogger: true }).pipe(
        Layer.provideMerge(
          NodeHttpServer.layer(createServer, {
            host: config.server.host,
            port: config.server.port,
            gracefulShutdownTimeout: Duration.toMillis(config.server.shutdownGrace)
          })
        )
      )
    )
  ).pipe(Layer.provide(Authentication.layerKeyCache))
  // Turns a crash interrupted between their tool calls and their answer finish in the background.
  const recovery = Layer.effectDiscard(Effect.forkScoped(SessionActor.resumeUnfinished))
  return Layer.mergeAll(http, bootstrap, recovery).pipe(
    Layer.provide(sessions),
    Layer.provideMerge(Layer.mergeAll(storage, models, cluster, tools, settings))
  )
}
