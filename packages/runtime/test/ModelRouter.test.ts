import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Layer, Option, Stream } from "effect"
import { AiError, LanguageModel, type Response } from "effect/ai"
import { TestClock } from "effect/testing"
import * as AppConfig from "../src/AppConfig.ts"
import * as Budgets from "../src/Budgets.ts"
import * as Experiments from "../src/Experiments.ts"
import * as ModelCatalog from "../src/ModelCatalog.ts"
import * as ModelHealth from "../src/ModelHealth.ts"
import * as ModelRouter from "../src/ModelRouter.ts"
import * as TenantProviderKeys from "../src/TenantProviderKeys.ts"
import * as RetryBudget from "../src/RetryBudget.ts"
import * as ToolLoop from "../src/ToolLoop.ts"
import * as Usage from "../src/Usage.ts"

const capabilities = (tools: boolean, contextWindow = 100_000) =>
  new ModelCatalog.Capabilities({ tools, vision: false, streaming: true, context_window: contextWindow })

const infoOf = (id: string, price: number, tools = true, contextWindow = 100_000) =>
  new ModelCatalog.ModelInfo({
    id,
    provider: "fake",
    description: id,
    offline: false,
    capabilities: capabilities(tools, contextWindow),
    cost_per_1k_tokens: new Usage.Price({ input: price, output: price * 2 }),
    price_date: null
  })

/** A model whose calls answer `text` (or fail as `failure` says), counting its calls. */
const fakeModel = (
  info: ModelCatalog.ModelInfo,
  behave: (call: number) => "ok" | AiError.AiError = () => "ok"
): ModelCatalog.Model & { readonly calls: () => number } => {
  let calls = 0
  const languageModel = Effect.runSync(
    LanguageModel.make({
      generateText: () =>
        Effect.suspend(() => {
          const outcome = behave(++calls)
          if (outcome !== "ok") return Effect.fail(outcome)
          return Effect.succeed<Array<Response.PartEncoded>>([{ type: "text", text: `from ${info.id}` }])
        }),
      streamText: () => Stream.empty
    })
  )
  return { info, languageModel, calls: () => calls }
}

const rateLimited = (retryAfter?: Duration.Duration) =>
  AiError.make({
    module: "test",
    method: "call",
    reason: new AiError.RateLimitError(retryAfter === undefined ? {} : { retryAfter })
  })
const badRequest = AiError.make({
  module: "test",
  method: "call",
  reason: new AiError.InvalidRequestError({ description: "no" })
})

const noNeeds: ModelRouter.Needs = { tools: false, vision: false, promptTokens: 10, reserveTokens: 0 }

/** Health whose latencies and open breakers a test sets. */
const fakeHealth = (latency: Record<string, number> = {}, open: ReadonlyArray<string> = []) =>
  Layer.succeed(ModelHealth.ModelHealth, {
    admit: (id) => !open.includes(id),
    record: () => {},
    circuit: (id) => (open.includes(id) ? "open" : "closed"),
    latencyMs: (id) => latency[id],
    weight: () => 1,
    report: (id) =>
      new ModelHealth.HealthReport({
        id,
        status: open.includes(id) ? "unavailable" : "healthy",
        circuit: open.includes(id) ? "open" : "closed",
        success_rate: null,
        requests: 0,
        latency_ms: { p50: null, p95: null },
        ttft_ms: { p50: null, p95: null },
        window_s: 60
      }),
    sharedStateErrors: () => 0
  })

const routing = (overrides: Partial<AppConfig.AppConfigValue["routing"]> = {}) => ({
  ...ModelRouter.noRouting,
  ...overrides
})

const routerLayer = (
  models: ReadonlyArray<ModelCatalog.Model>,
  options: {
    readonly routing?: AppConfig.AppConfigValue["routing"]
    readonly health?: Layer.Layer<ModelHealth.ModelHealth>
    readonly retryBudget?: Layer.Layer<RetryBudget.RetryBudget>
    readonly maxAttempts?: number
  } = {}
) =>
  Layer.effect(
    ModelRouter.ModelRouter,
    ModelRouter.make({
      routing: options.routing ?? routing(),
      retry: { ...ModelRouter.defaultRetry, maxAttempts: options.maxAttempts ?? 3 }
    })
  ).pipe(
    Layer.provide([
      ModelCatalog.layer(models, models[0]?.info.id ?? "none"),
      options.health ?? fakeHealth(),
      options.retryBudget ?? RetryBudget.layerMemory,
      Budgets.Budgets.layerMemory,
      Experiments.Experiments.layerMemory,
      TenantProviderKeys.layerNone
    ])
  )

