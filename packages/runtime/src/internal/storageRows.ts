/**
 * The rows of PolyAgent's tables as `Storage` writes and reads them: the Schema of each result
 * row, and the conversions between rows and the domain's messages and agents. Text columns are
 * encoded and decoded around these by `Storage` (see `storedText.ts`), not here.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Agent, AgentSafety, AgentType, MemorySettings, Parameters } from "../Agent.ts"
import { Message, ToolCallRecord } from "../Message.ts"
import { SessionInfo } from "../Session.ts"
import { TaskType } from "../TaskType.ts"
import { Usage } from "../Usage.ts"

export const MessageRow = Schema.Struct({
  id: Schema.String,
  seq: Schema.Number,
  role: Message.fields.role,
  content: Schema.String,
  model: Schema.NullOr(Schema.String),
  provider: Schema.NullOr(Schema.String),
  prompt_tokens: Schema.NullOr(Schema.Number),
  completion_tokens: Schema.NullOr(Schema.Number),
  cost_usd: Schema.NullOr(Schema.Number),
  tool_calls: Schema.NullOr(Schema.fromJsonString(Schema.Array(ToolCallRecord))),
  tool_call_id: Schema.NullOr(Schema.String),
  pinned: Schema.Number,
  models: Schema.NullOr(Schema.fromJsonString(Schema.Array(Schema.String))),
  task_type: Schema.NullOr(TaskType),
  created_at: Schema.String
})
export const decodeMessageRows = Schema.decodeUnknownEffect(Schema.Array(MessageRow))
export const decodeSessionRows = Schema.decodeUnknownEffect(Schema.Array(SessionInfo))
/** A row of `Storage.loadSession`, its message's columns nested (null for a session without messages). */
export const LoadedRow = Schema.Struct({
  agent_id: Schema.NullOr(Schema.String),
  session_created_at: Schema.String,
  session_updated_at: Schema.String,
  idempotency_key: Schema.NullOr(Schema.String),
  message: Schema.NullOr(MessageRow)
})
export const decodeLoadedRows = Schema.decodeUnknownEffect(Schema.Array(LoadedRow))
export const decodeUnfinished = Schema.decodeUnknownEffect(
  Schema.Array(Schema.Struct({ tenant: Schema.String, id: Schema.String }))
)
export const CountRows = Schema.decodeUnknownEffect(
  Schema.Array(Schema.Struct({ n: Schema.Union([Schema.Number, Schema.NumberFromString]) }))
)

/** The columns of a message row, in the order of {@link MessageRow}. */
export const messageColumns = `id, seq, role, content, model, provider, prompt_tokens, completion_tokens, cost_usd, tool_calls,
  tool_call_id, pinned, models, task_type, created_at`

export const toMessage = (row: typeof MessageRow.Type): Message =>
  new Message({
    id: row.id,
    seq: row.seq,
    role: row.role,
    content: row.content,
    model: row.model,
    provider: row.provider,
    usage:
      row.prompt_tokens === null || row.completion_tokens === null
        ? null
        : new Usage({
            prompt_tokens: row.prompt_tokens,
            completion_tokens: row.completion_tokens,
            total_tokens: row.prompt_tokens + row.completion_tokens
          }),
    cost_usd: row.cost_usd,
    tool_calls: row.tool_calls,
    tool_call_id: row.tool_call_id,
    pinned: row.pinned !== 0,
    models: row.models,
    task_type: row.task_type,
    created_at: row.created_at
  })

/** A message as a row of `messages`. */
export const messageRow = (tenant: string, sessionId: string, message: Message, idempotencyKey: string | null) => ({
  tenant,
  session_id: sessionId,
  seq: message.seq,
  id: message.id,
  role: message.role,
  content: message.content,
  model: message.model,
  provider: message.provider,
  prompt_tokens: message.usage?.prompt_tokens ?? null,
  completion_tokens: message.usage?.completion_tokens ?? null,
  cost_usd: message.cost_usd,
  tool_calls: message.tool_calls === null ? null : JSON.stringify(message.tool_calls),
  tool_call_id: message.tool_call_id,
  pinned: message.pinned ? 1 : 0,
  models: message.models === null ? null : JSON.stringify(message.models),
  task_type: message.task_type,
  created_at: message.created_at,
  idempotency_key: idempotencyKey
})

/** An agent as a row: the structured fields as JSON text, the flag as 0/1 (both databases read it back). */
export const agentRow = (tenant: string, agent: Agent) => ({
  tenant,
  id: agent.id,
  name: agent.name,
  agent_type: agent.agent_type,
  system_prompt: agent.system_prompt,
  model: agent.model,
  tools_enabled: agent.tools_enabled ? 1 : 0,
  tools: JSON.stringify(agent.tools),
  parameters: JSON.stringify(agent.parameters),
  memory: JSON.stringify(agent.memory),
  safety: JSON.stringify(agent.safety),
  created_at: agent.created_at,
  updated_at: agent.updated_at
})

export const AgentRow = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  agent_type: AgentType,
  system_prompt: Schema.String,
  model: Schema.NullOr(Schema.String),
  tools_enabled: Schema.Number,
  tools: Schema.fromJsonString(Schema.Array(Schema.String)),
  parameters: Schema.fromJsonString(Parameters),
  memory: Schema.fromJsonString(MemorySettings),
  // Agents stored before migration 13 have none: they do not tighten their tenant's policy.
  safety: Schema.NullOr(Schema.fromJsonString(AgentSafety)),
  created_at: Schema.String,
  updated_at: Schema.String
})
export const decodeAgentRows = (rows: unknown) =>
  Schema.decodeUnknownEffect(Schema.Array(AgentRow))(rows).pipe(
    Effect.map((decoded) =>
      decoded.map((row) => new Agent({ ...row, tools_enabled: row.tools_enabled !== 0, safety: row.safety ?? {} }))
    )
  )
