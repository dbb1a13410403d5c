/**
 * Workflows in code, in the shape of the specification:
 *
 * ```ts
 * const review = WorkflowBuilder.make<{ topic: string }>("review")
 *   .addStep("analyze", WorkflowBuilder.model({ prompt: (ctx) => `Analyse ${ctx.input.topic}` }))
 *   .addStep("generate", WorkflowBuilder.model({ prompt: (ctx) => `Answer using ${ctx.steps.analyze}` }))
 *   .addCondition("should_review", (ctx) => ctx.steps.analyze.length > 200)
 *   .addStep("review", WorkflowBuilder.approval(), { when: "should_review" })
 *   .build()
 * ```
 *
 * The context a step's functions see grows with each step: `ctx.steps.analyze` above is the
 * `string` the model step answered, and a step that reads a step not added before it, or a
 * condition never added, does not compile. `build()` gives the same {@link Definition} as
 * `WorkflowDefinition.fromJson` does for JSON, checked by the same `validate`; the engine
 * (`WorkflowRuns`) runs both the same way, each step a journaled activity.
 */
import * as Result from "effect/Result"
import {
  type Condition,
  type Context,
  type Definition,
  DefinitionError,
  type Retry,
  type Step,
  validate
} from "./WorkflowDefinition.ts"

/**
 * A step as code describes it, before it has a name: `Ctx` is the context it reads, `Out` the
 * output it gives to later steps (phantom: only the types use it).
 */
export interface StepSpec<in Ctx, out Out> {
  readonly make: (common: StepCommonInput) => Step
  readonly _ctx?: (ctx: Ctx) => void
  readonly _out?: () => Out
}

interface StepCommonInput {
  readonly name: string
  readonly when: Condition | undefined
  readonly timeoutMs: number | undefined
  readonly retry: Retry | undefined
}

// The engine hands code functions a `Context<unknown>`; the builder's types say what it holds.
const erase =
  <Ctx, A>(f: (ctx: Ctx) => A) =>
  (ctx: Context): A =>
    Reflect.apply(f, undefined, [ctx])

/** What a model step answers, or an agent step: the text. */
export const model = <Ctx>(options: {
  readonly prompt: string | ((ctx: Ctx) => string)
  readonly model?: string
  readonly system?: string
  readonly maxTokens?: number
}): StepSpec<Ctx, string> => ({
  make: (common) => ({
    ...common,
    type: "model",
    prompt:
      typeof options.prompt === "string"
        ? { _tag: "Function", render: () => String(options.prompt) }
        : { _tag: "Function", render: erase(options.prompt) },
    model: options.model,
    system: options.system,
    maxTokens: options.maxTokens
  })
})

/** A turn of one of the tenant's agents, by id; its output is the agent's answer. */
export const agent = <Ctx>(options: {
  readonly agentId: string
  readonly prompt: string | ((ctx: Ctx) => string)
}): StepSpec<Ctx, string> => ({
  make: (common) => ({
    ...common,
    type: "agent",
    agentId: options.agentId,
    prompt:
      typeof options.prompt === "string"
        ? { _tag: "Function", render: () => String(options.prompt) }
        : { _tag: "Function", render: erase(options.prompt) }
  })
})

/** A call of a loaded tool; its output is the tool's result as JSON (`Out` says what it is). */
export const tool = <Out = unknown, Ctx = never>(options: {
  readonly tool: string
  readonly arguments: Readonly<Record<string, unknown>> | ((ctx: Ctx) => Readonly<Record<string, unknown>>)
}): StepSpec<Ctx, Out> => {
  const args = options.arguments
  return {
    make: (common) => ({
      ...common,
      type: "tool",
      tool: options.tool,
      arguments: typeof args === "function" ? { _tag: "Function", build: erase(args) } : { _tag: "Json", value: args }
    })
  }
}

/** A function of the context; its value (JSON) is the step's output. */
export const transform = <Ctx, Out>(run: (ctx: Ctx) => Out): StepSpec<Ctx, Out> => ({
  make: (common) => ({ ...common, type: "transform", value: { _tag: "Function", run: erase(run) } })
})

/** Steps run at once; the output has each one's output under its name. */
export const parallel = <Ctx, const Specs extends Record<string, StepSpec<Ctx, unknown>>>(
  steps: Specs
): StepSpec<Ctx, { readonly [K in keyof Specs]: Specs[K] extends StepSpec<Ctx, infer O> ? O : never }> => ({
  make: (common) => ({
    ...common,
    type: "parallel",
    steps: Object.entries(steps).map(([name, spec]) =>
      spec.make({ name, when: undefined, timeoutMs: undefined, retry: undefined })
    )
  })
})

/**
 * Steps run again and again, in order, at most `maxIterations` times, until `until` holds
 * after a pass; the output has one entry per pass, each step's output under its name.
 */
