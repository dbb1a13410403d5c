/**
 * The model catalogue of a running server: the offline `local` model, plus every model of
 * the built-in list (`config/models.yaml`) and of `models.catalog` whose provider is enabled
 * — OpenAI, Anthropic, OpenRouter and GLM when their key is set, `openai-compatible` models
 * by their `base_url`. Each becomes a `ModelCatalog.Model` the runtime can call, with the
 * Chat Completions relay of its provider when it has one; nothing else of the providers is
 * visible past this module. Every upstream call of every model, by either way, is observed here
 * once (`UpstreamLog.ts`): a failure logged, every outcome recorded in `ModelHealth`. Every
 * provider is probed each `models.health_check_interval`, and each probe feeds each of its
 * models' health. The providers' connections live as long as the layer.
 *
 * A provider's module, and with it its SDK (`openai`, `@anthropic-ai/sdk`, undici), is imported
 * only when the provider is enabled: a server without keys does not load them (~17 MB of heap).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { AppConfig, ModelCatalog, ModelHealth, Usage } from "@polyagent/runtime"
import type * as AiError from "effect/ai/AiError"
import * as LanguageModel from "effect/ai/LanguageModel"
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { parse } from "yaml"
import * as LocalModel from "./local/LocalModel.ts"
import type * as Provider from "./Provider.ts"
import type * as ConnectionPool from "./ConnectionPool.ts"
import * as RedactRequests from "./internal/redactRequests.ts"
import * as UpstreamLog from "./UpstreamLog.ts"

/** A catalogue entry, as `models.catalog` and `config/models.yaml` write it. */
export type Entry = typeof AppConfig.ModelEntry.Type

/** A provider built by the `make` of its module, imported when the first model of the provider is enabled. */
type Make<S> = (settings: S) => Effect.Effect<Provider.Provider, never, Scope.Scope>
const lazy =
  <S>(module: () => Promise<{ readonly make: Make<S> }>): Make<S> =>
  (settings) =>
    Effect.flatMap(Effect.promise(module), ({ make }) => make(settings))

/** The providers that are enabled by a key (`OPENAI_API_KEY`, …), and how each is built. */
const keyed: Record<keyof AppConfig.AppConfigValue["providers"], Make<Provider.Settings>> = {
  openai: lazy(() => import("./openai/OpenAiProvider.ts")),
  anthropic: lazy(() => import("./anthropic/AnthropicProvider.ts")),
  openrouter: lazy(() => import("./openrouter/OpenRouterProvider.ts")),
  glm: lazy(() => import("./glm/GlmProvider.ts"))
}

/** The `openai-compatible` provider: a server named by a model's `base_url`. */
const openAiCompatible = lazy(() => import("./openai-compatible/OpenAiCompatibleProvider.ts"))

const compatible = "openai-compatible"

/** Where the built-in list lives. */
export const builtInPath = fileURLToPath(new URL("../../../config/models.yaml", import.meta.url))

const decodeEntries = Schema.decodeUnknownEffect(Schema.Record(Schema.String, AppConfig.ModelEntry), {
  onExcessProperty: "error"
})

/** The built-in model list; a broken file stops start-up with a message naming it. */
export const builtIn: Effect.Effect<Record<string, Entry>, AppConfig.ConfigError> = Effect.tryPromise({
  try: () => readFile(builtInPath, "utf8"),
  catch: () => new AppConfig.ConfigError({ message: `${builtInPath}: cannot be read` })
}).pipe(
  Effect.flatMap((text) =>
    Effect.try({
      try: (): unknown => parse(text),
      catch: () => new AppConfig.ConfigError({ message: `${builtInPath}: invalid YAML` })
    })
  ),
  Effect.flatMap((document) =>
    decodeEntries(document ?? {}).pipe(
      Effect.mapError((error) => new AppConfig.ConfigError({ message: `${builtInPath}: ${error.message}` }))
    )
  )
)

/** How `GET /v1/models` describes a model of a provider. */
export const infoOf = (id: string, entry: Entry): ModelCatalog.ModelInfo =>
  new ModelCatalog.ModelInfo({
    id,
    provider: entry.provider,
    description: `${entry.model ?? id} on ${entry.provider}`,
    offline: false,
    capabilities: new ModelCatalog.Capabilities({
      tools: entry.capabilities.tools,
      vision: entry.capabilities.vision,
      streaming: entry.capabilities.streaming,
      context_window: entry.capabilities.contextWindow
    }),
    cost_per_1k_tokens: priceOf(entry.costPer1kTokens),
    price_date: entry.priceDate ?? null,
    ...(entry.quality === undefined ? {} : { quality: entry.quality })
  })

/** The prices of a catalogue entry; cached input and reasoning only when the entry prices them. */
export const priceOf = ({ cachedInput, input, output, reasoning }: Entry["costPer1kTokens"]): Usage.Price =>
  new Usage.Price({
    input,
    output,
    ...(cachedInput === undefined ? {} : { cached_input: cachedInput }),
    ...(reasoning === undefined ? {} : { reasoning })
  })

const isKeyed = (name: string): name is keyof typeof keyed => Object.hasOwn(keyed, name)

/**
 * The catalogue for `config`, its calls and probes recorded in the `ModelHealth` of the
 * context. Fails start-up when an entry names an unknown provider, an `openai-compatible` entry
 * has no `base_url`, or `models.default` names no enabled model.
 */
