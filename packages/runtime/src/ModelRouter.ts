/**
 * The one way a model is called. Every route that needs a model (`/v1/chat` and its stream
 * through the session actor, `/v1/chat/completions` converted or relayed, `agent:<id>`, the fast
 * lane) asks the router: first for a {@link Plan} — the capable candidates for the request, best
 * first — then to run the request within the payer's budget ({@link ModelRouter.run}), calling
 * the plan with breakers, retries and failover ({@link ModelRouter.call},
 * {@link ModelRouter.stream}). Routing, budgets, cost accounting and experiment outcomes happen
 * here once.
 *
 * A request's `model` may name a model, a route of `routing.routes` (ordered by its strategy), an
 * experiment of `routing.experiments` (an arm chosen per session, the same in every process), or
 * `auto` (the task type detected from the text chooses through `routing.auto`). Each candidate's
 * `routing.fallbacks` follow it. A candidate that lacks what the request needs (tools, vision, a
 * window that holds the conversation) is never in a plan.
 */
import type { NonEmptyReadonlyArray } from "effect/Array"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { AppConfig, ConfigError } from "./AppConfig.ts"
import * as Budgets from "./Budgets.ts"
import * as Experiments from "./Experiments.ts"
import * as Failover from "./internal/failover.ts"
import * as RoutingTable from "./internal/routingTable.ts"
import { order } from "./internal/strategies.ts"
import { type Model, ModelCatalog, type ModelError, ModelNotFound } from "./ModelCatalog.ts"
import * as ModelHealth from "./ModelHealth.ts"
import * as RetryBudget from "./RetryBudget.ts"
import type { StorageError } from "./Storage.ts"
import * as TaskType from "./TaskType.ts"
import * as TenantProviderKeys from "./TenantProviderKeys.ts"
import * as Usage from "./Usage.ts"

/** What a request needs of a model. */
export interface Needs {
  /** The model is offered tools. */
  readonly tools: boolean
  /** The prompt has images. */
  readonly vision: boolean
  /** The conversation's tokens, and the room kept for the answer: a model's window must hold both. */
  readonly promptTokens: number
  readonly reserveTokens: number
}

/** A request to route. */
export interface RouteRequest {
  /** What the request's `model` names; absent: `preferred`, else `models.default`. */
  readonly model: string | undefined
  /** The agent's model, when the request runs an agent. */
  readonly preferred?: string | null | undefined
  readonly needs: Needs
  /** The user's text, for `auto`'s task type: asked only when the request is routed by it. */
  readonly text: () => string
  /** Who the request is for (a session id): an experiment gives the same key the same arm. */
  readonly stickyKey: string
  /** The tenant whose policy (`routing.tenants`) applies. */
  readonly tenant: string
  /**
   * The names the caller's API key may ask for (its `models`); absent or null: any. The models a
   * listed name stands for (a route's candidates, an experiment's arms, what `auto` chose) may
   * answer; other models — fallbacks included — may not.
   */
  readonly allowed?: ReadonlyArray<string> | null | undefined
}

/** The models a request may be answered by, best first, and why. */
export interface Plan {
  /** The name the request asked for (after the agent's preference and the default). */
  readonly requested: string
  readonly candidates: NonEmptyReadonlyArray<Model>
  readonly needs: Needs
  /** The task type `auto` detected; null for other requests. */
  readonly taskType: TaskType.TaskType | null
  /** The experiment and arm the request took part in. */
  readonly experiment: { readonly id: string; readonly arm: string } | null
}

/** No model the request's name stands for can take it. */
export class NoCapableModel extends Schema.TaggedError<NoCapableModel>()("NoCapableModel", {
  model: Schema.String,
  missing: Schema.String
}) {
  override get message(): string {
    return `no model of ${this.model} can take this request: it needs ${this.missing}`
  }
}

/**
 * The tenant's policy (`routing.tenants`), or the caller's API key (its `models`), allows none of
 * the models the request's name stands for.
 */
export class ModelNotAllowed extends Schema.TaggedError<ModelNotAllowed>()("ModelNotAllowed", {
  model: Schema.String,
  /** Whose list refused it; absent: the tenant's. */
  by: Schema.optionalKey(Schema.Literals(["tenant", "key"]))
}) {
  override get message(): string {
    return `model ${this.model} is not allowed for this ${this.by === "key" ? "API key" : "tenant"}`
  }
}

/** Who a request is for. */
export interface Caller {
  readonly payer: Budgets.Payer
  readonly requestId: string
  readonly sessionId: string | null
  /** The names the caller's API key may ask for ({@link RouteRequest.allowed}); absent or null: any. */
  readonly models?: ReadonlyArray<string> | null | undefined
}

