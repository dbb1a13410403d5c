/**
 * The line a server logs once it listens: what it runs on and what it serves, so an operator sees
 * at a glance which storage, cluster role, providers, models, plugins and tools a process has:
 *
 * `PolyAgent started listen=http://127.0.0.1:8080 storage="sqlite ./.polyagent" cluster=single runner=embedded providers=local,openai models=12 default_model=local plugins=./plugins/math tools=calculate`
 *
 * No secret appears: storage shows a PostgreSQL URL as `host:port/database` only.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as ShardingConfig from "effect/cluster/ShardingConfig"
import * as HttpServer from "effect/http/HttpServer"
import type { AppConfig } from "@polyagent/runtime"
import { ModelCatalog } from "@polyagent/runtime"
import { ToolRegistry } from "@polyagent/tools"

/** The process's place in the cluster, as the composition in `Server.ts` knows it. */
export interface Cluster {
  /** e.g. `single` (one process, the default), or the role of a runner among several. */
  readonly role: string
  /** Where other runners reach this one, or `embedded` when there are none. */
  readonly runner: string
}

/** Everything the line says. */
export interface Summary {
  readonly listen: string
  readonly storage: string
  readonly cluster: Cluster
  readonly providers: ReadonlyArray<string>
  readonly models: number
  readonly defaultModel: string
  readonly plugins: ReadonlyArray<string>
  readonly tools: ReadonlyArray<string>
}

/** The storage of `config` as the line shows it: `sqlite <data dir>` or `postgresql <host:port/database>`. */
export const storageOf = (config: AppConfig.AppConfigValue): string =>
  Option.match(config.storage.postgresUrl, {
    onNone: () => `sqlite ${config.storage.dataDir}`,
    onSome: (url) => {
      // Only where it is: no user, password or options.
      const parsed = URL.parse(Redacted.value(url))
      if (parsed === null) return "postgresql"
      return `postgresql ${parsed.hostname}:${parsed.port === "" ? "5432" : parsed.port}${parsed.pathname}`
    }
  })

/** Where the server listens, as a URL: `https://…` when `server.tls` is set. */
export const listenOf = (config: AppConfig.AppConfigValue, address: string): string =>
  config.server.tls === null ? address : address.replace(/^http:/, "https:")

/** Logs `summary` at `info`. */
export const log = (summary: Summary): Effect.Effect<void> =>
  Effect.annotateLogs(Effect.logInfo("PolyAgent started"), {
    listen: summary.listen,
    storage: summary.storage,
    cluster: summary.cluster.role,
    runner: summary.cluster.runner,
    providers: summary.providers,
    models: summary.models,
    default_model: summary.defaultModel,
    plugins: summary.plugins,
    tools: summary.tools
  })

/**
 * The process's place in the cluster: `single` on the embedded database, else a `runner`
 * reached at the address it advertises.
 */
export const clusterOf = (config: AppConfig.AppConfigValue, sharding: ShardingConfig.ShardingConfig["Service"]) =>
  Option.isNone(config.storage.postgresUrl) || Option.isNone(sharding.runnerAddress)
    ? { role: "single", runner: "embedded" }
    : { role: "runner", runner: `${sharding.runnerAddress.value.host}:${sharding.runnerAddress.value.port}` }

/**
 * Logs the summary of the server being built: its address (so it runs once the server listens),
 * its catalogue and its tools, with the storage of `config` and its place in the cluster.
 */
export const layer = (
  config: AppConfig.AppConfigValue
): Layer.Layer<
  never,
  never,
  HttpServer.HttpServer | ModelCatalog.ModelCatalog | ToolRegistry.ToolRegistry | ShardingConfig.ShardingConfig
> =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const cluster = clusterOf(config, yield* ShardingConfig.ShardingConfig)
      const server = yield* HttpServer.HttpServer
      const catalog = yield* ModelCatalog.ModelCatalog
      const registry = yield* ToolRegistry.ToolRegistry
      yield* log({
        listen: listenOf(config, HttpServer.formatAddress(server.address)),
        storage: storageOf(config),
        cluster,
        providers: [...new Set(catalog.list.map((model) => model.provider))],
        models: catalog.list.length,
        defaultModel: config.models.default,
        plugins: config.plugins,
        tools: registry.tools.map((registered) => registered.tool.name)
      })
    })
  )
