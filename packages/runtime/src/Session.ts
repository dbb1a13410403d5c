/**
 * Sessions: one conversation of one tenant, addressed by `tenant/id`, and the errors
 * a session can answer with.
 */
import { Schema } from "effect"
import { Message } from "./Message.ts"

/** A session id: what clients send back to continue a conversation. */
export const SessionId = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,128}$/))

/** A session's own fields, without its messages. */
export class SessionInfo extends Schema.Class<SessionInfo>("@polyagent/runtime/SessionInfo")({
  id: Schema.String,
  tenant: Schema.String,
  created_at: Schema.String,
  updated_at: Schema.String
}) {}

/** A session with its messages in order, as `GET /v1/sessions/{id}` returns it. */
export class Session extends Schema.Class<Session>("@polyagent/runtime/Session")({
  id: Schema.String,
  created_at: Schema.String,
  updated_at: Schema.String,
  messages: Schema.Array(Message)
}) {}

/** The session does not exist for this tenant (another tenant's session answers the same). */
export class SessionNotFound extends Schema.TaggedError<SessionNotFound>()("SessionNotFound", {
  session_id: Schema.String
}) {
  override get message(): string {
    return `session ${this.session_id} not found`
  }
}