const caller: ModelRouter.Caller = { payer: { tenant: "t", keyId: null }, requestId: "req", sessionId: null }

/** Plans and runs one non-streamed call of `model`; answers the text and the model that gave it. */
const ask = (model: string | undefined, needs: ModelRouter.Needs = noNeeds) =>
  Effect.gen(function* () {
    const router = yield* ModelRouter.ModelRouter
    const plan = yield* router.plan({ model, needs, text: () => "hello", stickyKey: "s", tenant: "t" })
    return yield* router.run(caller, plan, (turn) =>
      router.call(
        turn,
        plan,
        (m) =>
          Effect.mapError(m.languageModel.generateText({ prompt: "hi" }), (e) => ModelCatalog.fromAiError(m.info, e)),
        () => Usage.make(10, 5)
      )
    )
  })

const candidatesOf = (model: string, needs: ModelRouter.Needs = noNeeds) =>
  Effect.flatMap(ModelRouter.ModelRouter, (router) =>
    Effect.map(router.plan({ model, needs, text: () => "", stickyKey: "s", tenant: "t" }), (plan) =>
      plan.candidates.map((m) => m.info.id)
    )
  )

const route = (strategy: typeof AppConfig.RouteStrategy.Type) =>
  routing({ routes: { r: { strategy, candidates: ["dear", "mid", "cheap"] } } })

