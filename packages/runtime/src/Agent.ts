/**
 * Agents: a named configuration of a conversation — its system prompt, preferred model,
 * tools and sampling parameters — that sessions run with. Agents belong to one tenant.
 */
import * as Schema from "effect/Schema"

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
  memory: Schema.optional(MemorySettings)
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
  memory: Schema.optional(MemorySettings)
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
