/**
 * Sessions: one conversation of one tenant, addressed by `tenant/id`, and the errors
 * a session can answer with.
 */
import * as Schema from "effect/Schema"
import { Message } from "./Message.ts"

/** A session id: what clients send back to continue a conversation. */
export const SessionId = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,128}$/))

/** A session's own fields, without its messages. */
export class SessionInfo extends Schema.Class<SessionInfo>("@polyagent/runtime/SessionInfo")({
  id: Schema.String,
  tenant: Schema.String,
  /** The agent the session runs with, if any. */
  agent_id: Schema.NullOr(Schema.String),
  created_at: Schema.String,
  updated_at: Schema.String
}) {}

/** A session with its messages in order, as `GET /v1/sessions/{id}` returns it. */
export class Session extends Schema.Class<Session>("@polyagent/runtime/Session")({
  id: Schema.String,
  agent_id: Schema.NullOr(Schema.String),
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

/** The session runs with another agent than the request names; an agent is fixed at creation. */
export class SessionAgentConflict extends Schema.TaggedError<SessionAgentConflict>()("SessionAgentConflict", {
  session_id: Schema.String,
  agent_id: Schema.NullOr(Schema.String)
}) {
  override get message(): string {
    return this.agent_id === null
      ? `session ${this.session_id} runs without an agent`
      : `session ${this.session_id} runs with agent ${this.agent_id}`
  }
}

/**
 * A turn's `Idempotency-Key` is already stored in the session, but not for this request: it came
 * with another message, or its turn has no stored answer.
 */
export class IdempotencyConflict extends Schema.TaggedError<IdempotencyConflict>()("IdempotencyConflict", {
  session_id: Schema.String,
  reason: Schema.Literals(["different_message", "unanswered"])
}) {
  override get message(): string {
    return this.reason === "different_message"
      ? `the Idempotency-Key was already used in session ${this.session_id} with a different message`
      : `the turn of this Idempotency-Key in session ${this.session_id} has no stored answer`
  }
}
