/**
 * The tool-call loop: model → the tool calls it asks for (run in parallel through the
 * executor) → their results → model, for at most `maxSteps` steps; the last step offers no
 * tools, so the model has to answer. The loop stores nothing itself: its hooks record each
 * step's calls before they run and each result as it finishes (the session actor journals
 * them; the stateless OpenAI-compatible route does not).
 */
import { traced } from "./internal/turnParts.ts"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Prompt from "effect/ai/Prompt"
import type { ToolExecutor, ToolRegistry } from "@polyagent/tools"
import type { Agent } from "./Agent.ts"
import type { CallOptions as CallOptionsValue } from "./CallOptions.ts"
import { CallOptions } from "./CallOptions.ts"
import {
  assistantPrompt,
  collectStep,
  continuation,
  generateStep,
  grant,
  type Offered,
  parseArguments,
  readParts,
  rememberTool,
  resultsPrompt,
  streamParts,
  toolkitOf
} from "./internal/turnTools.ts"
import * as Stream from "effect/Stream"
import type { ToolCallRecord } from "./Message.ts"
import { fromAiError, type Model } from "./ModelCatalog.ts"
import type { ModelRouter, Plan, Turn } from "./ModelRouter.ts"
import { RequestId } from "./RequestId.ts"
import * as Usage from "./Usage.ts"

/** The tools a model is offered, as effect/ai's toolkit; `undefined` for none. */
export type Toolkit = Offered

/** The toolkit of an agent: the loaded tools it names when it enables tools, and `remember` when it remembers. */
export const toolkitFor = (
  registry: Option.Option<ToolRegistry.ToolRegistry["Service"]>,
  agent: Agent | undefined
): Toolkit =>
  toolkitOf(
    Option.getOrUndefined(registry),
    agent?.tools_enabled === true ? agent.tools : [],
    agent?.memory.enabled === true ? [rememberTool] : []
  )

/** Tools the caller runs itself (such as `remember`), by name. */
export type Builtins = ReadonlyMap<string, (call: ToolExecutor.ToolCall) => Effect.Effect<ToolExecutor.ToolResult>>

/** What the loop tells its caller as it goes. */
export interface Hooks<E> {
  /** `model` asked for `calls` (after writing `text`); called before they run. */
  readonly asked: (text: string, calls: ReadonlyArray<ToolCallRecord>, model: Model) => Effect.Effect<void, E>
  /** One call finished; called before the model sees the result. */
  readonly answered: (result: ToolExecutor.ToolResult) => Effect.Effect<void, E>
  /** Text as it streams (an output check may stop it); without it each step is one non-streamed model call. */
  readonly delta?: ((content: string) => Effect.Effect<void, E>) | undefined
  /** A model is called (each step, each failover): the answer's pieces from now on are its. */
  readonly answering?: ((model: Model) => void) | undefined
  /** A streamed answer broke off on model `from` and goes on with `to`. */
  readonly failover?: ((from: string, to: string) => Effect.Effect<void>) | undefined
}

/** Where a loop starts. */
export interface Options<E> {
  readonly router: ModelRouter["Service"]
  readonly plan: Plan
  /** The request the loop runs in (see `ModelRouter.run`): its calls are charged there. */
  readonly turn: Turn
  readonly prompt: ReadonlyArray<Prompt.MessageEncoded>
  readonly toolkit: Toolkit
  readonly callOptions: CallOptionsValue
  readonly requestId: string
  readonly maxSteps: number
  readonly executor: Option.Option<ToolExecutor.ToolExecutor["Service"]>
  readonly builtins?: Builtins | undefined
  readonly hooks: Hooks<E>
}

/**
 * How a loop ended: the answer, the model that gave it, the usage and cost of all its model calls
 * (a broken stream's included), the results of all its tool calls.
 */
export interface Outcome {
  readonly text: string
  readonly model: Model
  readonly usage: Usage.Usage
  readonly costUsd: number
  readonly results: ReadonlyArray<ToolExecutor.ToolResult>
}