export const loop = <Ctx, const Specs extends Record<string, StepSpec<Ctx, unknown>>>(options: {
  readonly maxIterations: number
  readonly until?: (ctx: Ctx) => boolean
  readonly steps: Specs
}): StepSpec<
  Ctx,
  ReadonlyArray<{ readonly [K in keyof Specs]: Specs[K] extends StepSpec<Ctx, infer O> ? O : never }>
> => {
  const until = options.until
  return {
    make: (common) => ({
      ...common,
      type: "loop",
      maxIterations: options.maxIterations,
      until: until === undefined ? undefined : { _tag: "Predicate", name: `${common.name}.until`, holds: erase(until) },
      steps: Object.entries(options.steps).map(([name, spec]) =>
        spec.make({ name, when: undefined, timeoutMs: undefined, retry: undefined })
      )
    })
  }
}

/** A durable pause; the run holds no fiber while it sleeps. */
export const sleep = <Ctx>(durationMs: number): StepSpec<Ctx, null> => ({
  make: (common) => ({ ...common, type: "sleep", durationMs })
})

/** What an approved approval step answers. */
export interface Approved {
  readonly approved: true
  readonly comment: string | null
}

/** The run waits, holding nothing, until it is approved (the run goes on) or rejected (it ends). */
export const approval = <Ctx>(options: { readonly message?: string } = {}): StepSpec<Ctx, Approved> => ({
  make: (common) => ({ ...common, type: "approval", message: options.message })
})

/** How a step is added: a condition (by name, or a predicate), a timeout, retries. */
export interface AddOptions<Ctx, Conditions extends string> {
  readonly when?: Conditions | ((ctx: Ctx) => boolean)
  readonly timeoutMs?: number
  readonly retry?: Retry
}

/** The builder: `Steps` maps each step added so far to its output, `Conditions` names the conditions. */
export class WorkflowBuilder<Input, Steps extends Record<string, unknown>, Conditions extends string> {
  readonly name: string
  readonly steps: ReadonlyArray<Step>
  readonly conditions: ReadonlyMap<string, Condition>
  readonly timeoutMs: number | undefined

  constructor(
    name: string,
    steps: ReadonlyArray<Step>,
    conditions: ReadonlyMap<string, Condition>,
    timeoutMs: number | undefined
  ) {
    this.name = name
    this.steps = steps
    this.conditions = conditions
    this.timeoutMs = timeoutMs
  }

  /** Adds a step after the others; later steps see its output as `ctx.steps[name]`. */
  addStep<const Name extends string, Out>(
    name: Name extends keyof Steps ? never : Name,
    step: StepSpec<Context<Input, Steps>, Out>,
    options: AddOptions<Context<Input, Steps>, Conditions> = {}
  ): WorkflowBuilder<Input, Steps & { readonly [K in Name]: Out }, Conditions> {
    const when = options.when
    const condition: Condition | undefined =
      when === undefined
        ? undefined
        : typeof when === "function"
          ? { _tag: "Predicate", name: `${name}.when`, holds: erase(when) }
          : (this.conditions.get(when) ?? {
              // Only reachable by going around the types; validation reports it.
              _tag: "Predicate",
              name: when,
              holds: () => false
            })
    const made = step.make({ name, when: condition, timeoutMs: options.timeoutMs, retry: options.retry })
    return new WorkflowBuilder(this.name, [...this.steps, made], this.conditions, this.timeoutMs)
  }

  /** A named condition over the steps added so far, for `addStep(…, { when: name })`. */
  addCondition<const Name extends string>(
    name: Name,
    predicate: (ctx: Context<Input, Steps>) => boolean
  ): WorkflowBuilder<Input, Steps, Conditions | Name> {
    const conditions = new Map(this.conditions)
    conditions.set(name, { _tag: "Predicate", name, holds: erase(predicate) })
    return new WorkflowBuilder(this.name, this.steps, conditions, this.timeoutMs)
  }

  /** The most a run may take, in milliseconds. */
  timeout(ms: number): WorkflowBuilder<Input, Steps, Conditions> {
    return new WorkflowBuilder(this.name, this.steps, this.conditions, ms)
  }

  /** The definition, checked as JSON definitions are (names, references, limits). */
  build(): Result.Result<Definition, DefinitionError> {
    const definition: Definition = {
      name: this.name,
      description: undefined,
      steps: this.steps,
      timeoutMs: this.timeoutMs
    }
    const unknownCondition = this.steps.find(
      (step) => step.when?._tag === "Predicate" && !step.when.name.includes(".") && !this.conditions.has(step.when.name)
    )
    if (unknownCondition !== undefined) {
      return Result.fail(new DefinitionError({ step: unknownCondition.name, reason: "its condition names nothing" }))
    }
    const error = validate(definition)
    return error === undefined ? Result.succeed(definition) : Result.fail(error)
  }
}

/** A new workflow named `name` whose runs take an `Input`. */
export const make = <Input = unknown>(name: string): WorkflowBuilder<Input, {}, never> =>
  new WorkflowBuilder(name, [], new Map(), undefined)
