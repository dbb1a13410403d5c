/**
 * An agent's turn without a session: what `model: "agent:<id>"` on the OpenAI-compatible route
 * runs. The client sends the whole conversation and nothing is stored but what the agent's own
 * tools store (`remember`); otherwise it is the session's turn: the agent's system prompt with what
 * it remembers about the user, its tools and `remember`, its model through the router (budgets,
 * failover), the tool-call loop.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Prompt from "effect/ai/Prompt"
import { ToolExecutor, ToolRegistry } from "@polyagent/tools"
import { type Agent, AgentNotFound } from "./Agent.ts"
import type { CallOptions } from "./CallOptions.ts"
import * as AgentTurn from "./internal/agentTurn.ts"
import { ModelRouter, type Caller } from "./ModelRouter.ts"
import * as Safety from "./Safety.ts"
import { SessionSettings } from "./SessionProtocol.ts"
import { Storage } from "./Storage.ts"
import * as Tokens from "./Tokens.ts"
import * as ToolLoop from "./ToolLoop.ts"
import * as Usage from "./Usage.ts"

/** What a stateless turn needs of the server (tools and the executor are used when present). */
export type Services = ModelRouter | Storage | SessionSettings

/** A stateless turn of an agent. */
export interface Input {
  readonly caller: Caller
  /** The agent whose turn it is; `null`: a plain model turn (a workflow's `model` step). */
  readonly agentId: string | null
  /** The model (or route) the turn asks for; the agent's, else the default, when absent. */
  readonly model?: string | undefined
  /** The conversation as the client sent it, without the agent's system prompt. */
  readonly messages: ReadonlyArray<Prompt.MessageEncoded>
  /** The client's sampling settings; the agent's apply where the client sets none. */
  readonly callOptions: CallOptions
  /** The end user: whose facts the agent recalls and remembers (`null`: none). */
  readonly userId: string | null
  /** Text as it streams; without it each step is one non-streamed model call. */
  readonly delta?: ((content: string) => Effect.Effect<void>) | undefined
  /** A safety policy decided (`disclaim`, `escalate`, `refuse`), before the text it concerns. */
  readonly decided?: ((decision: Safety.Decision) => Effect.Effect<void>) | undefined
}

/** The answer of a stateless turn, and the models that gave it. */
export interface Outcome {
  readonly text: string
  /** The model that answered last; `safety` when a safety policy answered itself. */
  readonly model: string
  readonly usage: Usage.Usage
  /** What the turn's model calls cost (`Usage.cost` at each model's prices). */
  readonly costUsd: number
  readonly models: ReadonlyArray<string>
  /** The safety policy's decision, when it took one that did not stop the turn. */
  readonly safety: Safety.Decision | undefined
}

/** Whether the agent `agentId` of the caller's tenant offers tools of its own (client tools then cannot be sent). */
export const hasTools = Effect.fnUntraced(function* (tenant: string, agentId: string) {
  const storage = yield* Storage
  const registry = yield* Effect.serviceOption(ToolRegistry.ToolRegistry)
  const agent = yield* storage.getAgent(tenant, agentId)
  return Option.isSome(agent) && ToolLoop.toolkitFor(registry, agent.value) !== undefined
})

/** Runs the turn; fails like a session's turn would (unknown agent, model, budget, model errors). */
export const run = Effect.fnUntraced(function* (input: Input) {
  const storage = yield* Storage
  const router = yield* ModelRouter
  const settings = yield* SessionSettings
  const registry = yield* Effect.serviceOption(ToolRegistry.ToolRegistry)
  const executor = yield* Effect.serviceOption(ToolExecutor.ToolExecutor)
  const safety = yield* Effect.serviceOption(Safety.Safety)
  const { tenant } = input.caller.payer
  let agent: Agent | undefined
  if (input.agentId !== null) {
    const found = yield* storage.getAgent(tenant, input.agentId)
    if (Option.isNone(found)) return yield* new AgentNotFound({ agent_id: input.agentId })
    agent = found.value
  }
  const turnSafety = yield* AgentTurn.screen({
    safety,
    agent,
    text: lastUserText(input.messages),
    caller: input.caller,
    target: input.caller.requestId
  })
  const screening = turnSafety?.screening
  const decided = input.decided ?? (() => Effect.void)
  if (screening?.reply !== undefined) {
    yield* decided(screening.decision)
    if (input.delta !== undefined) yield* input.delta(screening.reply)
    return {
      text: screening.reply,
      model: "safety",
      usage: Usage.make(0, 0),
      costUsd: 0,
      models: [],
      safety: screening.decision
    } satisfies Outcome
  }
  const setup = yield* AgentTurn.setup({ storage, registry, tenant, agent, userId: input.userId })
  const prompt = [...AgentTurn.guardedSystem(setup.system, turnSafety), ...input.messages]
  const own = input.callOptions
  const callOptions: CallOptions = {
    ...own,
    temperature: own.temperature ?? setup.callOptions.temperature,
    topP: own.topP ?? setup.callOptions.topP,
    maxTokens: own.maxTokens ?? setup.callOptions.maxTokens
  }
  const plan = yield* router.plan(
    AgentTurn.routeOf({
      model: input.model ?? null,
      agent,
      setup,
      promptTokens: Tokens.countMessages(prompt),
      reserveTokens: callOptions.maxTokens ?? 0,
      text: () => lastUserText(input.messages),
      stickyKey: input.userId ?? input.caller.requestId,
      tenant,
      allowed: input.caller.models ?? null
    })
  )
  const guard = turnSafety?.guard
  const tell = input.delta
  const tellAll = (contents: ReadonlyArray<string>) =>
    tell === undefined ? Effect.void : Effect.forEach(contents, tell, { discard: true })
  // Streamed text passes the output check's hold-back window before it is told.
  const delta =
    tell === undefined || guard === undefined
      ? tell
      : (content: string) => Effect.flatMap(guard.push(content, content), tellAll)
  const outcome = yield* router.run(
    input.caller,
    plan,
    (turn) =>
      ToolLoop.run({
        router,
        plan,
        turn,
        prompt,
        toolkit: setup.toolkit,
        builtins: setup.builtins,
        callOptions,
        requestId: input.caller.requestId,
        maxSteps: settings.maxToolSteps,
        executor,
        hooks: {
          asked: (text) => (guard === undefined ? Effect.void : Effect.flatMap(guard.end(text), tellAll)),
          answered: () => Effect.void,
          delta
        }
      }).pipe(Effect.map((outcome) => ({ ...outcome, models: [...turn.models] }))),
    callOptions.maxTokens
  )
  if (guard !== undefined) yield* Effect.flatMap(guard.end(outcome.text), tellAll)
  const disclaimer = screening?.disclaimer
  if (screening !== undefined && disclaimer !== undefined) {
    yield* decided(screening.decision)
    if (tell !== undefined) yield* tell(disclaimer)
  }
  return {
    text: outcome.text + (disclaimer ?? ""),
    model: outcome.model.info.id,
    usage: outcome.usage,
    costUsd: outcome.costUsd,
    models: outcome.models,
    safety: disclaimer === undefined ? undefined : screening?.decision
  } satisfies Outcome
})

/** The text of the conversation's last user message, for `auto` routing. */
export const lastUserText = (messages: ReadonlyArray<Prompt.MessageEncoded>): string => {
  const last = messages.findLast((message) => message.role === "user")
  if (last === undefined) return ""
  if (typeof last.content === "string") return last.content
  return last.content.flatMap((part) => (part.type === "text" ? [part.text] : [])).join("\n")
}
