/**
 * The handlers of the API's groups. They authenticate through the `Principal` the
 * middleware provides, send turns to the session actors, and turn every domain or
 * cluster failure into the error envelope.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as ClusterErrors from "effect/cluster/ClusterError"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import { Agent, Identifier, ModelCatalog, Session, SessionActor, Storage } from "@polyagent/runtime"
import { Api, type ChatEvent, type ChatRequest, Principal } from "./Api.ts"
import * as AgentsHandlers from "./AgentsHandlers.ts"
import * as ApiError from "./ApiError.ts"
import * as CompletionsHandlers from "./CompletionsHandlers.ts"
import * as KeysHandlers from "./KeysHandlers.ts"

/** What a call to a session entity can fail with besides the turn's own errors. */
type ClusterError =
  | ClusterErrors.MailboxFull
  | ClusterErrors.AlreadyProcessingMessage
  | ClusterErrors.PersistenceError
  | ClusterErrors.EntityNotAssignedToRunner

type TurnApiError =
  | ApiError.InvalidRequest
  | ApiError.NotFound
  | ApiError.Conflict
  | ApiError.Internal
  | ApiError.UpstreamError
  | ApiError.Unavailable
  | ApiError.UpstreamTimeout

/** The envelope error for a failed turn or cluster call. */
const toApiError = (error: SessionActor.TurnError | ClusterError): Effect.Effect<never, TurnApiError> => {
  switch (error._tag) {
    case "SessionNotFound":
    case "AgentNotFound":
    case "ModelNotFound":
      return ApiError.fail("not_found", error.message)
    case "SessionAgentConflict":
      return ApiError.fail("conflict", error.message)
    case "ContextTooLong":
      return ApiError.fail("invalid_request", error.message)
    case "ModelError":
      return ApiError.fail("upstream_error", error.message)
    case "TurnTimeout":
      return ApiError.fail("upstream_timeout", error.message)
    case "StorageError":
      return Effect.logError("turn failed in storage", error).pipe(
        Effect.andThen(ApiError.fail("internal", "the turn could not be stored"))
      )
    case "MailboxFull":
      // The runner holds `sessions.max_resident` active sessions (or a session has too many queued turns).
      return ApiError.fail("unavailable", "the server is at its limit of active sessions; try again shortly")
    case "EntityNotAssignedToRunner":
    case "AlreadyProcessingMessage":
      return ApiError.fail("unavailable", "the session is moving between runners; try again shortly")
    case "PersistenceError":
      return Effect.logError("cluster storage failed", error).pipe(
        Effect.andThen(ApiError.fail("internal", "the turn could not be delivered"))
      )
  }
}

/** The `error` event that ends a failed stream. */
const errorEvent = (cause: Cause.Cause<SessionActor.TurnError | ClusterError>) =>
  Effect.gen(function* () {
    const failure = Cause.findErrorOption(cause)
    const error = Option.isSome(failure)
      ? yield* Effect.flip(toApiError(failure.value))
      : yield* Effect.logError("stream failed", cause).pipe(Effect.andThen(ApiError.make("internal", "internal error")))
    return { event: "error", data: error } satisfies ChatEvent
  })

const sessionNotFound = (id: string) => ApiError.fail("not_found", `session ${id} not found`)

