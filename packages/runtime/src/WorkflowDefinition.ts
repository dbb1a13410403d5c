/**
 * What a workflow is: its steps, in order, each with an optional condition, and how the steps
 * read the run's input and the outputs of the steps before them. A definition comes either
 * from JSON (or YAML) submitted through the API ({@link fromJson}) or from code
 * (`WorkflowBuilder`); both end as the same {@link Definition}, checked by the same
 * {@link validate}, and run by the same engine (`WorkflowRuns`).
 *
 * Step types: `model` (a prompt through the router), `agent` (a turn of one of the tenant's
 * agents), `tool` (a loaded tool), `transform` (an expression or template, or a function in
 * code), `parallel` (child steps at once), `loop` (child steps again, bounded), `sleep`, and
 * `approval` (the run waits for a person). Conditions and templates use the small expression
 * language of `internal/workflowExpression.ts` over `input` and `steps` only.
 */
import * as Schema from "effect/Schema"
import { parse as parseYaml } from "yaml"
import * as Expression from "./internal/workflowExpression.ts"

/** What code steps and conditions see: the run's input and the outputs of the steps before. */
export interface Context<Input = unknown, Steps = Readonly<Record<string, unknown>>> {
  readonly input: Input
  readonly steps: Steps
}

/** Text that a step renders when it runs: a template of the expression language, or (in code) a function. */
export type Text =
  | { readonly _tag: "Template"; readonly source: string; readonly template: Expression.Template }
  | { readonly _tag: "Function"; readonly render: (context: Context) => string }

/** A condition: an expression, or (in code) a named predicate. */
export type Condition =
  | { readonly _tag: "Expression"; readonly source: string; readonly expr: Expression.Expr }
  | { readonly _tag: "Predicate"; readonly name: string; readonly holds: (context: Context) => boolean }

/** How a failed step is tried again: at most `maxAttempts` attempts in all, with exponential backoff. */
export interface Retry {
  readonly maxAttempts: number
  readonly backoffMs: number
}

/** What every step has. */
export interface StepCommon {
  readonly name: string
  /** The step runs only when this holds; otherwise it is skipped and its output is `null`. */
  readonly when: Condition | undefined
  /** How long one attempt may take. */
  readonly timeoutMs: number | undefined
  readonly retry: Retry | undefined
}

/** One step of a definition. */
export type Step = StepCommon &
  (
    | {
        readonly type: "model"
        readonly prompt: Text
        readonly model: string | undefined
        readonly system: string | undefined
        readonly maxTokens: number | undefined
      }
    | { readonly type: "agent"; readonly agentId: string; readonly prompt: Text }
    | { readonly type: "tool"; readonly tool: string; readonly arguments: Arguments }
    | {
        readonly type: "transform"
        readonly value:
          | { readonly _tag: "Expression"; readonly expr: Expression.Expr }
          | { readonly _tag: "Text"; readonly text: Text }
          | { readonly _tag: "Function"; readonly run: (context: Context) => unknown }
      }
    | { readonly type: "parallel"; readonly steps: ReadonlyArray<Step> }
    | {
        readonly type: "loop"
        readonly steps: ReadonlyArray<Step>
        readonly maxIterations: number
        readonly until: Condition | undefined
      }
    | { readonly type: "sleep"; readonly durationMs: number }
    | { readonly type: "approval"; readonly message: string | undefined }
  )

/** A tool step's arguments: JSON whose strings are templates, or (in code) a function. */
export type Arguments =
  | { readonly _tag: "Json"; readonly value: unknown }
  | { readonly _tag: "Function"; readonly build: (context: Context) => unknown }

/** The step types, as JSON names them. */
export const stepTypes = ["model", "agent", "tool", "transform", "parallel", "loop", "sleep", "approval"] as const
export type StepType = (typeof stepTypes)[number]

/** A workflow: its name and steps, and the most a run may take. */
export interface Definition {
  readonly name: string
  readonly description: string | undefined
  readonly steps: ReadonlyArray<Step>
  readonly timeoutMs: number | undefined
}

