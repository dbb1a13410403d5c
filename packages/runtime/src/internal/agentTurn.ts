/**
 * What an agent brings to a turn: its sampling settings, its system prompt with what it
 * remembers about the turn's user, and the `remember` tool that stores a new fact (the
 * session actor runs `remember` itself; it is not a plugin tool).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Prompt from "effect/ai/Prompt"
import type { ToolExecutor, ToolRegistry } from "@polyagent/tools"
import type { Agent } from "../Agent.ts"
import type { CallOptions as CallOptionsValue } from "../CallOptions.ts"
import * as Identifier from "../Identifier.ts"
import type { Caller, RouteRequest } from "../ModelRouter.ts"
import * as Safety from "../Safety.ts"
import { MemoryFact, nowIso, type Storage, type StorageError } from "../Storage.ts"
import * as ToolLoop from "../ToolLoop.ts"

/** The sampling settings an agent applies to its turns. */
export const callOptionsOf = (agent: Agent | undefined): CallOptionsValue =>
  agent === undefined
    ? {}
    : {
        temperature: agent.parameters.temperature,
        topP: agent.parameters.top_p,
        maxTokens: agent.parameters.max_tokens
      }

/** The most facts recalled into one turn. */
export const maxFacts = 50

/** The agent's system prompt, followed by what it remembers about the user. */
export const systemOf = (
  systemPrompt: string | undefined,
  facts: ReadonlyArray<MemoryFact>
): Array<Prompt.MessageEncoded> => {
  const remembered =
    facts.length === 0 ? "" : `What you remember about the user:\n${facts.map((f) => `- ${f.fact}`).join("\n")}`
  const content = [systemPrompt ?? "", remembered].filter((part) => part !== "").join("\n\n")
  return content === "" ? [] : [{ role: "system", content }]
}

const decodeFact = Schema.decodeUnknownOption(Schema.Struct({ fact: Schema.String }))

const toolError = (
  call: ToolExecutor.ToolCall,
  type: ToolExecutor.ToolErrorType,
  message: string
): ToolExecutor.ToolResult => ({ id: call.id, name: call.name, status: "error", error: { type, message } })

/** The `remember` tool of one turn: stores `{ fact }` for the agent and user. */
export const remember =
  (options: {
    readonly storage: Storage["Service"]
    readonly tenant: string
    readonly agentId: string
    /** `null` when the user is unknown (a turn resumed after a crash): the tool then refuses. */
    readonly userId: string | null
    readonly now: Effect.Effect<string>
  }) =>
  (call: ToolExecutor.ToolCall): Effect.Effect<ToolExecutor.ToolResult> =>
    Effect.gen(function* () {
      const fact = Option.getOrUndefined(decodeFact(call.arguments))?.fact.trim() ?? ""
      if (fact === "" || options.userId === null) {
        return toolError(call, "invalid_arguments", "remember needs a non-empty fact about a known user")
      }
      const stored = new MemoryFact({
        id: yield* Identifier.make("fact"),
        user_id: options.userId,
        agent_id: options.agentId,
        fact,
        created_at: yield* options.now
      })
      return yield* options.storage.addFact(options.tenant, stored).pipe(
        Effect.as<ToolExecutor.ToolResult>({
          id: call.id,
          name: call.name,
          status: "ok",
          result: JSON.stringify({ remembered: fact })
        }),
        Effect.catch(() => Effect.succeed(toolError(call, "failed", "the fact could not be stored")))
      )
    })

/** The safety policy's part in one turn. */
export interface TurnSafety {
  /** What the input check decided (`allow` for a resumed turn, which has no new message). */
  readonly screening: Safety.Screening
  /** The canary placed in the agent's system prompt, if any: an answer that repeats it stops. */
  readonly canary: string | undefined
  /** The output check of the turn's answer; undefined when none runs. */
  readonly guard: Safety.Guard<string> | undefined
}

const unscreened: Safety.Screening = {
  decision: { action: "allow", category: "none" },
  reply: undefined,
  disclaimer: undefined
}