/**
 * Runs `calls` in parallel (plugin tools within the executor's limit, `builtins` by the caller);
 * `answered` sees each result as it finishes.
 */
export const runCalls = <E>(
  executor: Option.Option<ToolExecutor.ToolExecutor["Service"]>,
  calls: ReadonlyArray<ToolCallRecord>,
  answered: (result: ToolExecutor.ToolResult) => Effect.Effect<void, E>,
  builtins: Builtins = new Map()
): Effect.Effect<Array<ToolExecutor.ToolResult>, E> =>
  Effect.forEach(
    calls,
    (record) => {
      const call = { id: record.id, name: record.name, arguments: parseArguments(record.arguments) }
      const builtin = builtins.get(call.name)
      const result: Effect.Effect<ToolExecutor.ToolResult> =
        builtin !== undefined
          ? builtin(call)
          : Option.isSome(executor)
            ? executor.value.run(call, grant)
            : Effect.succeed({
                id: call.id,
                name: call.name,
                status: "error",
                error: { type: "unknown_tool", message: `no tool named ${call.name} is loaded` }
              })
      return Effect.tap(result, answered)
    },
    { concurrency: "unbounded" }
  )

const noFailover = () => Effect.void

/** Runs the loop from `options.prompt`. */
export const run = <E>(options: Options<E>): Effect.Effect<Outcome, E | ReturnType<typeof fromAiError>> =>
  Effect.gen(function* () {
    const { router, plan, turn, toolkit, executor, hooks } = options
    const inCall = <A, R>(effect: Effect.Effect<A, R>) =>
      effect.pipe(
        Effect.provideService(RequestId, options.requestId),
        Effect.provideService(CallOptions, options.callOptions)
      )
    let prompt = options.prompt
    const results: Array<ToolExecutor.ToolResult> = []
    for (let step = 1; ; step++) {
      const offered = step <= options.maxSteps ? toolkit : undefined
      const asked = prompt
      const { value: answer, model } =
        hooks.delta === undefined
          ? yield* router.call(
              turn,
              plan,
              (model) => {
                hooks.answering?.(model)
                return inCall(
                  Effect.mapError(generateStep(model.languageModel, asked, offered), (e) => fromAiError(model.info, e))
                )
              },
              (answer) => answer.usage
            )
          : yield* streamed(options, asked, offered, hooks.delta)
      if (answer.calls.length === 0 || offered === undefined) {
        const usage = turn.charges.reduce((sum, charge) => Usage.add(sum, charge.usage), Usage.make(0, 0))
        return { text: answer.text, model, usage, costUsd: turn.costUsd(), results }
      }
      yield* hooks.asked(answer.text, answer.calls, model)
      const ran = yield* runCalls(executor, answer.calls, hooks.answered, options.builtins)
      results.push(...ran)
      prompt = [...prompt, assistantPrompt(answer.text, answer.calls), resultsPrompt(ran)]
    }
  }).pipe(traced("ToolLoop.run"))

/** A streamed step through the router: a broken answer goes on with the next candidate. */
const streamed = <E>(
  options: Options<E>,
  prompt: ReadonlyArray<Prompt.MessageEncoded>,
  offered: Toolkit,
  delta: (content: string) => Effect.Effect<void, E>
) => {
  const { router, plan, turn } = options
  let answering: Model | undefined
  const parts = router.stream(turn, plan, {
    attempt: (model, partial) => {
      answering = model
      options.hooks.answering?.(model)
      return streamParts(model.languageModel, continuation(prompt, partial), offered).pipe(
        Stream.mapError((error) => fromAiError(model.info, error)),
        Stream.provideService(RequestId, options.requestId),
        Stream.provideService(CallOptions, options.callOptions)
      )
    },
    usage: (parts) => readParts(parts).usage,
    text: (parts) => readParts(parts).text,
    promptTokens: plan.needs.promptTokens
  })
  return Effect.map(collectStep(parts, delta, options.hooks.failover ?? noFailover), (answer) => ({
    value: answer,
    model: answering ?? plan.candidates[0]
  }))
}