describe("ModelRouter", () => {
  const cheap = fakeModel(infoOf("cheap", 0.001, false))
  const mid = fakeModel(infoOf("mid", 0.002))
  const dear = fakeModel(infoOf("dear", 0.01))

  it.effect("cost picks the cheapest capable model, latency the fastest healthy one, for the same request", () =>
    Effect.gen(function* () {
      const byCost = yield* candidatesOf("r").pipe(
        Effect.provide(routerLayer([dear, mid, cheap], { routing: route("cost") }))
      )
      assert.deepStrictEqual(byCost, ["cheap", "mid", "dear"])
      const health = fakeHealth({ dear: 20, mid: 300, cheap: 50 })
      const byLatency = yield* candidatesOf("r").pipe(
        Effect.provide(routerLayer([dear, mid, cheap], { routing: route("latency"), health }))
      )
      assert.deepStrictEqual(byLatency, ["dear", "cheap", "mid"])
      // An open breaker sends the fastest model to the back.
      const broken = fakeHealth({ dear: 20, mid: 300, cheap: 50 }, ["dear"])
      const withOpen = yield* candidatesOf("r").pipe(
        Effect.provide(routerLayer([dear, mid, cheap], { routing: route("latency"), health: broken }))
      )
      assert.deepStrictEqual(withOpen, ["cheap", "mid", "dear"])
    })
  )

  it.effect("a model without tools is never planned for a tool turn; none capable is NoCapableModel", () =>
    Effect.gen(function* () {
      const tools = { ...noNeeds, tools: true }
      const layer = routerLayer([dear, mid, cheap], { routing: route("cost") })
      assert.deepStrictEqual(yield* candidatesOf("r", tools).pipe(Effect.provide(layer)), ["mid", "dear"])
      const refused = yield* Effect.flip(candidatesOf("cheap", tools).pipe(Effect.provide(layer)))
      assert.strictEqual(refused._tag, "NoCapableModel")
      assert.include(refused.message, "tool calling")
      const unknown = yield* Effect.flip(candidatesOf("nope").pipe(Effect.provide(layer)))
      assert.strictEqual(unknown._tag, "ModelNotFound")
    })
  )

  it.effect("a window too small for the conversation is left out while another holds it", () =>
    Effect.gen(function* () {
      const small = fakeModel(infoOf("small", 0.0001, true, 1_000))
      const layer = routerLayer([small, mid], {
        routing: routing({ routes: { r: { strategy: "cost", candidates: ["small", "mid"] } } })
      })
      const long = { ...noNeeds, promptTokens: 5_000 }
      assert.deepStrictEqual(yield* candidatesOf("r", long).pipe(Effect.provide(layer)), ["mid"])
      assert.deepStrictEqual(yield* candidatesOf("r").pipe(Effect.provide(layer)), ["small", "mid"])
    })
  )

  it.effect("fallbacks follow their model; weighted splits by weight", () =>
    Effect.gen(function* () {
      const layer = routerLayer([dear, mid, cheap], {
        routing: routing({
          fallbacks: { dear: ["cheap", "mid"] },
          routes: { w: { strategy: "weighted", candidates: { mid: 3, dear: 1 } } }
        })
      })
      assert.deepStrictEqual(yield* candidatesOf("dear").pipe(Effect.provide(layer)), ["dear", "cheap", "mid"])
      const firsts = yield* Effect.forEach(Array.from({ length: 400 }), () =>
        Effect.map(candidatesOf("w"), (ids) => ids[0])
      ).pipe(Effect.provide(layer))
      const share = firsts.filter((id) => id === "mid").length / firsts.length
      assert.isTrue(share > 0.65 && share < 0.85, `mid first in ${share} of plans`)
    })
  )

  it.effect("a 70/30 experiment over 10,000 sessions lands within ±2%, and each session keeps its arm", () =>
    Effect.gen(function* () {
      const layer = routerLayer([dear, mid], {
        routing: routing({ experiments: { exp: { arms: { dear: 70, mid: 30 } } } })
      })
      const router = yield* Effect.provide(Effect.service(ModelRouter.ModelRouter), layer)
      const arms = yield* Effect.forEach(
        Array.from({ length: 10_000 }, (_, i) => `sess_${i}`),
        (stickyKey) =>
          Effect.map(
            router.plan({ model: "exp", needs: noNeeds, text: () => "", stickyKey, tenant: "t" }),
            (plan) => plan.experiment?.arm
          )
      )
      const share = arms.filter((arm) => arm === "dear").length / arms.length
      assert.isTrue(Math.abs(share - 0.7) <= 0.02, `dear in ${share} of sessions`)
      const again = yield* router.plan({
        model: "exp",
        needs: noNeeds,
        text: () => "",
        stickyKey: "sess_42",
        tenant: "t"
      })
      assert.strictEqual(again.experiment?.arm, arms[42])
      assert.strictEqual(again.candidates[0].info.id, arms[42])
    })
  )

  it.effect("a tenant's policy keeps it to its models: others are left out of plans, or refused", () =>
    Effect.gen(function* () {
      const layer = routerLayer([dear, mid, cheap], {
        routing: routing({ ...route("cost"), tenants: { acme: { models: ["dear", "mid"] } } })
      })
      const plan = (model: string, tenant: string) =>
        Effect.flatMap(ModelRouter.ModelRouter, (router) =>
          router.plan({ model, needs: noNeeds, text: () => "", stickyKey: "s", tenant })
        ).pipe(Effect.provide(layer))
      assert.deepStrictEqual(
        (yield* plan("r", "acme")).candidates.map((m) => m.info.id),
        ["mid", "dear"]
      )
      assert.deepStrictEqual(
        (yield* plan("r", "other")).candidates.map((m) => m.info.id),
        ["cheap", "mid", "dear"]
      )
      const refused = yield* Effect.flip(plan("cheap", "acme"))
      assert.strictEqual(refused._tag, "ModelNotAllowed")
    })
  )

  it.effect("an API key's models: the names it may ask for, and the models those stand for (no other fallback)", () =>
    Effect.gen(function* () {
      const layer = routerLayer([dear, mid, cheap], {
        routing: routing({ ...route("cost"), fallbacks: { dear: ["cheap"] } })
      })
      const plan = (model: string, allowed: ReadonlyArray<string> | null) =>
        Effect.flatMap(ModelRouter.ModelRouter, (router) =>
          router.plan({ model, needs: noNeeds, text: () => "", stickyKey: "s", tenant: "t", allowed })
        ).pipe(Effect.provide(layer))
      // A listed route: its candidates answer.
      assert.deepStrictEqual(
        (yield* plan("r", ["r"])).candidates.map((m) => m.info.id),
        ["cheap", "mid", "dear"]
      )
      // A listed model: it answers, its fallback to an unlisted model does not.
      assert.deepStrictEqual(
        (yield* plan("dear", ["dear"])).candidates.map((m) => m.info.id),
        ["dear"]
      )
      assert.deepStrictEqual(
        (yield* plan("dear", null)).candidates.map((m) => m.info.id),
        ["dear", "cheap"]
      )
      // An unlisted name, even one that does not exist, is refused before anything else.
      for (const name of ["cheap", "r", "ghost"]) {
        const refused = yield* Effect.flip(plan(name, ["dear"]))
        assert.strictEqual(refused._tag, "ModelNotAllowed")
        assert.include(refused.message, "not allowed for this API key")
      }
    })
  )

  it.effect("a configuration naming an unknown model or a route with a model's name stops start-up", () =>
    Effect.gen(function* () {
      const unknown = yield* Effect.flip(
        candidatesOf("r").pipe(
          Effect.provide(
            routerLayer([dear], { routing: routing({ routes: { r: { strategy: "cost", candidates: ["ghost"] } } }) })
          )
        )
      )
      assert.strictEqual(unknown._tag, "ConfigError")
      assert.include(unknown.message, 'routing.routes.r.candidates: unknown model "ghost"')
      const clash = yield* Effect.flip(
        candidatesOf("dear").pipe(
          Effect.provide(
            routerLayer([dear], { routing: routing({ routes: { dear: { strategy: "cost", candidates: ["dear"] } } }) })
          )
        )
      )
      assert.include(clash.message, "routing.routes.dear: a route or experiment cannot take the name of a model")
    })
  )

  it.effect("a rate-limited model fails over to the next at once; a bad request is not retried", () =>
    Effect.gen(function* () {
      const first = fakeModel(infoOf("first", 0.001), () => rateLimited())
      const second = fakeModel(infoOf("second", 0.001))
      const layer = routerLayer([first, second], { routing: routing({ fallbacks: { first: ["second"] } }) })
      const answered = yield* ask("first").pipe(Effect.provide(layer))
      assert.strictEqual(answered.model.info.id, "second")
      assert.strictEqual(first.calls(), 1)

      const refused = fakeModel(infoOf("refused", 0.001), () => badRequest)
      const spare = fakeModel(infoOf("spare", 0.001))
      const failed = yield* Effect.flip(
        ask("refused").pipe(
          Effect.provide(routerLayer([refused, spare], { routing: routing({ fallbacks: { refused: ["spare"] } }) }))
        )
      )
      assert.strictEqual(failed._tag, "ModelError")
      assert.strictEqual(refused.calls(), 1)
      assert.strictEqual(spare.calls(), 0)
    })
  )

  it.effect("the last candidate is retried after the provider's Retry-After, then answers", () =>
    Effect.gen(function* () {
      const flaky = fakeModel(infoOf("flaky", 0.001), (call) => (call < 3 ? rateLimited(Duration.seconds(2)) : "ok"))
      const fiber = yield* Effect.forkChild(ask("flaky").pipe(Effect.provide(routerLayer([flaky]))))
      yield* TestClock.adjust(Duration.millis(1_999))
      assert.strictEqual(flaky.calls(), 1)
      yield* TestClock.adjust(Duration.millis(1))
      assert.strictEqual(flaky.calls(), 2)
      yield* TestClock.adjust(Duration.seconds(2))
      const answered = yield* Fiber.join(fiber)
      assert.strictEqual(answered.model.info.id, "flaky")
      assert.strictEqual(flaky.calls(), 3)
    })
  )

  it.effect("every candidate with an open breaker: circuit_open, without calling any", () =>
    Effect.gen(function* () {
      const a = fakeModel(infoOf("a", 0.001))
      const b = fakeModel(infoOf("b", 0.001))
      const layer = routerLayer([a, b], {
        routing: routing({ fallbacks: { a: ["b"] } }),
        health: fakeHealth({}, ["a", "b"])
      })
      const failed = yield* Effect.flip(ask("a").pipe(Effect.provide(layer)))
      assert.strictEqual(failed._tag === "ModelError" ? failed.reason : failed._tag, "circuit_open")
      assert.strictEqual(a.calls() + b.calls(), 0)
    })
  )

  it.effect("retries stop when the retry budget says so", () =>
    Effect.gen(function* () {
      const down = fakeModel(infoOf("down", 0.001), () => rateLimited(Duration.millis(10)))
      let granted = 0
      const stingy = Layer.succeed(RetryBudget.RetryBudget, { request: () => {}, acquire: () => granted++ < 1 })
      const fiber = yield* Effect.forkChild(
        Effect.exit(ask("down").pipe(Effect.provide(routerLayer([down], { retryBudget: stingy, maxAttempts: 5 }))))
      )
      yield* TestClock.adjust(Duration.seconds(1))
      const exit = yield* Fiber.join(fiber)
      assert.isTrue(Exit.isFailure(exit))
      // Five attempts were allowed, the budget granted one retry.
      assert.strictEqual(down.calls(), 2)
    })
  )

  it.effect("a stream dropped after 5 chunks finishes on the next model: one answer, a failover, both models", () =>
    Effect.gen(function* () {
      const prompts: Array<string> = []
      const streaming = (id: string, words: ReadonlyArray<string>, breakAfter?: number) => {
        const languageModel = Effect.runSync(
          LanguageModel.make({
            generateText: () => Effect.die("not streamed"),
            streamText: (options) => {
              prompts.push(`${id}: ${JSON.stringify(options.prompt.content.at(-2) ?? null)}`)
              const parts: Array<Response.StreamPartEncoded> = [
                { type: "text-start", id: "t" },
                ...words.map((delta): Response.StreamPartEncoded => ({ type: "text-delta", id: "t", delta }))
              ]
              const sent = Stream.fromIterable(breakAfter === undefined ? parts : parts.slice(0, breakAfter + 1))
              return breakAfter === undefined
                ? Stream.concat(
                    sent,
                    Stream.make<Array<Response.StreamPartEncoded>>({
                      type: "finish",
                      reason: "stop",
                      usage: {
                        inputTokens: { uncached: 20, total: 20, cacheRead: 0, cacheWrite: 0 },
                        outputTokens: { total: words.length, text: words.length, reasoning: 0 }
                      }
                    })
                  )
                : Stream.concat(
                    sent,
                    Stream.fail(
                      AiError.make({
                        module: "t",
                        method: "s",
                        reason: new AiError.NetworkError({
                          reason: "TransportError",
                          method: "POST",
                          url: "http://fake"
                        })
                      })
                    )
                  )
            }
          })
        )
        return { info: infoOf(id, 0.001), languageModel }
      }
      const first = streaming("first", ["one ", "two ", "three ", "four ", "five ", "six "], 5)
      const second = streaming("second", ["six ", "seven."])
      const layer = routerLayer([first, second], { routing: routing({ fallbacks: { first: ["second"] } }) })
      const events: Array<string> = []
      const outcome = yield* Effect.gen(function* () {
        const router = yield* ModelRouter.ModelRouter
        const plan = yield* router.plan({
          model: "first",
          needs: noNeeds,
          text: () => "count",
          stickyKey: "s",
          tenant: "t"
        })
        return yield* router.run(caller, plan, (turn) =>
          Effect.map(
            ToolLoop.run({
              router,
              plan,
              turn,
              prompt: [{ role: "user", content: "count to seven" }],
              toolkit: undefined,
              callOptions: {},
              requestId: "req",
              maxSteps: 1,
              executor: Option.none(),
              hooks: {
                asked: () => Effect.void,
                answered: () => Effect.void,
                delta: (content) => Effect.sync(() => events.push(content)),
                failover: (from, to) => Effect.sync(() => events.push(`[${from} -> ${to}]`))
              }
            }),
            (outcome) => ({ ...outcome, models: [...turn.models], charges: turn.charges.length })
          )
        )
      }).pipe(Effect.provide(layer))
      assert.strictEqual(outcome.text, "one two three four five six seven.")
      assert.deepStrictEqual(events, [
        "one ",
        "two ",
        "three ",
        "four ",
        "five ",
        "[first -> second]",
        "six ",
        "seven."
      ])
      assert.deepStrictEqual(outcome.models, ["first", "second"])
      assert.strictEqual(outcome.model.info.id, "second")
      // Both models are charged: the broken stream for what it sent.
      assert.strictEqual(outcome.charges, 2)
      assert.isTrue(outcome.usage.completion_tokens > 2)
      // The second model was given the text so far, as the assistant's, to continue.
      assert.include(prompts[1] ?? "", "one two three four five")
    })
  )
})
