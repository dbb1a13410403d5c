/**
 * The messages of a conversation as they are stored and returned: one row per message,
 * numbered in order within its session. Assistant messages carry the model, provider,
 * usage and cost of the turn that produced them.
 */
import { Schema } from "effect"
import { Usage } from "./Usage.ts"

/** Who wrote a message. */
export const Role = Schema.Literals(["system", "user", "assistant", "tool"])
export type Role = typeof Role.Type

/** One stored message. `seq` orders the messages of a session, from 1. */
export class Message extends Schema.Class<Message>("@polyagent/runtime/Message")({
  id: Schema.String,
  seq: Schema.Int,
  role: Role,
  content: Schema.String,
  model: Schema.NullOr(Schema.String),
  provider: Schema.NullOr(Schema.String),
  usage: Schema.NullOr(Usage),
  cost_usd: Schema.NullOr(Schema.Finite),
  created_at: Schema.String
}) {}

/** A message about to be stored: the storage assigns `seq`. */
export type NewMessage = Omit<Message, "seq">
