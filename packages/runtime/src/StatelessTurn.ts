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
import { SessionSettings } from "./SessionProtocol.ts"
import { Storage } from "./Storage.ts"
import * as Tokens from "./Tokens.ts"
import * as ToolLoop from "./ToolLoop.ts"

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
}

/** The answer of a stateless turn, and the models that gave it. */
export interface Outcome extends ToolLoop.Outcome {
  readonly models: ReadonlyArray<string>
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
  const { tenant } = input.caller.payer
  let agent: Agent | undefined
  if (input.agentId !== null) {
    const found = yield* storage.getAgent(tenant, input.agentId)
    if (Option.isNone(found)) return yield* new AgentNotFound({ agent_id: input.agentId })
    agent = found.value
  }
  const setup = yield* AgentTurn.setup({ storage, registry, tenant, agent, userId: input.userId })
  const prompt = [...setup.system, ...input.messages]
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
      tenant
    })
  )
  return yield* router.run(
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
        hooks: { asked: () => Effect.void, answered: () => Effect.void, delta: input.delta }
      }).pipe(Effect.map((outcome): Outcome => ({ ...outcome, models: [...turn.models] }))),
    callOptions.maxTokens
  )
})

/** The text of the conversation's last user message, for `auto` routing. */
export const lastUserText = (messages: ReadonlyArray<Prompt.MessageEncoded>): string => {
  const last = messages.findLast((message) => message.role === "user")
  if (last === undefined) return ""
  if (typeof last.content === "string") return last.content
  return last.content.flatMap((part) => (part.type === "text" ? [part.text] : [])).join("\n")
}
