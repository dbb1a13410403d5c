/**
 * The session actor: one `effect/cluster` entity per conversation, addressed by
 * `tenant/sessionId`. It owns the conversation's history (loaded from storage the first
 * time it is needed after activation), runs one turn at a time — many sessions run in
 * parallel — stores the user message and the assistant's answer together before it
 * replies, and passivates when idle. Turns are volatile messages: a turn is stored by the
 * actor itself, so a crash loses at most the turn in flight, never a stored one.
 */
import { Clock, Context, DateTime, Duration, Effect, Layer, Result, Schema, Stream } from "effect"
import type { Prompt, Response } from "effect/ai"
import { Entity } from "effect/cluster"
import { Rpc } from "effect/rpc"
import * as Identifier from "./Identifier.ts"
import { type Message, Role } from "./Message.ts"
import { RequestId } from "./RequestId.ts"
import { ModelCatalog, ModelError, ModelNotFound, fromAiError, type Model } from "./ModelCatalog.ts"
import { SessionAgentConflict, SessionNotFound } from "./Session.ts"
import { type Agent, AgentNotFound } from "./Agent.ts"
import { CallOptions } from "./CallOptions.ts"
import { Storage, StorageError } from "./Storage.ts"
import * as Usage from "./Usage.ts"

/** What a client asks of a turn. `create` is set when the edge minted a new session id. */
export const TurnInput = Schema.Struct({
  message: Schema.String,
  model: Schema.NullOr(Schema.String),
  create: Schema.Boolean,
  /** The agent to run with; only a new session takes one, an existing one must match. */
  agent_id: Schema.NullOr(Schema.String),
  /** The client request this turn serves, passed on to the provider and the logs. */
  request_id: Schema.String
})
export type TurnInput = typeof TurnInput.Type

/** The answer of a turn, as `POST /v1/chat` returns it. */
export class TurnResult extends Schema.Class<TurnResult>("@polyagent/runtime/TurnResult")({
  session_id: Schema.String,
  message: Schema.Struct({ role: Role, content: Schema.String }),
  model: Schema.String,
  provider: Schema.String,
  tool_calls: Schema.Array(Schema.Unknown),
  usage: Usage.Usage,
  cost_usd: Schema.Finite
}) {}

/** A piece of a streamed turn: text as it arrives, then the stored answer. */
export const TurnEvent = Schema.Union([
  Schema.TaggedStruct("Delta", { content: Schema.String }),
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
  SessionAgentConflict,
  AgentNotFound,
  ModelNotFound,
  ModelError,
  StorageError,
  TurnTimeout
])
export type TurnError = typeof TurnError.Type

/** The session entity and its protocol. */
export const Session = Entity.make("Session", [
  Rpc.make("Send", { payload: TurnInput, success: TurnResult, error: TurnError }),
  Rpc.make("Stream", { payload: TurnInput, success: TurnEvent, error: TurnError, stream: true }),
  Rpc.make("Delete", { success: Schema.Boolean, error: StorageError })
])

/** The entity id of a session: tenant ids and session ids never contain `/`. */
export const entityId = (tenant: string, sessionId: string): string => `${tenant}/${sessionId}`

const parseEntityId = (id: string): { readonly tenant: string; readonly sessionId: string } => {
  const slash = id.indexOf("/")
  return { tenant: id.slice(0, slash), sessionId: id.slice(slash + 1) }
}

/** Settings of the session actors. */
export class SessionSettings extends Context.Service<
  SessionSettings,
  {
    /** The bound on one whole turn, model call and storage included. */
    readonly turnTimeout: Duration.Duration
  }
>()("@polyagent/runtime/SessionActor/SessionSettings") {}

const toPrompt = (history: ReadonlyArray<Message>): Array<Prompt.MessageEncoded> =>
  history.flatMap((message): Array<Prompt.MessageEncoded> => {
    switch (message.role) {
      case "system":
        return [{ role: "system", content: message.content }]
      case "user":
        return [{ role: "user", content: message.content }]
      case "assistant":
        return [{ role: "assistant", content: message.content }]
      case "tool":
        return []
    }
  })

const callOptionsOf = (agent: Agent | undefined): CallOptions =>
  agent === undefined
    ? {}
    : {
        temperature: agent.parameters.temperature,
        topP: agent.parameters.top_p,
        maxTokens: agent.parameters.max_tokens
      }

const usageOf = (usage: Response.Usage): Usage.Usage =>
  Usage.make(usage.inputTokens.total ?? 0, usage.outputTokens.total ?? 0)