/** A definition is not valid; `step` names the step at fault (`null`: the definition as a whole). */
export class DefinitionError extends Schema.TaggedError<DefinitionError>()("WorkflowDefinitionError", {
  step: Schema.NullOr(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    return this.step === null ? this.reason : `step "${this.step}": ${this.reason}`
  }
}

/** Limits on a definition, so that one cannot exhaust the server. */
export const limits = {
  steps: 100,
  depth: 4,
  iterations: 100,
  attempts: 10,
  sleepMs: 30 * 24 * 3_600_000,
  timeoutMs: 30 * 24 * 3_600_000,
  backoffMs: 600_000
} as const

const namePattern = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/
const workflowNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/

/** Every step of `steps`, children after their parent, in order. */
export const allSteps = (steps: ReadonlyArray<Step>): Array<Step> =>
  steps.flatMap((step) => (step.type === "parallel" || step.type === "loop" ? [step, ...allSteps(step.steps)] : [step]))

const textReads = (text: Text): Array<string> =>
  text._tag === "Template" ? Expression.templateStepsRead(text.template) : []

const conditionReads = (condition: Condition | undefined): Array<string> =>
  condition?._tag === "Expression" ? Expression.stepsRead(condition.expr) : []

const jsonReads = (value: unknown): Array<string> => {
  if (typeof value === "string") {
    const template = Expression.parseTemplate(value)
    return template instanceof Expression.ExpressionError ? [] : Expression.templateStepsRead(template)
  }
  if (Array.isArray(value)) return value.flatMap(jsonReads)
  if (typeof value === "object" && value !== null) return Object.values(value).flatMap(jsonReads)
  return []
}

/**
 * The steps a step reads before it runs (its condition, prompt, arguments or expression); not
 * its children's, nor a loop's `until`, which is read after each pass of the loop's steps.
 */
export const reads = (step: Step): Array<string> => {
  const own = conditionReads(step.when)
  switch (step.type) {
    case "model":
    case "agent":
      return [...own, ...textReads(step.prompt)]
    case "tool":
      return step.arguments._tag === "Json" ? [...own, ...jsonReads(step.arguments.value)] : own
    case "transform":
      return step.value._tag === "Expression"
        ? [...own, ...Expression.stepsRead(step.value.expr)]
        : step.value._tag === "Text"
          ? [...own, ...textReads(step.value.text)]
          : own
    default:
      return own
  }
}

/**
 * Checks what the shapes cannot: names unique across the whole definition; every step read is
 * one that has finished before the reader runs (not a later one, not a parallel sibling);
 * references that loop back are reported as cycles; at most {@link limits}.steps steps.
 */
export const validate = (definition: Definition): DefinitionError | undefined => {
  const everything = allSteps(definition.steps)
  if (everything.length === 0) return new DefinitionError({ step: null, reason: "a workflow needs at least one step" })
  if (everything.length > limits.steps) {
    return new DefinitionError({ step: null, reason: `a workflow has at most ${limits.steps} steps` })
  }
  const seen = new Set<string>()
  for (const step of everything) {
    if (seen.has(step.name)) return new DefinitionError({ step: step.name, reason: "the name is used twice" })
    seen.add(step.name)
  }
  const readsOf = new Map(everything.map((step) => [step.name, reads(step)]))
  const cycleFrom = (from: string, to: string): Array<string> | undefined => {
    // A path to → … → from in the graph of reads closes a cycle from → to → … → from.
    const visit = (at: string, path: Array<string>, visited: Set<string>): Array<string> | undefined => {
      if (at === from) return path
      if (visited.has(at)) return undefined
      visited.add(at)
      for (const next of readsOf.get(at) ?? []) {
        const found = visit(next, [...path, next], visited)
        if (found !== undefined) return found
      }
      return undefined
    }
    return visit(to, [from, to], new Set())
  }
  const check = (
    steps: ReadonlyArray<Step>,
    available: ReadonlySet<string>,
    depth: number
  ): DefinitionError | undefined => {
    if (depth > limits.depth) {
      return new DefinitionError({ step: steps[0]?.name ?? null, reason: `steps nest at most ${limits.depth} deep` })
    }
    const done = new Set(available)
    for (const step of steps) {
      const error = checkReads(step, reads(step), done)
      if (error !== undefined) return error
      if (step.type === "parallel") {
        for (const child of step.steps) {
          const childError = check([child], done, depth + 1)
          if (childError !== undefined) return childError
        }
      } else if (step.type === "loop") {
        const bodyError = check(step.steps, done, depth + 1)
        if (bodyError !== undefined) return bodyError
        const body = new Set([...done, ...allSteps(step.steps).map((child) => child.name)])
        const untilError = checkReads(step, conditionReads(step.until), body)
        if (untilError !== undefined) return untilError
      }
      done.add(step.name)
      if (step.type === "parallel" || step.type === "loop") {
        for (const child of allSteps(step.steps)) done.add(child.name)
      }
    }
    return undefined
  }
  const checkReads = (step: Step, names: ReadonlyArray<string>, done: ReadonlySet<string>) => {
    for (const name of names) {
      if (done.has(name)) continue
      if (!seen.has(name))
        return new DefinitionError({ step: step.name, reason: `refers to step "${name}", which does not exist` })
      if (name === step.name)
        return new DefinitionError({ step: step.name, reason: "refers to its own output (a cycle)" })
      const cycle = cycleFrom(step.name, name)
      if (cycle !== undefined) return new DefinitionError({ step: step.name, reason: `cycle: ${cycle.join(" → ")}` })
      return new DefinitionError({
        step: step.name,
        reason: `refers to step "${name}", which has not finished when this step runs`
      })
    }
    return undefined
  }
  return check(definition.steps, new Set(), 1)
}

// ---------------------------------------------------------------------------------------------
// JSON

type Json = Readonly<Record<string, unknown>>

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value)

