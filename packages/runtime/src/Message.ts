/**
 * The messages of a conversation as they are stored and returned: one row per message,
 * numbered in order within its session. Assistant messages carry the model, provider,
 * usage and cost of the turn that produced them, and the task type detected for it.
 */
import * as Schema from "effect/Schema"
import { TaskType } from "./TaskType.ts"
import { Usage } from "./Usage.ts"

/** Who wrote a message. */
export const Role = Schema.Literals(["system", "user", "assistant", "tool"])
export type Role = typeof Role.Type

/** A tool call the assistant made: its arguments as the model wrote them (JSON text). */
export const ToolCallRecord = Schema.Struct({ id: Schema.String, name: Schema.String, arguments: Schema.String })
export type ToolCallRecord = typeof ToolCallRecord.Type

/**
 * One stored message. `seq` orders the messages of a session, from 1. An assistant message may
 * carry `tool_calls`; a `tool` message answers one of them (`tool_call_id`) with the result's JSON.
 */
export class Message extends Schema.Class<Message>("@polyagent/runtime/Message")({
  id: Schema.String,
  seq: Schema.Int,
  role: Role,
  content: Schema.String,
  model: Schema.NullOr(Schema.String),
  provider: Schema.NullOr(Schema.String),
  usage: Schema.NullOr(Usage),
  cost_usd: Schema.NullOr(Schema.Finite),
  tool_calls: Schema.NullOr(Schema.Array(ToolCallRecord)),
  tool_call_id: Schema.NullOr(Schema.String),
  /** Kept in the model's context however long the conversation grows. */
  pinned: Schema.Boolean,
  /** The models that produced an answer, in order (more than one after a failover mid-answer). */
  models: Schema.NullOr(Schema.Array(Schema.String)),
  /** The task type detected for the turn (`model: "auto"` routing); `null` when none was detected. */
  task_type: Schema.NullOr(TaskType),
  created_at: Schema.String
}) {}

/** A message about to be stored: the storage assigns `seq`. */
export type NewMessage = Omit<Message, "seq">

/** The fields a message leaves unset unless it says otherwise: a plain, unpinned message of nobody's. */
export const unset = {
  model: null,
  provider: null,
  usage: null,
  cost_usd: null,
  tool_calls: null,
  tool_call_id: null,
  pinned: false,
  models: null,
  task_type: null
} as const satisfies Partial<Message>