/**
 * The safety checks of an agent's (or a plain chat's) turn, the one place every turn runs them:
 * the tenant's policy tightened by the agent's, the input check of the user's `text` (`null` for a
 * resumed turn), the canary for the agent's system prompt, the output guard. Undefined when the
 * server has no safety service or the policy checks nothing: the turn then does no work for it.
 */
export const screen = (options: {
  readonly safety: Option.Option<Safety.Safety["Service"]>
  readonly agent: Agent | undefined
  readonly text: string | null
  readonly caller: Caller
  /** What an audit entry names: the session, else the request. */
  readonly target: string
}): Effect.Effect<TurnSafety | undefined, Safety.SafetyStop> => {
  if (Option.isNone(options.safety)) return Effect.undefined
  const safety = options.safety.value
  const policy = safety.policy(options.caller.payer.tenant, options.agent?.safety)
  const hasSystem = (options.agent?.system_prompt ?? "") !== ""
  if (!policy.input && !policy.output && !(policy.canary && hasSystem)) return Effect.undefined
  const subject: Safety.Subject = { caller: options.caller, target: options.target }
  return Effect.gen(function* () {
    const screening = options.text === null ? unscreened : yield* safety.screen(policy, options.text, subject)
    const canary = policy.canary && hasSystem ? yield* safety.canary : undefined
    const guard = policy.output || canary !== undefined ? safety.guard<string>(policy, subject, canary) : undefined
    return { screening, canary, guard }
  })
}

/** The system prompt of a turn with its canary, if it has one. */
export const guardedSystem = (
  system: Array<Prompt.MessageEncoded>,
  safety: TurnSafety | undefined
): Array<Prompt.MessageEncoded> => (safety?.canary === undefined ? system : Safety.withCanary(system, safety.canary))

/** What the router is asked for a turn of `agent` (none: a plain chat) prepared by `setup`. */
export const routeOf = (options: {
  /** The model the request names, if any. */
  readonly model: string | null
  readonly agent: Agent | undefined
  readonly setup: Setup
  readonly promptTokens: number
  /** Room for the answer, in tokens. */
  readonly reserveTokens: number
  /** The user's text, for `auto`. */
  readonly text: () => string
  readonly stickyKey: string
  readonly tenant: string
  /** The names the caller's API key may ask for; null: any. */
  readonly allowed: ReadonlyArray<string> | null
}): RouteRequest => ({
  model: options.model ?? undefined,
  preferred: options.agent?.model,
  needs: {
    tools: options.setup.toolkit !== undefined,
    vision: false,
    promptTokens: options.promptTokens,
    reserveTokens: options.reserveTokens
  },
  text: options.text,
  stickyKey: options.stickyKey,
  tenant: options.tenant,
  allowed: options.allowed
})

/** What an agent brings to one turn. */
export interface Setup {
  /** Its system prompt with what it remembers about the user, as prompt messages. */
  readonly system: Array<Prompt.MessageEncoded>
  readonly toolkit: ToolLoop.Toolkit
  /** The tools the turn runs itself: `remember`, for agents with memory. */
  readonly builtins: ToolLoop.Builtins
  readonly callOptions: CallOptionsValue
}

/**
 * What `agent` (none: a plain chat) brings to a turn for the user `userId` (`null` when unknown:
 * nothing is recalled, and `remember` refuses): the facts it remembers are read from storage.
 */
export const setup = (options: {
  readonly storage: Storage["Service"]
  readonly registry: Option.Option<ToolRegistry.ToolRegistry["Service"]>
  readonly tenant: string
  readonly agent: Agent | undefined
  readonly userId: string | null
}): Effect.Effect<Setup, StorageError> =>
  Effect.gen(function* () {
    const { storage, tenant, agent, userId } = options
    const facts =
      agent?.memory.enabled === true && userId !== null
        ? yield* storage.listFacts(tenant, userId, agent.id, maxFacts)
        : []
    const builtins: ToolLoop.Builtins =
      agent?.memory.enabled !== true
        ? new Map()
        : new Map([["remember", remember({ storage, tenant, agentId: agent.id, userId, now: nowIso })]])
    return {
      system: systemOf(agent?.system_prompt, facts),
      toolkit: ToolLoop.toolkitFor(options.registry, agent),
      builtins,
      callOptions: callOptionsOf(agent)
    }
  })