const commonKeys = ["name", "type", "when", "timeout_ms", "retry"]
const keysOf: Record<StepType, ReadonlyArray<string>> = {
  model: ["prompt", "model", "system", "max_tokens"],
  agent: ["agent_id", "prompt"],
  tool: ["tool", "arguments"],
  transform: ["expression", "template"],
  parallel: ["steps"],
  loop: ["steps", "max_iterations", "until"],
  sleep: ["duration_ms"],
  approval: ["message"]
}
const isStepType = (value: unknown): value is StepType =>
  typeof value === "string" && stepTypes.some((type) => type === value)

/** Reads a JSON step field by field; the first problem stops it, naming the step. */
class Reader {
  readonly step: string | null
  readonly json: Json
  constructor(step: string | null, json: Json) {
    this.step = step
    this.json = json
  }
  fail(reason: string): never {
    throw new DefinitionError({ step: this.step, reason })
  }
  string(key: string, options: { readonly required: true; readonly max?: number }): string
  string(key: string, options?: { readonly required?: false; readonly max?: number }): string | undefined
  string(key: string, options: { readonly required?: boolean; readonly max?: number } = {}): string | undefined {
    const value = this.json[key]
    if (value === undefined || value === null) {
      return options.required === true ? this.fail(`"${key}" is required`) : undefined
    }
    if (typeof value !== "string" || value === "") this.fail(`"${key}" must be a non-empty string`)
    if (value.length > (options.max ?? 100_000))
      this.fail(`"${key}" is longer than ${options.max ?? 100_000} characters`)
    return value
  }
  integer(key: string, min: number, max: number): number | undefined {
    const value = this.json[key]
    if (value === undefined || value === null) return undefined
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      this.fail(`"${key}" must be a whole number from ${min} to ${max}`)
    }
    return value
  }
  condition(key: string, conditions: ReadonlyMap<string, Condition>): Condition | undefined {
    const source = this.string(key, { max: Expression.maxLength })
    if (source === undefined) return undefined
    if (/^\s*[A-Za-z_][A-Za-z0-9_]*\s*$/.test(source) && !["true", "false", "null", "input"].includes(source.trim())) {
      const named = conditions.get(source.trim())
      return named ?? this.fail(`condition "${source.trim()}" names nothing (no such entry in "conditions")`)
    }
    return this.expression(key, source)
  }
  expression(key: string, source: string): Condition & { readonly _tag: "Expression" } {
    const expr = Expression.parse(source)
    if (expr instanceof Expression.ExpressionError) this.fail(`"${key}" is not a valid expression: ${expr.reason}`)
    return { _tag: "Expression", source, expr }
  }
  text(key: string): Text {
    const source = this.string(key, { required: true })
    const template = Expression.parseTemplate(source)
    if (template instanceof Expression.ExpressionError)
      this.fail(`"${key}" is not a valid template: ${template.reason}`)
    return { _tag: "Template", source, template }
  }
}

