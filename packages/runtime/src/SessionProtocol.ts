/**
 * The protocol of the session actors: what a turn asks and answers, how it fails, the entity
 * (`Session`) and its messages, and where a session lives — its entity id `tenant/sessionId`, and
 * ids of new sessions minted on the runner that takes their first turn. The behaviour is
 * `SessionActor.ts`; the edge and the tests speak to sessions through this module.
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Entity from "effect/cluster/Entity"
import * as EntityId from "effect/cluster/EntityId"
import * as Sharding from "effect/cluster/Sharding"
import * as Rpc from "effect/rpc/Rpc"
import { ToolExecutor } from "@polyagent/tools"
import * as ContextWindow from "./ContextWindow.ts"
import * as Identifier from "./Identifier.ts"
import { Role, ToolCallRecord } from "./Message.ts"
import { BudgetExceeded } from "./Budgets.ts"
import { ModelError, ModelNotFound } from "./ModelCatalog.ts"
import { ModelNotAllowed, NoCapableModel } from "./ModelRouter.ts"
import { IdempotencyConflict, SessionAgentConflict, SessionNotFound } from "./Session.ts"
import { AgentNotFound } from "./Agent.ts"
import { Decision, SafetyStop } from "./Safety.ts"
import { StorageError } from "./Storage.ts"
import * as Usage from "./Usage.ts"

/** What a client asks of a turn. `create` is set when the edge minted a new session id. */
export const TurnInput = Schema.Struct({
  message: Schema.String,
  model: Schema.NullOr(Schema.String),
  create: Schema.Boolean,
  /** The agent to run with; only a new session takes one, an existing one must match. */
  agent_id: Schema.NullOr(Schema.String),
  /** Keep this message in the model's context however long the conversation grows. */
  pin: Schema.Boolean,
  /** The end user the turn is for: whose facts an agent with memory remembers and recalls. */
  user_id: Schema.NullOr(Schema.String),
  /** The client request this turn serves, passed on to the provider and the logs. */
  request_id: Schema.String,
  /**
   * The client's `Idempotency-Key`: stored with the turn; a turn whose key the session already
   * stored answers with the stored answer instead of running again.
   */
  idempotency_key: Schema.NullOr(Schema.String),
  /** The API key the turn is made with, whose budgets it spends (null: the tenant's only). */
  key_id: Schema.NullOr(Schema.String),
  /** The names that key may ask for (`ModelRouter.RouteRequest.allowed`); absent or null: any. */
  models: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String)))
})
export type TurnInput = typeof TurnInput.Type

/** The answer of a turn, as `POST /v1/chat` returns it. */
export class TurnResult extends Schema.Class<TurnResult>("@polyagent/runtime/TurnResult")({
  session_id: Schema.String,
  message: Schema.Struct({ role: Role, content: Schema.String }),
  model: Schema.String,
  provider: Schema.String,
  tool_calls: Schema.Array(ToolExecutor.ToolResult),
  usage: Usage.Usage,
  cost_usd: Schema.Finite,
  /** The safety decision on the turn, when a policy took one (`disclaim`, `escalate`, `refuse`). */
  safety: Schema.optionalKey(Decision)
}) {}

/**
 * A piece of a streamed turn: `Started` with the answer's first piece, then text as it arrives,
 * tool calls and their results, a failover when the answer moves to another model, then the
 * stored answer. A turn that fails before its answer began (unknown session, agent or model, a
 * prompt over the window, a spent budget, every model failing before its first token) fails
 * before `Started`, so the edge can still answer with a status.
 */