/** A request being run: where its calls report their cost, and what they reported. */
export interface Turn extends Failover.Meter {
  /** The models that answered (part of) the request, in order. */
  readonly models: ReadonlyArray<string>
  readonly charges: ReadonlyArray<Budgets.Charge>
  /** The sum of the charges. */
  readonly costUsd: () => number
}

export { type Answered, continuationInstruction, Failover, type StreamParts } from "./internal/failover.ts"

/**
 * The router.
 *
 * When to use: for every model call. Plan once per request, run the request once, and make each
 * model call (each step of a tool loop) through `call` or `stream` inside it.
 *
 * Details: `run` reserves the request's estimated cost against the payer's budgets (failing with
 * `BudgetExceeded` when they are spent) and settles it with what the calls charged, whichever way
 * the request ends; it records the experiment's outcome. `call` and `stream` skip candidates whose
 * breaker is open, fail over on retryable errors, retry the last candidate with backoff within the
 * retry budget; `stream` continues a broken answer on the next candidate (a `Failover` part says so).
 *
 * Gotchas: the candidates' health is read when a call is made, not when the plan is made, so a
 * long tool loop skips a model whose breaker opened in the meantime. A model error is the last
 * candidate's; `circuit_open` means no candidate could be called at all.
 */
export class ModelRouter extends Context.Service<
  ModelRouter,
  {
    readonly plan: (request: RouteRequest) => Effect.Effect<Plan, ModelNotFound | NoCapableModel | ModelNotAllowed>
    /** Whether a request's `model` may name `name`: an enabled model, a route, an experiment or `auto`. */
    readonly knows: (name: string) => boolean
    readonly run: <A, E, R>(
      caller: Caller,
      plan: Plan,
      use: (turn: Turn) => Effect.Effect<A, E, R>,
      maxOutputTokens?: number | undefined
    ) => Effect.Effect<A, E | Budgets.BudgetExceeded | StorageError, R>
    readonly runStream: <A, E, R>(
      caller: Caller,
      plan: Plan,
      use: (turn: Turn) => Stream.Stream<A, E, R>,
      maxOutputTokens?: number | undefined
    ) => Stream.Stream<A, E | Budgets.BudgetExceeded | StorageError, R>
    readonly call: <A>(
      turn: Turn,
      plan: Plan,
      attempt: (model: Model) => Effect.Effect<A, ModelError>,
      usageOf: (value: A) => Usage.Usage
    ) => Effect.Effect<Failover.Answered<A>, ModelError>
    readonly stream: <A>(
      turn: Turn,
      plan: Plan,
      parts: Failover.StreamParts<A>
    ) => Stream.Stream<A | Failover.Failover, ModelError>
  }
>()("@polyagent/runtime/ModelRouter") {}

/** What {@link make} is built from. */
export interface Options {
  readonly routing: AppConfig["Service"]["routing"]
  /** The model of requests that name none; the catalogue's default when absent. */
  readonly defaultModel?: string | undefined
  readonly retry: Failover.RetrySettings
}

/** Names that are left for the capable candidates once those lacking what `needs` asks for are gone. */
const capable = (models: ReadonlyArray<Model>, needs: Needs): Result.Result<Array<Model>, string> => {
  const withTools = needs.tools ? models.filter((m) => m.info.capabilities.tools) : [...models]
  if (withTools.length === 0) return Result.fail("tool calling")
  const withVision = needs.vision ? withTools.filter((m) => m.info.capabilities.vision) : withTools
  if (withVision.length === 0) return Result.fail("image input")
  // A window too small for the conversation is left out while another holds it; when none does,
  // the conversation is shortened to fit (see ContextWindow).
  const room = needs.promptTokens + needs.reserveTokens
  const fitting = withVision.filter((m) => m.info.capabilities.context_window >= room)
  return Result.succeed(fitting.length > 0 ? fitting : withVision)
}

/** The most the plan's request may cost: its dearest candidate's estimate. */
const estimateOf = (plan: Plan, maxOutputTokens: number | undefined) =>
  Math.max(...plan.candidates.map((model) => Budgets.estimate(model.info, plan.needs.promptTokens, maxOutputTokens)))