const ChatHandlers = HttpApiBuilder.group(
  Api,
  "chat",
  Effect.fn(function* (handlers) {
    const clientFor = yield* SessionActor.Session.client
    const catalog = yield* ModelCatalog.ModelCatalog
    const storage = yield* Storage.Storage

    /** The session a request addresses: its own, or a new one. */
    const target = Effect.fnUntraced(function* (request: ChatRequest) {
      const principal = yield* Principal
      const create = request.session_id === undefined
      const sessionId = request.session_id ?? (yield* Identifier.make("sess"))
      const client = clientFor(SessionActor.entityId(principal.tenant, sessionId))
      const input: SessionActor.TurnInput = {
        message: request.message,
        model: request.model ?? null,
        create,
        agent_id: request.agent_id ?? null,
        pin: request.pin ?? false,
        // The end user: the application's own id for them, or else the key that calls.
        user_id: typeof request.metadata?.["user_id"] === "string" ? request.metadata["user_id"] : principal.subject,
        request_id: yield* Effect.service(ApiError.RequestId)
      }
      return { principal, sessionId, create, client, input }
    })

    return handlers
      .handle("send", ({ payload }) =>
        Effect.flatMap(target(payload), ({ client, input }) => client.Send(input).pipe(Effect.catch(toApiError)))
      )
      .handle("stream", ({ payload }) =>
        Effect.gen(function* () {
          const { principal, sessionId, create, client, input } = yield* target(payload)
          // Answer unknown sessions and models with a status, before the event stream starts.
          yield* catalog.resolve(payload.model).pipe(Effect.catch(toApiError))
          if (!create) {
            const session = yield* storage
              .getSession(principal.tenant, sessionId)
              .pipe(Effect.catch(ApiError.storageFailed))
            if (Option.isNone(session)) return yield* toApiError(new Session.SessionNotFound({ session_id: sessionId }))
          } else if (payload.agent_id !== undefined) {
            const agent = yield* storage
              .getAgent(principal.tenant, payload.agent_id)
              .pipe(Effect.catch(ApiError.storageFailed))
            if (Option.isNone(agent)) return yield* toApiError(new Agent.AgentNotFound({ agent_id: payload.agent_id }))
          }
          const turn = client.Stream(input).pipe(
            Stream.flatMap((turnEvent): Stream.Stream<ChatEvent> => {
              switch (turnEvent._tag) {
                case "Delta":
                  return Stream.make({ event: "delta", data: { content: turnEvent.content } })
                case "ToolCall":
                  return Stream.make({ event: "tool_call", data: turnEvent.call })
                case "ToolResult":
                  return Stream.make({ event: "tool_result", data: turnEvent.result })
                case "Done":
                  return Stream.make(
                    { event: "usage", data: turnEvent.result.usage },
                    { event: "done", data: turnEvent.result }
                  )
              }
            }),
            Stream.catchCause((cause) =>
              // A client that went away gets no error event: the stream just ends.
              Cause.hasInterruptsOnly(cause) ? Stream.empty : Stream.fromEffect(errorEvent(cause))
            )
          )
          return Stream.concat(
            Stream.make<Array<ChatEvent>>({ event: "session", data: { session_id: sessionId } }),
            turn
          )
        })
      )
  })
)

const SessionsHandlers = HttpApiBuilder.group(
  Api,
  "sessions",
  Effect.fn(function* (handlers) {
    const clientFor = yield* SessionActor.Session.client
    const storage = yield* Storage.Storage
    return handlers
      .handle("get", ({ params }) =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          const session = yield* storage.getSession(tenant, params.id)
          if (Option.isNone(session)) return yield* sessionNotFound(params.id)
          const messages = yield* storage.listMessages(tenant, params.id)
          const { id, agent_id, created_at, updated_at } = session.value
          return new Session.Session({ id, agent_id, created_at, updated_at, messages })
        }).pipe(Effect.catchTag("StorageError", ApiError.storageFailed))
      )
      .handle("delete", ({ params }) =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          const session = yield* storage.getSession(tenant, params.id).pipe(Effect.catch(ApiError.storageFailed))
          if (Option.isNone(session)) return yield* sessionNotFound(params.id)
          yield* clientFor(SessionActor.entityId(tenant, params.id)).Delete().pipe(Effect.catch(toApiError))
          return { id: params.id, deleted: true } as const
        })
      )
  })
)

const ModelsHandlers = HttpApiBuilder.group(
  Api,
  "models",
  Effect.fn(function* (handlers) {
    const catalog = yield* ModelCatalog.ModelCatalog
    return handlers.handle("list", () =>
      Effect.forEach(catalog.list, (info) =>
        Effect.map(catalog.status(info.id), (status) => ({ ...info, status }))
      ).pipe(Effect.map((data) => ({ data })))
    )
  })
)

const SystemHandlers = HttpApiBuilder.group(
  Api,
  "system",
  Effect.fn(function* (handlers) {
    const storage = yield* Storage.Storage
    return handlers.handle("health", () =>
      storage.ping.pipe(
        Effect.as({ status: "ok" as const, components: { storage: "ok" as const } }),
        Effect.catch((error) =>
          Effect.logError("health check: storage is down", error).pipe(
            Effect.andThen(ApiError.fail("unavailable", "storage is down"))
          )
        )
      )
    )
  })
)

/** All handlers. */
export const layer = Layer.mergeAll(
  ChatHandlers,
  SessionsHandlers,
  AgentsHandlers.layer,
  KeysHandlers.layer,
  ModelsHandlers,
  CompletionsHandlers.layer,
  SystemHandlers
)