const checkJsonTemplates = (reader: Reader, value: unknown, depth: number): void => {
  if (depth > 32) reader.fail(`"arguments" nest deeper than 32`)
  if (typeof value === "string") {
    const template = Expression.parseTemplate(value)
    if (template instanceof Expression.ExpressionError)
      reader.fail(`an argument is not a valid template: ${template.reason}`)
  } else if (Array.isArray(value)) {
    for (const item of value) checkJsonTemplates(reader, item, depth + 1)
  } else if (isObject(value)) {
    for (const item of Object.values(value)) checkJsonTemplates(reader, item, depth + 1)
  }
}

const stepOf = (raw: unknown, index: number, conditions: ReadonlyMap<string, Condition>, depth: number): Step => {
  if (!isObject(raw)) throw new DefinitionError({ step: null, reason: `steps[${index}] must be an object` })
  const label = typeof raw["name"] === "string" && raw["name"] !== "" ? raw["name"].slice(0, 64) : `steps[${index}]`
  const reader: Reader = new Reader(label, raw)
  const name = reader.string("name", { required: true })
  if (!namePattern.test(name)) {
    reader.fail("a step name is 1-64 letters, digits or underscores, not starting with a digit")
  }
  const type = raw["type"]
  if (!isStepType(type)) {
    reader.fail(
      type === undefined
        ? `"type" is required (one of ${stepTypes.join(", ")})`
        : `unknown step type ${JSON.stringify(type)} (one of ${stepTypes.join(", ")})`
    )
  }
  const allowed = new Set([...commonKeys, ...keysOf[type]])
  const unknown = Object.keys(raw).find((key) => !allowed.has(key))
  if (unknown !== undefined) reader.fail(`unknown field "${unknown}" for a ${type} step`)
  const retryJson = raw["retry"]
  let retry: Retry | undefined
  if (retryJson !== undefined && retryJson !== null) {
    if (!isObject(retryJson)) reader.fail(`"retry" must be an object`)
    const retryReader: Reader = new Reader(name, retryJson)
    const extra = Object.keys(retryJson).find((key) => key !== "max_attempts" && key !== "backoff_ms")
    if (extra !== undefined) reader.fail(`unknown field "retry.${extra}"`)
    retry = {
      maxAttempts: retryReader.integer("max_attempts", 1, limits.attempts) ?? 3,
      backoffMs: retryReader.integer("backoff_ms", 0, limits.backoffMs) ?? 500
    }
  }
  const common: StepCommon = {
    name,
    when: reader.condition("when", conditions),
    timeoutMs: reader.integer("timeout_ms", 1, limits.timeoutMs),
    retry
  }
  const children = (): ReadonlyArray<Step> => {
    const steps = raw["steps"]
    if (!Array.isArray(steps) || steps.length === 0) reader.fail(`"steps" must be a non-empty array`)
    if (depth >= limits.depth) reader.fail(`steps nest at most ${limits.depth} deep`)
    return steps.map((child, i) => stepOf(child, i, conditions, depth + 1))
  }
  switch (type) {
    case "model":
      return {
        ...common,
        type,
        prompt: reader.text("prompt"),
        model: reader.string("model", { max: 200 }),
        system: reader.string("system"),
        maxTokens: reader.integer("max_tokens", 1, 1_000_000)
      }
    case "agent":
      return {
        ...common,
        type,
        agentId: reader.string("agent_id", { required: true, max: 200 }),
        prompt: reader.text("prompt")
      }
    case "tool": {
      const args = raw["arguments"] ?? {}
      if (!isObject(args)) reader.fail(`"arguments" must be an object`)
      checkJsonTemplates(reader, args, 0)
      return {
        ...common,
        type,
        tool: reader.string("tool", { required: true, max: 200 }),
        arguments: { _tag: "Json", value: args }
      }
    }
    case "transform": {
      const expression = reader.string("expression", { max: Expression.maxLength })
      const template = reader.string("template")
      if ((expression === undefined) === (template === undefined)) {
        reader.fail(`a transform step has either "expression" or "template"`)
      }
      return {
        ...common,
        type,
        value:
          expression !== undefined
            ? { _tag: "Expression", expr: reader.expression("expression", expression).expr }
            : { _tag: "Text", text: reader.text("template") }
      }
    }
    case "parallel":
      return { ...common, type, steps: children() }
    case "loop": {
      const maxIterations = reader.integer("max_iterations", 1, limits.iterations)
      if (maxIterations === undefined) reader.fail(`"max_iterations" is required (at most ${limits.iterations})`)
      return { ...common, type, steps: children(), maxIterations, until: reader.condition("until", conditions) }
    }
    case "sleep": {
      const durationMs = reader.integer("duration_ms", 0, limits.sleepMs)
      return durationMs === undefined ? reader.fail(`"duration_ms" is required`) : { ...common, type, durationMs }
    }
    case "approval":
      return { ...common, type, message: reader.string("message", { max: 10_000 }) }
  }
}