/** Registers the session entity with the cluster's sharding. */
export const layer = (options: {
  readonly maxIdleTime: Duration.Input
  readonly mailboxCapacity?: number | undefined
}) =>
  Session.toLayer(
    Effect.gen(function* () {
      const { tenant, sessionId } = parseEntityId((yield* Entity.CurrentAddress).entityId)
      const storage = yield* Storage
      const catalog = yield* ModelCatalog
      const settings = yield* SessionSettings
      const timeoutMs = Duration.toMillis(settings.turnTimeout)

      // undefined until loaded; loaded lazily so a storage failure answers the caller.
      let history: Array<Message> | undefined
      let exists = false
      let agentId: string | null = null

      const nowIso = Clock.currentTimeMillis.pipe(Effect.map((ms) => DateTime.formatIso(DateTime.makeUnsafe(ms))))

      const load = Effect.gen(function* () {
        if (history !== undefined) return history
        const session = yield* storage.getSession(tenant, sessionId)
        exists = session._tag === "Some"
        agentId = session._tag === "Some" ? session.value.agent_id : null
        history = exists ? [...(yield* storage.listMessages(tenant, sessionId))] : []
        return history
      })

      /** Everything a turn needs before the model call; fails fast on an unknown session or model. */
      const prepare = Effect.fn("SessionActor.prepare")(function* (input: TurnInput) {
        const past = yield* load
        if (!exists) {
          if (!input.create) return yield* new SessionNotFound({ session_id: sessionId })
          if (input.agent_id !== null) yield* findAgent(input.agent_id)
          yield* storage.createSession(tenant, sessionId, yield* nowIso, input.agent_id)
          exists = true
          agentId = input.agent_id
        } else if (input.agent_id !== null && input.agent_id !== agentId) {
          return yield* new SessionAgentConflict({ session_id: sessionId, agent_id: agentId })
        }
        // Read on every turn: a changed agent applies to the sessions that run with it.
        const agent = agentId === null ? undefined : yield* findAgent(agentId)
        const model = yield* catalog.resolve(input.model ?? agent?.model ?? undefined)
        const user: Message = {
          id: yield* Identifier.make("msg"),
          seq: 0,
          role: "user",
          content: input.message,
          model: null,
          provider: null,
          usage: null,
          cost_usd: null,
          created_at: yield* nowIso
        }
        const system: Array<Prompt.MessageEncoded> =
          agent === undefined || agent.system_prompt === "" ? [] : [{ role: "system", content: agent.system_prompt }]
        return { model, user, prompt: [...system, ...toPrompt([...past, user])], callOptions: callOptionsOf(agent) }
      })

      const findAgent = (id: string) =>
        Effect.flatMap(storage.getAgent(tenant, id), (found) =>
          found._tag === "Some" ? Effect.succeed(found.value) : Effect.fail(new AgentNotFound({ agent_id: id }))
        )

      /** Stores the user message and the answer in one transaction, then remembers them. */
      const commit = Effect.fn("SessionActor.commit")(function* (
        model: Model,
        user: Message,
        text: string,
        usage: Usage.Usage
      ) {
        const cost = Usage.cost(usage, model.info.cost_per_1k_tokens)
        const assistant: Message = {
          id: yield* Identifier.make("msg"),
          seq: 0,
          role: "assistant",
          content: text,
          model: model.info.id,
          provider: model.info.provider,
          usage,
          cost_usd: cost,
          created_at: yield* nowIso
        }
        const stored = yield* storage.appendMessages(tenant, sessionId, [user, assistant])
        history?.push(...stored)
        return new TurnResult({
          session_id: sessionId,
          message: { role: "assistant", content: text },
          model: model.info.id,
          provider: model.info.provider,
          tool_calls: [],
          usage,
          cost_usd: cost
        })
      })

      const timedOut = Effect.fail(new TurnTimeout({ timeout_ms: timeoutMs }))

      const send = Effect.fn("SessionActor.send")(
        function* (input: TurnInput) {
          const { model, user, prompt, callOptions } = yield* prepare(input)
          const response = yield* model.languageModel.generateText({ prompt }).pipe(
            Effect.mapError((error) => fromAiError(model.info, error)),
            Effect.provideService(RequestId, input.request_id),
            Effect.provideService(CallOptions, callOptions)
          )
          return yield* commit(model, user, response.text, usageOf(response.usage))
        },
        Effect.timeoutOrElse({ duration: settings.turnTimeout, orElse: () => timedOut })
      )

      const stream = (input: TurnInput): Stream.Stream<TurnEvent, TurnError> =>
        Stream.unwrap(
          Effect.map(prepare(input), ({ model, user, prompt, callOptions }) => {
            let text = ""
            let usage = Usage.make(0, 0)
            const deltas = model.languageModel.streamText({ prompt }).pipe(
              Stream.provideService(RequestId, input.request_id),
              Stream.provideService(CallOptions, callOptions),
              Stream.mapError((error) => fromAiError(model.info, error)),
              Stream.filterMap((part) => {
                if (part.type === "text-delta") {
                  text += part.delta
                  return Result.succeed<TurnEvent>({ _tag: "Delta", content: part.delta })
                }
                if (part.type === "finish") usage = usageOf(part.usage)
                return Result.failVoid
              })
            )
            const done = Stream.fromEffect(
              Effect.suspend(() => commit(model, user, text, usage)).pipe(
                Effect.map((result): TurnEvent => ({ _tag: "Done", result }))
              )
            )
            return Stream.concat(deltas, done)
          })
        ).pipe(Stream.interruptWhen(Effect.sleep(settings.turnTimeout).pipe(Effect.andThen(timedOut))))

      return Session.of({
        Send: ({ payload }) => send(payload),
        Stream: ({ payload }) => stream(payload),
        Delete: () =>
          Effect.gen(function* () {
            const deleted = yield* storage.deleteSession(tenant, sessionId)
            history = []
            exists = false
            agentId = null
            return deleted
          })
      })
    }),
    {
      maxIdleTime: options.maxIdleTime,
      mailboxCapacity: options.mailboxCapacity,
      // A failing turn answers its caller; it must never be replayed or block the session.
      disableFatalDefects: true
    }
  )

/** Settings as a layer. */
export const layerSettings = (settings: SessionSettings["Service"]): Layer.Layer<SessionSettings> =>
  Layer.succeed(SessionSettings, settings)