/** The router over `catalog`; fails with the `routing` key that names something that does not exist. */
export const make = Effect.fnUntraced(function* (options: Options) {
  const catalog = yield* ModelCatalog
  const health = yield* ModelHealth.ModelHealth
  const retryBudget = yield* RetryBudget.RetryBudget
  const budgets = yield* Budgets.Budgets
  const experiments = yield* Experiments.Experiments
  const tenantKeys = yield* TenantProviderKeys.TenantProviderKeys
  const defaultModel = options.defaultModel ?? (yield* Effect.orDie(catalog.resolve(undefined))).info.id
  const built = RoutingTable.make(options.routing, catalog, defaultModel)
  if (Result.isFailure(built)) return yield* built.failure
  const { table, warnings } = built.success
  for (const warning of warnings) yield* Effect.logWarning(warning)
  const classifier =
    options.routing.classifier.model === null ? undefined : catalog.find(options.routing.classifier.model)
  if (options.routing.classifier.model !== null && classifier === undefined) {
    return yield* new ConfigError({
      message: `routing.classifier.model: "${options.routing.classifier.model}" is not an enabled model`
    })
  }
  const deps: Failover.Deps = { health, retryBudget, retry: options.retry }
  // Experiment outcomes are written in the background, in the router's scope.
  const scope = yield* Scope.Scope
  const ticks = new Map<string, number>()
  const allowed = new Map(
    Object.entries(options.routing.tenants).map(([tenant, policy]) => [tenant, new Set(policy.models)])
  )
  for (const [tenant, models] of allowed) {
    for (const id of models) {
      if (catalog.find(id) === undefined && !catalog.disabled.includes(id)) {
        return yield* new ConfigError({ message: `routing.tenants.${tenant}.models: unknown model "${id}"` })
      }
    }
  }
  const closed = (id: string) => health.circuit(id) === "closed"

  const detect = (text: string) =>
    classifier === undefined
      ? Effect.succeed(TaskType.detect(text))
      : TaskType.classify(classifier.languageModel, text, { timeout: options.routing.classifier.timeout })

  /** The ids of the models a name stands for: itself, a route's candidates. */
  const modelsOf = (name: string): ReadonlyArray<string> => {
    const target = table.lookup(name)
    if (target === undefined || target._tag === "Experiment") return []
    return target._tag === "Model" ? [target.model.info.id] : target.candidates.map(({ model }) => model.info.id)
  }

  /**
   * The models an API key's list lets answer a request whose name resolved through `names` (the
   * requested one, what `auto` chose, an experiment's arm); null when the key lists none.
   */
  const keyAllowance = (
    list: ReadonlyArray<string> | null | undefined,
    names: ReadonlyArray<string>
  ): ReadonlySet<string> | null =>
    list === null || list === undefined ? null : new Set([...list, ...names].flatMap(modelsOf))

  const plan = Effect.fnUntraced(function* (request: RouteRequest) {
    const requested = request.model ?? request.preferred ?? defaultModel
    // A key that lists names may ask for those alone.
    if (request.allowed !== undefined && request.allowed !== null && !request.allowed.includes(requested)) {
      return yield* new ModelNotAllowed({ model: requested, by: "key" })
    }
    let name = requested
    let taskType: TaskType.TaskType | null = null
    if (name === RoutingTable.autoName) {
      taskType = yield* detect(request.text())
      name = table.auto(taskType)
    }
    let target = table.lookup(name)
    let experiment: Plan["experiment"] = null
    if (target?._tag === "Experiment") {
      const arm = Experiments.assign(target.experiment, request.stickyKey)
      experiment = { id: target.experiment.id, arm: arm.target }
      target = table.lookup(arm.target)
    }
    if (target === undefined || target._tag === "Experiment") return yield* new ModelNotFound({ model: requested })
    let ranked: Array<Model>
    if (target._tag === "Model") {
      ranked = [target.model]
    } else {
      const fit = capable(
        target.candidates.map(({ model }) => model),
        request.needs
      )
      if (Result.isFailure(fit)) return yield* new NoCapableModel({ model: requested, missing: fit.failure })
      const tick = ticks.get(target.name) ?? 0
      ticks.set(target.name, tick + 1)
      ranked = order(
        target,
        target.candidates.filter(({ model }) => fit.success.includes(model)),
        {
          latencyMs: health.latencyMs,
          weight: health.weight,
          closed,
          promptTokens: request.needs.promptTokens,
          draw: yield* Random.next,
          tick
        }
      )
    }
    const policy = allowed.get(request.tenant)
    const keyModels = keyAllowance(request.allowed, [requested, name, ...(experiment === null ? [] : [experiment.arm])])
    const withFallbacks = [
      ...new Set([...ranked, ...ranked.flatMap((model) => table.fallbacks(model.info.id))])
    ].filter(
      (model) =>
        (policy === undefined || policy.has(model.info.id)) && (keyModels === null || keyModels.has(model.info.id))
    )
    if (withFallbacks.length === 0) {
      const by = keyModels !== null && policy === undefined ? "key" : "tenant"
      return yield* new ModelNotAllowed({ model: requested, by })
    }
    const fit = capable(withFallbacks, request.needs)
    if (Result.isFailure(fit)) return yield* new NoCapableModel({ model: requested, missing: fit.failure })
    const [first, ...rest] = fit.success
    if (first === undefined) return yield* new ModelNotFound({ model: requested })
    return { requested, candidates: [first, ...rest], needs: request.needs, taskType, experiment } satisfies Plan
  })

  const begin = (caller: Caller, plan: Plan, maxOutputTokens: number | undefined) =>
    Effect.gen(function* () {
      // The tenant's own provider keys, for every call of the request (read before any budget is held).
      const credentials = yield* tenantKeys.credentials(caller.payer.tenant)
      const reservation = yield* budgets.reserve(caller.payer, estimateOf(plan, maxOutputTokens))
      const startedAt = yield* Clock.currentTimeMillis
      const models: Array<string> = []
      const charges: Array<Budgets.Charge> = []
      const turn: Turn = {
        models,
        charges,
        costUsd: () => charges.reduce((sum, charge) => sum + charge.cost_usd, 0),
        charge: (model, usage) => {
          if (models.at(-1) !== model.info.id) models.push(model.info.id)
          charges.push({
            model: model.info.id,
            provider: model.info.provider,
            usage,
            cost_usd: Usage.cost(usage, model.info.cost_per_1k_tokens),
            request_id: caller.requestId,
            session_id: caller.sessionId
          })
        }
      }
      return { reservation, startedAt, turn, credentials }
    })

  const end = (
    caller: Caller,
    plan: Plan,
    started: Effect.Success<ReturnType<typeof begin>>,
    exit: Exit.Exit<unknown, unknown>
  ) =>
    Effect.gen(function* () {
      yield* budgets.settle(started.reservation, started.turn.charges)
      if (plan.experiment === null) return
      const now = yield* Clock.currentTimeMillis
      yield* Effect.forkIn(
        experiments.record({
          tenant: caller.payer.tenant,
          experiment: plan.experiment.id,
          arm: plan.experiment.arm,
          session_id: caller.sessionId,
          request_id: caller.requestId,
          ok: Exit.isSuccess(exit),
          latency_ms: now - started.startedAt,
          cost_usd: started.turn.costUsd()
        }),
        scope
      )
    })

  return ModelRouter.of({
    plan,
    knows: (name) => name === RoutingTable.autoName || table.lookup(name) !== undefined,
    run: (caller, plan, use, maxOutputTokens) =>
      Effect.acquireUseRelease(
        begin(caller, plan, maxOutputTokens),
        (started) =>
          Effect.provideService(use(started.turn), TenantProviderKeys.CurrentCredentials, started.credentials),
        (started, exit) => end(caller, plan, started, exit)
      ),
    runStream: (caller, plan, use, maxOutputTokens) =>
      Stream.unwrap(
        Effect.map(
          Effect.acquireRelease(begin(caller, plan, maxOutputTokens), (started, exit) =>
            end(caller, plan, started, exit)
          ),
          (started) =>
            Stream.provideService(use(started.turn), TenantProviderKeys.CurrentCredentials, started.credentials)
        )
      ),
    call: (turn, plan, attempt, usageOf) => Failover.call(deps, plan.candidates, turn, attempt, usageOf),
    stream: (turn, plan, parts) => Failover.stream(deps, plan.candidates, turn, parts)
  })
})