const definitionOf = (raw: unknown): Definition => {
  if (!isObject(raw)) throw new DefinitionError({ step: null, reason: "a workflow definition is a JSON object" })
  const reader: Reader = new Reader(null, raw)
  const unknown = Object.keys(raw).find(
    (key) => !["name", "description", "steps", "conditions", "timeout_ms"].includes(key)
  )
  if (unknown !== undefined) reader.fail(`unknown field "${unknown}"`)
  const name = reader.string("name", { required: true, max: 100 })
  if (!workflowNamePattern.test(name)) reader.fail(`"name" is 1-100 letters, digits, "_", "." or "-"`)
  const conditions = new Map<string, Condition>()
  const conditionsJson = raw["conditions"] ?? {}
  if (!isObject(conditionsJson)) reader.fail(`"conditions" must be an object of name → expression`)
  for (const [conditionName, source] of Object.entries(conditionsJson)) {
    if (!namePattern.test(conditionName))
      reader.fail(`condition name "${conditionName.slice(0, 64)}" is not a valid name`)
    if (typeof source !== "string") reader.fail(`condition "${conditionName}" must be an expression string`)
    conditions.set(
      conditionName,
      new Reader(null, { [conditionName]: source }).expression(`conditions.${conditionName}`, source)
    )
  }
  const steps = raw["steps"]
  if (!Array.isArray(steps) || steps.length === 0) reader.fail(`"steps" must be a non-empty array`)
  if (steps.length > limits.steps) reader.fail(`a workflow has at most ${limits.steps} steps`)
  return {
    name,
    description: reader.string("description", { max: 2_000 }),
    steps: steps.map((step, i) => stepOf(step, i, conditions, 1)),
    timeoutMs: reader.integer("timeout_ms", 1, limits.timeoutMs)
  }
}

/**
 * A definition from its JSON (already parsed), checked completely: the shape of every step
 * and then {@link validate}. The error names the step at fault.
 */
export const fromJson = (raw: unknown): Definition | DefinitionError => {
  try {
    const definition = definitionOf(raw)
    return validate(definition) ?? definition
  } catch (error) {
    if (error instanceof DefinitionError) return error
    return new DefinitionError({ step: null, reason: "the definition is too deeply nested" })
  }
}

/** A definition from YAML text: parsed, then read as {@link fromJson} reads JSON. */
export const fromYaml = (text: string): Definition | DefinitionError => {
  try {
    return fromJson(parseYaml(text, { maxAliasCount: 100 }))
  } catch {
    return new DefinitionError({ step: null, reason: "the definition is not valid YAML" })
  }
}
