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
import type { RouteRequest } from "../ModelRouter.ts"
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
  tenant: options.tenant
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