/** The retries of tests (`layerTest`); a server's come from `resilience.retry`. */
export const defaultRetry: Failover.RetrySettings = {
  maxAttempts: 3,
  baseDelay: Duration.millis(200),
  maxDelay: Duration.seconds(2)
}

/** The router of the loaded configuration. */
export const layer: Layer.Layer<
  ModelRouter,
  ConfigError,
  | AppConfig
  | ModelCatalog
  | ModelHealth.ModelHealth
  | RetryBudget.RetryBudget
  | Budgets.Budgets
  | Experiments.Experiments
  | TenantProviderKeys.TenantProviderKeys
> = Layer.effect(
  ModelRouter,
  Effect.gen(function* () {
    const config = yield* AppConfig
    // The catalogue's default is `models.default`.
    return yield* make({ routing: config.routing, retry: RetryBudget.retrySettingsOf(config) })
  })
)

/** No routing: every request names a model (or the default). */
export const noRouting: Options["routing"] = {
  fallbacks: {},
  routes: {},
  auto: {},
  experiments: {},
  tenants: {},
  classifier: { model: null, timeout: Duration.seconds(2) }
}

/**
 * A router for tests over the `ModelCatalog` provided: `routing` (none by default), in-process
 * health and retry budget, no budgets, experiments not recorded.
 */
export const layerTest = (options: Partial<Options> = {}): Layer.Layer<ModelRouter, ConfigError, ModelCatalog> =>
  Layer.effect(ModelRouter, make({ routing: noRouting, retry: defaultRetry, ...options })).pipe(
    Layer.provide([
      ModelHealth.layerMemory,
      RetryBudget.layerMemory,
      Budgets.Budgets.layerMemory,
      Experiments.Experiments.layerMemory,
      TenantProviderKeys.layerNone
    ])
  )