export const layer = (
  config: AppConfig.AppConfigValue
): Layer.Layer<ModelCatalog.ModelCatalog, AppConfig.ConfigError, ModelHealth.ModelHealth> =>
  Layer.effect(
    ModelCatalog.ModelCatalog,
    Effect.gen(function* () {
      const health = yield* ModelHealth.ModelHealth
      const entries: Record<string, Entry> = { ...(yield* builtIn), ...config.models.catalog }
      // One client (and connection pool) per provider, base URL, timeout and pool settings: models
      // with their own timeout, max_connections or http2 get their own.
      const built = new Map<string, Provider.Provider>()
      const providerFor = Effect.fnUntraced(function* (id: string, entry: Entry) {
        const timeout = entry.timeout ?? config.server.requestTimeout
        const shared = isKeyed(entry.provider) ? config.providers[entry.provider] : undefined
        const pool: ConnectionPool.Settings = {
          maxConnections: entry.maxConnections ?? shared?.maxConnections ?? AppConfig.upstreamDefaults.max_connections,
          http2: entry.http2 ?? shared?.http2 ?? AppConfig.upstreamDefaults.http2
        }
        const cacheKey = `${entry.provider} ${entry.baseUrl ?? ""} ${Duration.toMillis(timeout)} ${pool.maxConnections} ${pool.http2}`
        const cached = built.get(cacheKey)
        if (cached !== undefined) return Option.some(cached)
        let provider: Provider.Provider
        if (entry.provider === compatible) {
          if (entry.baseUrl === undefined) {
            return yield* new AppConfig.ConfigError({
              message: `models.catalog.${id}.base_url: an openai-compatible model needs the URL of its server`
            })
          }
          provider = yield* openAiCompatible({ name: compatible, baseUrl: entry.baseUrl, timeout, pool })
        } else if (isKeyed(entry.provider)) {
          const settings = config.providers[entry.provider]
          if (Option.isNone(settings.apiKey)) return Option.none()
          provider = yield* keyed[entry.provider]({
            apiKey: settings.apiKey.value,
            baseUrl: Option.getOrUndefined(settings.baseUrl),
            timeout,
            pool
          })
        } else {
          const known = [...Object.keys(keyed), compatible].join(", ")
          return yield* new AppConfig.ConfigError({
            message: `models.catalog.${id}.provider: unknown provider "${entry.provider}" (known: ${known})`
          })
        }
        built.set(cacheKey, provider)
        return Option.some(provider)
      })

      const models: Array<ModelCatalog.Model> = [
        { info: LocalModel.info, languageModel: yield* LocalModel.make({ chunkDelay: config.models.local.chunkDelay }) }
      ]
      const modelsOfProvider = new Map<Provider.Provider, Array<string>>()
      const disabled: Array<string> = []
      for (const [id, entry] of Object.entries(entries)) {
        const provider = yield* providerFor(id, entry)
        if (Option.isNone(provider)) {
          disabled.push(id)
          continue
        }
        const info = infoOf(id, entry)
        const modelId = entry.model ?? id
        const relay = provider.value.relay
        // With redaction.providers, prompts leave masked whichever way the model is called.
        const masked = config.redaction.providers
        const calls = provider.value.calls(modelId)
        models.push({
          info,
          languageModel: yield* LanguageModel.make(
            UpstreamLog.observeCalls(info, masked ? RedactRequests.redactCalls(calls) : calls, health)
          ),
          relay:
            relay === undefined
              ? undefined
              : relayOf(
                  info,
                  UpstreamLog.observeRelay(
                    info,
                    masked ? RedactRequests.redactRelay(relay(modelId)) : relay(modelId),
                    health
                  )
                )
        })
        modelsOfProvider.set(provider.value, [...(modelsOfProvider.get(provider.value) ?? []), id])
      }
      if (!models.some((model) => model.info.id === config.models.default)) {
        const enabled = models.map((model) => model.info.id).join(", ")
        return yield* new AppConfig.ConfigError({
          message: `models.default: "${config.models.default}" is not an enabled model (enabled: ${enabled})`
        })
      }
      yield* probeInBackground(modelsOfProvider, config.models.healthCheckInterval, health)
      return ModelCatalog.make(models, config.models.default, disabled)
    })
  )

/** `relay` with its failures as the runtime's `ModelError`s of the model `info` (`ModelCatalog.fromAiError`). */
const relayOf = (
  info: ModelCatalog.ModelInfo,
  relay: ModelCatalog.Relay<AiError.AiError>
): ModelCatalog.Relay<ModelCatalog.ModelError> => {
  const toModelError = (error: AiError.AiError) => ModelCatalog.fromAiError(info, error)
  return {
    complete: (body, requestId, meter) => Effect.mapError(relay.complete(body, requestId, meter), toModelError),
    stream: (body, requestId, meter) => Stream.mapError(relay.stream(body, requestId, meter), toModelError)
  }
}

/**
 * Probes every provider of `modelsOfProvider` now and every `interval` for as long as the
 * catalogue lives, recording each probe as a `probe: true` outcome of each of its models. A
 * probe never fails (it reports `ok: false`).
 */
const probeInBackground = Effect.fnUntraced(function* (
  modelsOfProvider: ReadonlyMap<Provider.Provider, ReadonlyArray<string>>,
  interval: Duration.Duration,
  health: ModelHealth.ModelHealth["Service"]
) {
  const probeAll = Effect.forEach(
    modelsOfProvider,
    ([provider, ids]) =>
      Effect.map(provider.probe, (probe) => {
        for (const id of ids) health.record(id, { ok: probe.ok, latencyMs: probe.latencyMs, probe: true })
      }),
    { concurrency: "unbounded", discard: true }
  )
  if (modelsOfProvider.size > 0) yield* Effect.forkScoped(Effect.repeat(probeAll, Schedule.spaced(interval)))
})
