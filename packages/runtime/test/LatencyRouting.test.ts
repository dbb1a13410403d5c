/**
 * The `latency` strategy of `ModelRouter` over the real `ModelHealth`: when one of two equal
 * models slows from 20 ms to 500 ms, at least 80% of the next 20 requests go to the other, and
 * traffic comes back (80% again) within 40 requests once it recovers. Latencies are recorded as the catalogue records them.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { LanguageModel } from "effect/ai"
import * as AppConfig from "../src/AppConfig.ts"
import * as Budgets from "../src/Budgets.ts"
import * as Experiments from "../src/Experiments.ts"
import * as ModelCatalog from "../src/ModelCatalog.ts"
import * as ModelHealth from "../src/ModelHealth.ts"
import * as ModelRouter from "../src/ModelRouter.ts"
import * as TenantProviderKeys from "../src/TenantProviderKeys.ts"
import * as RetryBudget from "../src/RetryBudget.ts"
import * as Usage from "../src/Usage.ts"

const modelOf = (id: string): Effect.Effect<ModelCatalog.Model> =>
  Effect.map(
    LanguageModel.make({ generateText: () => Effect.succeed([]), streamText: () => Stream.empty }),
    (languageModel) => ({
      info: new ModelCatalog.ModelInfo({
        id,
        provider: "fake",
        description: id,
        offline: false,
        capabilities: new ModelCatalog.Capabilities({
          tools: true,
          vision: false,
          streaming: true,
          context_window: 1e5
        }),
        cost_per_1k_tokens: new Usage.Price({ input: 0.001, output: 0.002 }),
        price_date: null
      }),
      languageModel
    })
  )

const needs: ModelRouter.Needs = { tools: false, vision: false, promptTokens: 10, reserveTokens: 0 }

describe("latency routing over ModelHealth", () => {
  it.effect("moves at least 80% away from a model that slowed within 20 requests, and back after it recovers", () =>
    Effect.gen(function* () {
      const config = yield* AppConfig.make()
      const health = yield* ModelHealth.make(ModelHealth.settingsOf(config))
      const models = [yield* modelOf("a"), yield* modelOf("b")]
      const router = yield* ModelRouter.make({
        routing: { ...ModelRouter.noRouting, routes: { r: { strategy: "latency", candidates: ["a", "b"] } } },
        retry: ModelRouter.defaultRetry
      }).pipe(
        Effect.provide([
          ModelCatalog.layer(models, "a"),
          Layer.succeed(ModelHealth.ModelHealth, health),
          RetryBudget.layerMemory,
          Budgets.Budgets.layerMemory,
          Experiments.Experiments.layerMemory,
          TenantProviderKeys.layerNone
        ])
      )
      const truth: Record<string, number> = { a: 20, b: 21 }
      const send = Effect.gen(function* () {
        const plan = yield* router.plan({ model: "r", needs, text: () => "hi", stickyKey: "s", tenant: "t" })
        const picked = plan.candidates[0]?.info.id ?? "none"
        health.record(picked, { ok: true, latencyMs: truth[picked] ?? 0 })
        return picked
      })
      const run = (requests: number) => Effect.forEach(Array.from({ length: requests }), () => send)
      yield* run(10)
      truth["a"] = 500
      const slowed = yield* run(20)
      assert.isAtLeast(slowed.filter((id) => id === "b").length, 16, slowed.join(","))
      truth["a"] = 20
      // The router tries the runner-up now and then; two fast calls bring its estimate down.
      const recovering = yield* run(40)
      const back = recovering.slice(-20)
      assert.isAtLeast(back.filter((id) => id === "a").length, 16, `traffic came back: ${recovering.join(",")}`)
    })
  )
})
