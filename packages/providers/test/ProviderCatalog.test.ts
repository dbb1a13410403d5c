import { assert, describe, it } from "@effect/vitest"
import { AppConfig, ModelCatalog, ModelHealth } from "@polyagent/runtime"
import { Duration, Effect, Exit, Layer, Option, Redacted, Schedule, Stream } from "effect"
import * as ProviderCatalog from "../src/ProviderCatalog.ts"
import { routes, Scenario } from "../src/testing/openai-wire.ts"
import { fake } from "./support/openai-harness.ts"

/** The catalogue of `config` over a health kept in memory; both in the context. */
const withHealth = (config: AppConfig.AppConfigValue) =>
  ProviderCatalog.layer(config).pipe(Layer.provideMerge(ModelHealth.layerFrom(ModelHealth.settingsOf(config))))

const catalogOf = (overrides: AppConfig.Overrides<AppConfig.AppConfigValue>) =>
  Effect.gen(function* () {
    const config = yield* AppConfig.make(overrides)
    return yield* Effect.provide(Effect.service(ModelCatalog.ModelCatalog), withHealth(config))
  })

const key = (value: string) => ({ apiKey: Option.some(Redacted.make(value)), baseUrl: Option.none<string>() })

const ask = (text: string) => ({ model: "gpt-4o-mini", messages: [{ role: "user", content: text }] })

const compatibleEntry = {
  provider: "openai-compatible",
  baseUrl: "http://127.0.0.1:11434/v1",
  capabilities: { tools: true, vision: false, streaming: true, contextWindow: 131072 },
  costPer1kTokens: { input: 0, output: 0 },
  timeout: Duration.seconds(120)
}

