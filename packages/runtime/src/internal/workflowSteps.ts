/**
 * What the leaf steps of a workflow do once: a `model` step is a plain turn and an `agent`
 * step an agent's turn, both through `StatelessTurn` (the router's one path: routing,
 * failover, budgets, cost); a `tool` step is a call through the `ToolExecutor`; a `transform`
 * step evaluates its expression, template or function. Each gives its output as JSON and
 * what its model calls cost.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Prompt from "effect/ai/Prompt"
import { ToolExecutor } from "@polyagent/tools"
import type { Caller } from "../ModelRouter.ts"
import * as StatelessTurn from "../StatelessTurn.ts"
import type { Arguments, Context, Step, Text } from "../WorkflowDefinition.ts"
import { grant } from "./turnTools.ts"
import * as Expression from "./workflowExpression.ts"

/** A step could not do its work; `reason` is for the run's record and events. */
export class StepFailed extends Schema.TaggedError<StepFailed>()("WorkflowStepFailed", {
  step: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `step "${this.step}" failed: ${this.reason}`
  }
}

/** What a leaf step gave: its output, and the cost of its model calls. */
export interface Done {
  readonly output: unknown
  readonly costUsd: number
}

/** The text a step renders over the run's context. */
export const renderText = (text: Text, context: Context): string =>
  text._tag === "Template" ? Expression.render(text.template, context) : text.render(context)

/** Arguments with every string rendered as a template. */
const renderJson = (value: unknown, context: Context): unknown => {
  if (typeof value === "string") {
    const template = Expression.parseTemplate(value)
    if (template instanceof Expression.ExpressionError) return value
    // A template that is one hole keeps its value's type: `"{{steps.a.output}}"` may be a number.
    const only = template.length === 1 ? template[0] : undefined
    if (only !== undefined && typeof only !== "string") {
      const evaluated = Expression.evaluate(only, context)
      return evaluated instanceof Expression.ExpressionError ? null : evaluated
    }
    return Expression.render(template, context)
  }
  if (Array.isArray(value)) return value.map((item) => renderJson(item, context))
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, renderJson(item, context)]))
  }
  return value
}

const argumentsOf = (args: Arguments, context: Context): unknown =>
  args._tag === "Json" ? renderJson(args.value, context) : args.build(context)

/** Parses a tool's JSON result; a result that is not JSON is kept as text. */
const parseResult = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** Runs a leaf step once (`model`, `agent`, `tool`, `transform`); other types are not leaves. */
export const perform = (
  step: Step,
  key: string,
  context: Context,
  caller: Caller
): Effect.Effect<Done, StepFailed, StatelessTurn.Services> => {
  const failed = (reason: string) => new StepFailed({ step: key, reason })
  return Effect.gen(function* () {
    switch (step.type) {
      case "model":
      case "agent": {
        const messages: Array<Prompt.MessageEncoded> = []
        if (step.type === "model" && step.system !== undefined) messages.push({ role: "system", content: step.system })
        messages.push({ role: "user", content: renderText(step.prompt, context) })
        const outcome = yield* StatelessTurn.run({
          caller,
          agentId: step.type === "agent" ? step.agentId : null,
          model: step.type === "model" ? step.model : undefined,
          messages,
          callOptions: step.type === "model" ? { maxTokens: step.maxTokens } : {},
          userId: null
        }).pipe(Effect.mapError((error) => failed(error.message)))
        return { output: outcome.text, costUsd: outcome.costUsd }
      }
      case "tool": {
        const executor = yield* Effect.serviceOption(ToolExecutor.ToolExecutor)
        if (Option.isNone(executor)) return yield* failed(`no tool named ${step.tool} is loaded`)
        const result = yield* executor.value.run(
          { id: key, name: step.tool, arguments: argumentsOf(step.arguments, context) },
          grant
        )
        if (result.status === "error") return yield* failed(`${result.error.type}: ${result.error.message}`)
        return { output: parseResult(result.result), costUsd: 0 }
      }
      case "transform": {
        const value = step.value
        if (value._tag === "Function") {
          return yield* Effect.try({
            try: () => ({ output: value.run(context), costUsd: 0 }),
            catch: (error) => failed(error instanceof Error ? error.message : "the transform failed")
          })
        }
        if (value._tag === "Text") return { output: renderText(value.text, context), costUsd: 0 }
        const evaluated = Expression.evaluate(value.expr, context)
        if (evaluated instanceof Expression.ExpressionError) return yield* failed(evaluated.reason)
        return { output: evaluated, costUsd: 0 }
      }
      default:
        return yield* failed(`a ${step.type} step is not run as one action`)
    }
  })
}
