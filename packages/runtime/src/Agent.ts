/**
 * Agents: a named configuration of a conversation — its system prompt, preferred model,
 * tools and sampling parameters — that sessions run with. Agents belong to one tenant.
 */
import * as Schema from "effect/Schema"
import { CategoryCode } from "./internal/safetyConfig.ts"

/** What an agent does: plain chat, chat with tools, or a workflow. */
export const AgentType = Schema.Literals(["chat", "tool_calling", "workflow"])
export type AgentType = typeof AgentType.Type

/** Sampling settings an agent applies to every turn. */
export const Parameters = Schema.Struct({
  temperature: Schema.optional(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 2 }))),
  top_p: Schema.optional(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))),
  max_tokens: Schema.optional(Schema.Int.check(Schema.isGreaterThan(0)))
})
export type Parameters = typeof Parameters.Type

/** What an agent remembers about its users across sessions. */
export const MemorySettings = Schema.Struct({ enabled: Schema.Boolean })

/**
 * An agent's safety policy: it can only tighten its tenant's (see `Safety.ts`). `true` switches a
 * check on for the agent's turns whatever the tenant's policy; categories are blocked in addition
 * to the tenant's. There is no `false`: an agent cannot switch off a check its tenant runs.
 */
export const AgentSafety = Schema.Struct({
  /** The medical check (disclaim, escalate, refuse, dosage) on this agent's turns. */
  medical: Schema.optionalKey(Schema.Literal(true)),
  /** Prompt-injection detection and the canary in this agent's system prompt. */
  injection: Schema.optionalKey(Schema.Literal(true)),
  /** Llama Guard 3 categories (`S1`–`S14`) blocked on this agent's turns besides the tenant's. */
  blocked_categories: Schema.optionalKey(Schema.Array(CategoryCode))
})
export type AgentSafety = typeof AgentSafety.Type

const Name = Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(200))
const SystemPrompt = Schema.String.check(Schema.isMaxLength(100_000))
const ToolName = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/))

/** The body of `POST /v1/agents`. */
export const AgentCreate = Schema.Struct({
  name: Name,
  agent_type: AgentType,
  system_prompt: SystemPrompt,
  model: Schema.optional(Schema.NullOr(Schema.String.check(Schema.isNonEmpty()))),
  tools_enabled: Schema.optional(Schema.Boolean),
  tools: Schema.optional(Schema.Array(ToolName)),
  parameters: Schema.optional(Parameters),
  memory: Schema.optional(MemorySettings),
  safety: Schema.optional(AgentSafety)
})
export type AgentCreate = typeof AgentCreate.Type

/** The body of `PATCH /v1/agents/{id}`: any field of an agent, the others kept. */
export const AgentPatch = Schema.Struct({
  name: Schema.optional(Name),
  agent_type: Schema.optional(AgentType),
  system_prompt: Schema.optional(SystemPrompt),
  model: Schema.optional(Schema.NullOr(Schema.String.check(Schema.isNonEmpty()))),
  tools_enabled: Schema.optional(Schema.Boolean),
  tools: Schema.optional(Schema.Array(ToolName)),
  parameters: Schema.optional(Parameters),
  memory: Schema.optional(MemorySettings),
  safety: Schema.optional(AgentSafety)
})
export type AgentPatch = typeof AgentPatch.Type

/** An agent as stored and returned. */
export class Agent extends Schema.Class<Agent>("@polyagent/runtime/Agent")({
  id: Schema.String,
  name: Name,
  agent_type: AgentType,
  system_prompt: SystemPrompt,
  model: Schema.NullOr(Schema.String),
  tools_enabled: Schema.Boolean,
  tools: Schema.Array(Schema.String),
  parameters: Parameters,
  memory: MemorySettings,
  /** How the agent tightens its tenant's safety policy; `{}` for not at all. */
  safety: AgentSafety,
  created_at: Schema.String,
  updated_at: Schema.String
}) {}

/** The agent does not exist for this tenant. */
export class AgentNotFound extends Schema.TaggedError<AgentNotFound>()("AgentNotFound", {
  agent_id: Schema.String
}) {
  override get message(): string {
    return `agent ${this.agent_id} not found`
  }
}

/** A new agent from its creation request. */
export const fromCreate = (id: string, request: AgentCreate, now: string): Agent =>
  new Agent({
    id,
    name: request.name,
    agent_type: request.agent_type,
    system_prompt: request.system_prompt,
    model: request.model ?? null,
    tools_enabled: request.tools_enabled ?? request.agent_type === "tool_calling",
    tools: request.tools ?? [],
    parameters: request.parameters ?? {},
    memory: request.memory ?? { enabled: false },
    safety: request.safety ?? {},
    created_at: now,
    updated_at: now
  })

/** `agent` with the fields of `patch` applied. */
export const applyPatch = (agent: Agent, patch: AgentPatch, now: string): Agent =>
  new Agent({
    ...agent,
    ...Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)),
    updated_at: now
  })
