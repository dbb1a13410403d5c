/**
 * The `routing` section of the configuration, checked against the catalogue once at start-up:
 * what each name a request may send means (a model, a route, an experiment, `auto`), and the
 * fallbacks of each model. A name that is neither an enabled model nor a route or experiment stops
 * start-up; a model the configuration names whose provider is not enabled (no key) is left out
 * of the routes and fallbacks that name it, with a warning.
 */
import * as Result from "effect/Result"
import type * as AppConfig from "../AppConfig.ts"
import { ConfigError } from "./configSources.ts"
import type { Experiment } from "../Experiments.ts"
import type { Model, ModelCatalog } from "../ModelCatalog.ts"
import type { TaskType } from "../TaskType.ts"

type Routing = AppConfig.AppConfigValue["routing"]

/** What `balanced` weighs, relative to each other. */
export interface BalanceWeights {
  readonly cost: number
  readonly latency: number
  readonly quality: number
  readonly reliability: number
}

const evenly: BalanceWeights = { cost: 1, latency: 1, quality: 1, reliability: 1 }

/** A named virtual model. */
export interface Route {
  readonly _tag: "Route"
  readonly name: string
  readonly strategy: typeof AppConfig.RouteStrategy.Type
  readonly candidates: ReadonlyArray<{ readonly model: Model; readonly weight: number }>
  readonly weights: BalanceWeights
}

/** What a name in a request's `model` stands for. */
export type Target =
  | { readonly _tag: "Model"; readonly model: Model }
  | Route
  | { readonly _tag: "Experiment"; readonly experiment: Experiment }

/** The routing of a running server. */
export interface Table {
  /** The model, route or experiment `name` names; `undefined` when it names none. */
  readonly lookup: (name: string) => Target | undefined
  /** The models tried after `modelId` when it fails retryably before its first token. */
  readonly fallbacks: (modelId: string) => ReadonlyArray<Model>
  /** The name `auto` stands for when the detected task type is `type`. */
  readonly auto: (type: TaskType) => string
}

/** The name of a request that asks for a task-type-based choice. */
export const autoName = "auto"

/**
 * The table of `routing` over `catalog`, and the warnings start-up should log; fails with the
 * configuration key that names something that does not exist.
 */
export const make = (
  routing: Routing,
  catalog: ModelCatalog["Service"],
  defaultModel: string
): Result.Result<{ readonly table: Table; readonly warnings: ReadonlyArray<string> }, ConfigError> => {
  const warnings: Array<string> = []
  const problems: Array<string> = []
  const disabled = new Set(catalog.disabled)
  const isVirtual = (name: string) => Object.hasOwn(routing.routes, name) || Object.hasOwn(routing.experiments, name)

  for (const name of [...Object.keys(routing.routes), ...Object.keys(routing.experiments)]) {
    const section = Object.hasOwn(routing.routes, name) ? "routes" : "experiments"
    if (catalog.find(name) !== undefined || disabled.has(name) || name === autoName) {
      problems.push(`routing.${section}.${name}: a route or experiment cannot take the name of a model`)
    }
  }
  if (Object.keys(routing.routes).some((name) => Object.hasOwn(routing.experiments, name))) {
    problems.push("routing: a route and an experiment have the same name")
  }

  /** The enabled model `id` names, for the configuration key `key`; records why not otherwise. */
  const modelAt = (key: string, id: string): Model | undefined => {
    const model = catalog.find(id)
    if (model !== undefined) return model
    if (disabled.has(id)) warnings.push(`${key}: model ${id} is left out: its provider is not enabled (no key)`)
    else problems.push(`${key}: unknown model "${id}"`)
    return undefined
  }

  const routes = new Map<string, Route>()
  for (const [name, entry] of Object.entries(routing.routes)) {
    const listed: ReadonlyArray<readonly [string, number]> = Array.isArray(entry.candidates)
      ? entry.candidates.map((id) => [id, 1] as const)
      : Object.entries(entry.candidates)
    const candidates = listed.flatMap(([id, weight]) => {
      const model = modelAt(`routing.routes.${name}.candidates`, id)
      return model === undefined ? [] : [{ model, weight }]
    })
    if (candidates.length === 0 && listed.length > 0) {
      warnings.push(`routing.routes.${name}: no model of the route is enabled; requests naming it answer 404`)
    }
    const weights = entry.weights === undefined ? evenly : entry.weights
    routes.set(name, { _tag: "Route", name, strategy: entry.strategy, candidates, weights })
  }

  /** Checks that `target`, at `key`, names a model, a route or (where allowed) an experiment. */
  const checkTarget = (key: string, target: string, experiments: boolean) => {
    if (routes.has(target) || (experiments && Object.hasOwn(routing.experiments, target))) return
    if (Object.hasOwn(routing.experiments, target)) {
      problems.push(`${key}: "${target}" is an experiment; an experiment's arm names a model or a route`)
      return
    }
    modelAt(key, target)
  }

  const experiments = new Map<string, Experiment>()
  for (const [id, entry] of Object.entries(routing.experiments)) {
    const arms = Object.entries(entry.arms).map(([target, weight]) => {
      checkTarget(`routing.experiments.${id}.arms`, target, false)
      return { target, weight }
    })
    experiments.set(id, { id, arms })
  }
  for (const [type, target] of Object.entries(routing.auto)) checkTarget(`routing.auto.${type}`, target, true)

  const fallbacks = new Map<string, ReadonlyArray<Model>>()
  for (const [id, next] of Object.entries(routing.fallbacks)) {
    if (isVirtual(id)) {
      problems.push(`routing.fallbacks.${id}: fallbacks belong to models; a route lists its own candidates`)
      continue
    }
    if (catalog.find(id) === undefined && !disabled.has(id)) problems.push(`routing.fallbacks: unknown model "${id}"`)
    fallbacks.set(
      id,
      next.flatMap((target) => {
        const model = modelAt(`routing.fallbacks.${id}`, target)
        return model === undefined ? [] : [model]
      })
    )
  }

  if (problems.length > 0) return Result.fail(new ConfigError({ message: [...new Set(problems)].join("\n") }))

  const none: ReadonlyArray<Model> = []
  const autoDefault = routing.auto["default"] ?? defaultModel
  return Result.succeed({
    warnings: [...new Set(warnings)],
    table: {
      lookup: (name) => {
        const route = routes.get(name)
        if (route !== undefined) return route
        const experiment = experiments.get(name)
        if (experiment !== undefined) return { _tag: "Experiment", experiment }
        const model = catalog.find(name)
        return model === undefined ? undefined : { _tag: "Model", model }
      },
      fallbacks: (modelId) => fallbacks.get(modelId) ?? none,
      auto: (type) => routing.auto[type] ?? autoDefault
    }
  })
}