describe("ProviderCatalog", () => {
  it.effect("offers only the offline model when no provider has a key", () =>
    Effect.gen(function* () {
      const catalog = yield* catalogOf({})
      assert.deepStrictEqual(
        catalog.list.map((info) => info.id),
        ["local"]
      )
    })
  )

  it.effect("adds a provider's built-in models, with their dated prices, once its key is set", () =>
    Effect.gen(function* () {
      const catalog = yield* catalogOf({ providers: { openai: key("sk-test"), anthropic: key("sk-ant-test") } })
      const providers = new Set(catalog.list.map((info) => info.provider))
      assert.deepStrictEqual([...providers].sort(), ["anthropic", "local", "openai"])
      const mini = catalog.list.find((info) => info.id === "gpt-4o-mini")
      assert.strictEqual(mini?.provider, "openai")
      assert.isAbove(mini?.cost_per_1k_tokens.output ?? 0, 0)
      assert.match(mini?.price_date ?? "", /^\d{4}-\d{2}-\d{2}$/)
      const model = yield* catalog.resolve("claude-haiku-4-5")
      assert.strictEqual(model.info.provider, "anthropic")
    })
  )

  it.effect("serves an openai-compatible server from a catalogue entry, no key needed", () =>
    Effect.gen(function* () {
      const catalog = yield* catalogOf({ models: { catalog: { "llama3.1:8b": compatibleEntry } } })
      const model = yield* catalog.resolve("llama3.1:8b")
      assert.strictEqual(model.info.provider, "openai-compatible")
      assert.isFalse(model.info.offline)
    })
  )

  it.effect("gives the models of Chat Completions providers a relay, and the others none", () =>
    Effect.gen(function* () {
      const catalog = yield* catalogOf({
        providers: { openai: key("sk-test"), anthropic: key("sk-ant-test"), glm: key("glm-test") },
        models: { catalog: { "llama3.1:8b": compatibleEntry } }
      })
      const relayed = (id: string) => Effect.map(catalog.resolve(id), (model) => model.relay !== undefined)
      assert.isTrue(yield* relayed("gpt-4o-mini"))
      assert.isTrue(yield* relayed("glm-4.7"))
      assert.isTrue(yield* relayed("llama3.1:8b"))
      assert.isFalse(yield* relayed("claude-haiku-4-5"))
      assert.isFalse(yield* relayed("local"))
    })
  )

  it.live("relays a model's calls to its provider, failing with the model's ModelError", () =>
    Effect.gen(function* () {
      const upstream = yield* fake(routes("/v1", { apiKey: "sk-test-relay-0000" }))
      const config = yield* AppConfig.make({
        providers: {
          openai: {
            apiKey: Option.some(Redacted.make("sk-test-relay-0000")),
            baseUrl: Option.some(`${upstream.url}/v1`)
          }
        }
      })
      yield* Effect.gen(function* () {
        const model = yield* (yield* ModelCatalog.ModelCatalog).resolve("gpt-4o-mini")
        const relay = model.relay
        assert.isDefined(relay)
        if (relay === undefined) return
        const answer = yield* relay.complete(ask("hi"), "req-1", ModelCatalog.noMeter)
        assert.include(new TextDecoder().decode(answer), '"model":"gpt-4o-mini"')
        const limited = yield* Effect.flip(relay.complete(ask(`hi ${Scenario.rateLimited}`), "", ModelCatalog.noMeter))
        assert.deepStrictEqual(
          limited,
          new ModelCatalog.ModelError({
            model: "gpt-4o-mini",
            provider: "openai",
            reason: "rate_limited",
            retryable: true,
            retry_after_ms: 7000
          })
        )
        const streamed = yield* Effect.exit(
          Stream.runDrain(relay.stream(ask(`hi ${Scenario.serverError}`), "", ModelCatalog.noMeter))
        )
        assert.deepStrictEqual(
          streamed,
          Exit.fail(
            new ModelCatalog.ModelError({
              model: "gpt-4o-mini",
              provider: "openai",
              reason: "overloaded",
              retryable: true,
              retry_after_ms: null
            })
          )
        )
        assert.strictEqual(upstream.received[0]?.headers["x-request-id"], "req-1")
      }).pipe(Effect.provide(withHealth(config)))
    })
  )

  it.effect("refuses an unknown provider, naming the entry", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        catalogOf({ models: { catalog: { odd: { ...compatibleEntry, provider: "acme" } } } })
      )
      assert.include(error.message, "models.catalog.odd.provider")
      assert.include(error.message, '"acme"')
    })
  )

  it.effect("refuses an openai-compatible model without a base_url", () =>
    Effect.gen(function* () {
      const { baseUrl: _, ...withoutUrl } = compatibleEntry
      const error = yield* Effect.flip(catalogOf({ models: { catalog: { lost: withoutUrl } } }))
      assert.include(error.message, "models.catalog.lost.base_url")
    })
  )

  it.effect("refuses a default model that is not enabled", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(catalogOf({ models: { default: "gpt-4o-mini" } }))
      assert.include(error.message, "models.default")
      assert.include(error.message, "gpt-4o-mini")
    })
  )

  it.live("probes every health_check_interval: an unreachable provider's models become unavailable", () =>
    Effect.gen(function* () {
      const config = yield* AppConfig.make({
        models: { healthCheckInterval: Duration.millis(50) },
        providers: {
          openai: { apiKey: Option.some(Redacted.make("sk-test")), baseUrl: Option.some("http://127.0.0.1:9/v1") }
        }
      })
      yield* Effect.gen(function* () {
        const health = yield* ModelHealth.ModelHealth
        const probed = yield* Effect.sync(() => health.report("gpt-4o-mini")).pipe(
          Effect.repeat({
            until: (report) => report.requests >= 3,
            schedule: Schedule.spaced("20 millis"),
            times: 200
          })
        )
        assert.isAtLeast(probed.requests, 3, "probed again and again")
        assert.strictEqual(probed.status, "unavailable")
        assert.strictEqual(probed.circuit, "closed", "a probe never opens the breaker")
        assert.strictEqual(health.report("gpt-5.4-mini").status, "unavailable", "every model of the provider")
        assert.strictEqual(health.report("local").status, "healthy", "the offline model")
      }).pipe(Effect.provide(withHealth(config)))
    })
  )

  it.effect("ships a built-in list in which every entry is valid", () =>
    Effect.gen(function* () {
      const entries = yield* ProviderCatalog.builtIn
      assert.isAbove(Object.keys(entries).length, 8)
      for (const provider of ["openai", "anthropic", "openrouter", "glm"]) {
        assert.isTrue(
          Object.values(entries).some((entry) => entry.provider === provider),
          `the built-in list has ${provider} models`
        )
      }
    })
  )
})