export const TurnEvent = Schema.Union([
  /** The turn's answer began; `model` is the one answering it first. */
  Schema.TaggedStruct("Started", { model: Schema.String }),
  Schema.TaggedStruct("Delta", { content: Schema.String }),
  Schema.TaggedStruct("ToolCall", { call: ToolCallRecord }),
  Schema.TaggedStruct("ToolResult", { result: ToolExecutor.ToolResult }),
  /** The answer broke off on model `from` and goes on with model `to`. */
  Schema.TaggedStruct("Failover", { from: Schema.String, to: Schema.String }),
  /** A safety policy decided (`disclaim`, `escalate`, `refuse`): the SSE `safety` event. */
  Schema.TaggedStruct("Safety", { decision: Decision }),
  Schema.TaggedStruct("Done", { result: TurnResult })
])
export type TurnEvent = typeof TurnEvent.Type

/** The turn took longer than the configured request timeout and was stopped. */
export class TurnTimeout extends Schema.TaggedError<TurnTimeout>()("TurnTimeout", {
  timeout_ms: Schema.Number
}) {
  override get message(): string {
    return `the turn did not finish within ${this.timeout_ms} ms`
  }
}

/** Every way a turn can fail. */
export const TurnError = Schema.Union([
  SessionNotFound,
  ContextWindow.ContextTooLong,
  SessionAgentConflict,
  IdempotencyConflict,
  AgentNotFound,
  ModelNotFound,
  NoCapableModel,
  ModelNotAllowed,
  BudgetExceeded,
  ModelError,
  StorageError,
  TurnTimeout,
  SafetyStop
])
export type TurnError = typeof TurnError.Type

/** The session entity and its protocol. */
export const Session = Entity.make("Session", [
  Rpc.make("Send", { payload: TurnInput, success: TurnResult, error: TurnError }),
  Rpc.make("Stream", { payload: TurnInput, success: TurnEvent, error: TurnError, stream: true }),
  Rpc.make("Delete", { success: Schema.Boolean, error: StorageError }),
  /** Finishes a turn a crash left between its tool calls and its answer; answers whether there was one. */
  Rpc.make("Resume", { success: Schema.Boolean, error: TurnError })
])

/** The entity id of a session: tenant ids and session ids never contain `/`. */
export const entityId = (tenant: string, sessionId: string): string => `${tenant}/${sessionId}`

/**
 * Mints the ids of new sessions, each one that this runner holds, so that a session starts where
 * its first turn arrived instead of one hop away.
 *
 * **Details**: with N runners an id lands on this one about once in N draws; a few are drawn
 * (hashing an id costs nothing next to a hop to another process), and the last is kept should
 * none land here (the runner holds no shard yet, or is stopping).
 */
export const sessionIds = Effect.map(Effect.service(Sharding.Sharding), (sharding) => {
  const isLocal = (tenant: string, id: string) => {
    const entity = EntityId.make(entityId(tenant, id))
    return sharding.hasShardId(sharding.getShardId(entity, Session.getShardGroup(entity)))
  }
  return Effect.fnUntraced(function* (tenant: string) {
    let id = yield* Identifier.make("sess")
    for (let draws = 1; draws < 16 && !isLocal(tenant, id); draws++) id = yield* Identifier.make("sess")
    return id
  })
})

/** The tenant and session id of an entity id. */
export const parseEntityId = (id: string): { readonly tenant: string; readonly sessionId: string } => {
  const slash = id.indexOf("/")
  return { tenant: id.slice(0, slash), sessionId: id.slice(slash + 1) }
}

/** Settings of the session actors. */
export class SessionSettings extends Context.Service<
  SessionSettings,
  {
    /** The bound on one whole turn, model calls, tools and storage included. */
    readonly turnTimeout: Duration.Duration
    /** The most model → tools steps of one turn; the last step answers without tools. */
    readonly maxToolSteps: number
    /** What to do when a conversation outgrows the model's context window. */
    readonly contextStrategy: "drop_oldest" | "summarise"
  }
>()("@polyagent/runtime/SessionProtocol/SessionSettings") {}

/** Settings as a layer. */
export const layerSettings = (settings: SessionSettings["Service"]): Layer.Layer<SessionSettings> =>
  Layer.succeed(SessionSettings, settings)
