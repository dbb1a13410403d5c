/**
 * The handlers of the API's groups. They authenticate through the `Principal` the
 * middleware provides, send turns to the session actors, and turn every domain or
 * cluster failure into the error envelope.
 */
import * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Pull from "effect/Pull"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type * as ClusterErrors from "effect/cluster/ClusterError"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import {
  type Audit,
  type Budgets,
  type Experiments,
  Identifier,
  type KeyGuards,
  ModelCatalog,
  ModelHealth,
  type ModelRouter,
  Safety,
  Session,
  SessionProtocol,
  Storage,
  type TenantProviderKeys,
  type WorkflowRuns,
  type WorkflowStorage
} from "@polyagent/runtime"
import { Api, type ChatEvent, type ChatHeaders, type ChatRequest, HealthDown, healthDown, Principal } from "./Api.ts"
import * as AgentsHandlers from "./AgentsHandlers.ts"
import * as AuditHandlers from "./AuditHandlers.ts"
import * as ApiError from "./ApiError.ts"
import * as Authentication from "./Authentication.ts"
import * as ExperimentsHandlers from "./ExperimentsHandlers.ts"
import * as KeysHandlers from "./KeysHandlers.ts"
import { Readiness } from "./Readiness.ts"
import * as RequestLog from "./RequestLog.ts"
import * as TenantProvidersHandlers from "./TenantProvidersHandlers.ts"
import * as UsageHandlers from "./UsageHandlers.ts"
import * as WorkflowsHandlers from "./WorkflowsHandlers.ts"

/** What a call to a session entity can fail with besides the turn's own errors. */
type ClusterError =
  | ClusterErrors.MailboxFull
  | ClusterErrors.AlreadyProcessingMessage
  | ClusterErrors.PersistenceError
  | ClusterErrors.EntityNotAssignedToRunner

type TurnApiError =
  | ApiError.InvalidRequest
  | ApiError.BudgetExceeded
  | ApiError.Forbidden
  | ApiError.NotFound
  | ApiError.Conflict
  | ApiError.RateLimited
  | ApiError.Internal
  | ApiError.UpstreamError
  | ApiError.Unavailable
  | ApiError.UpstreamTimeout

/** The envelope error for a failed turn (see `ApiError.ofTurnError`) or cluster call. */
const toApiError = (error: SessionProtocol.TurnError | ClusterError): Effect.Effect<never, TurnApiError> => {
  switch (error._tag) {
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
    default:
      return ApiError.failTurn(error)
  }
}

/**
 * The events that end a failed stream: the `error` event, after a `safety` event when a safety
 * policy stopped the turn.
 */
const endEvents = (cause: Cause.Cause<SessionProtocol.TurnError | ClusterError>) =>
  Effect.map(errorEvent(cause), (error): ReadonlyArray<ChatEvent> => {
    const failure = Cause.findErrorOption(cause)
    if (Option.isNone(failure) || failure.value._tag !== "SafetyStop") return [error]
    const { action, category } = failure.value
    return [{ event: "safety", data: { action, category } }, error]
  })

/** The `error` event that ends a failed stream. */
const errorEvent = (cause: Cause.Cause<SessionProtocol.TurnError | ClusterError>) =>
  Effect.gen(function* () {
    const failure = Cause.findErrorOption(cause)
    const error = Option.isSome(failure)
      ? yield* Effect.flip(toApiError(failure.value))
      : Cause.hasInterruptsOnly(cause)
        ? // The session stopped mid-turn (its process is stopping, or lost its shard): retry it.
          yield* ApiError.make("unavailable", "the turn was interrupted; try again")
        : yield* Effect.logError("stream failed", cause).pipe(
            Effect.andThen(ApiError.make("internal", "internal error"))
          )
    return { event: "error", data: error } satisfies ChatEvent
  })

/** The first events of a streamed turn, or the safety policy's stop before it started. */
type Started = Result.Result<ReadonlyArray<SessionProtocol.TurnEvent>, Safety.SafetyStop>

const sessionNotFound = (id: string) => ApiError.fail("not_found", `session ${id} not found`)

/** What a turn in flight fails with once storage is seen down: it could not be stored. */
const storageDown = new Storage.StorageError({ operation: "turn", unavailable: true, cause: "storage is down" })

/** A streamed turn's event as an SSE event of `POST /v1/chat/stream`. */
const chatEvents = (turnEvent: SessionProtocol.TurnEvent, sessionId: string): Arr.NonEmptyReadonlyArray<ChatEvent> => {
  switch (turnEvent._tag) {
    case "Started":
      return [{ event: "session", data: { session_id: sessionId } }]
    case "Failover":
      return [{ event: "failover", data: { from: turnEvent.from, to: turnEvent.to } }]
    case "Safety":
      return [{ event: "safety", data: turnEvent.decision }]
    case "Delta":
      return [{ event: "delta", data: { content: turnEvent.content } }]
    case "ToolCall":
      return [{ event: "tool_call", data: turnEvent.call }]
    case "ToolResult":
      return [{ event: "tool_result", data: turnEvent.result }]
    case "Done":
      return [
        { event: "usage", data: turnEvent.result.usage },
        { event: "done", data: turnEvent.result }
      ]
  }
}

const ChatHandlers = HttpApiBuilder.group(
  Api,
  "chat",
  Effect.fn(function* (handlers) {
    const clientFor = yield* SessionProtocol.Session.client
    const newSessionId = yield* SessionProtocol.sessionIds
    const readiness = yield* Readiness
    const whenStorageDown = Effect.andThen(readiness.down, Effect.fail(storageDown))

    /** The session a request addresses: its own, or a new one. */
    const target = Effect.fnUntraced(function* (request: ChatRequest, headers: ChatHeaders) {
      const principal = yield* Principal
      const create = request.session_id === undefined
      const sessionId = request.session_id ?? (yield* newSessionId(principal.tenant))
      const client = clientFor(SessionProtocol.entityId(principal.tenant, sessionId))
      const input: SessionProtocol.TurnInput = {
        message: request.message,
        model: request.model ?? null,
        create,
        agent_id: request.agent_id ?? null,
        pin: request.pin ?? false,
        // The end user: the application's own id for them, or else the key that calls.
        user_id: typeof request.metadata?.["user_id"] === "string" ? request.metadata["user_id"] : principal.subject,
        request_id: yield* Effect.service(ApiError.RequestId),
        // Without the client's key, a key of this request's own: the cluster sends a turn again when
        // the process running it died, and the session must answer it from storage if it was stored.
        idempotency_key: headers["idempotency-key"] ?? (yield* Identifier.make("turn")),
        key_id: Authentication.payerOf(principal).keyId,
        models: principal.models
      }
      return { sessionId, client, input }
    })

    return handlers
      .handle("send", ({ payload, headers }) =>
        Effect.flatMap(target(payload, headers), ({ client, input }) =>
          Effect.raceFirst(client.Send(input), whenStorageDown).pipe(
            Effect.tap((result) => RequestLog.recordModel(result.model)),
            Effect.catch(toApiError)
          )
        )
      )
      .handle("stream", ({ payload, headers }) =>
        Effect.gen(function* () {
          const { sessionId, client, input } = yield* target(payload, headers)
          // The turn's first events, up to `Started`, decide the status: a turn that cannot start
          // (unknown session, agent or model, a prompt over the window, a conflict) answers with its
          // status before the event stream begins. The pull lives in the request's scope, which
          // closes once the response has been streamed.
          const pull = yield* Stream.toPull(
            client.Stream(input).pipe(
              Stream.interruptWhen(whenStorageDown),
              Stream.tap((turnEvent) =>
                turnEvent._tag === "Started"
                  ? RequestLog.recordModel(turnEvent.model)
                  : turnEvent._tag === "Done"
                    ? RequestLog.recordModel(turnEvent.result.model)
                    : Effect.void
              )
            )
          )
          const first = yield* pull.pipe(
            Pull.catchDone(() => Effect.succeed<ReadonlyArray<SessionProtocol.TurnEvent>>([])),
            Effect.map((events): Started => Result.succeed(events)),
            // A request a safety policy stopped is told in events, as a stopped answer is (README).
            Effect.catch((error) =>
              error._tag === "SafetyStop" ? Effect.succeed<Started>(Result.fail(error)) : toApiError(error)
            )
          )
          if (Result.isFailure(first)) return Stream.fromIterableEffect(endEvents(Cause.fail(first.failure)))
          return Stream.concat(Stream.fromIterable(first.success), Stream.fromPull(Effect.succeed(pull))).pipe(
            // Chunk by chunk: the events that arrived together are encoded and written together.
            Stream.mapArray((turnEvents) => Arr.flatMap(turnEvents, (turnEvent) => chatEvents(turnEvent, sessionId))),
            // A client that goes away interrupts this stream itself, which ends it without this.
            Stream.catchCause((cause) => Stream.fromIterableEffect(endEvents(cause)))
          )
        })
      )
  })
)

const SessionsHandlers = HttpApiBuilder.group(
  Api,
  "sessions",
  Effect.fn(function* (handlers) {
    const clientFor = yield* SessionProtocol.Session.client
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
          yield* clientFor(SessionProtocol.entityId(tenant, params.id)).Delete().pipe(Effect.catch(toApiError))
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
    const health = yield* ModelHealth.ModelHealth
    return handlers
      .handle("list", () =>
        Effect.sync(() => ({ data: catalog.list.map((info) => ({ ...info, status: health.report(info.id).status })) }))
      )
      .handle("health", ({ params }) =>
        catalog.find(params.id) === undefined
          ? ApiError.fail("not_found", `model ${params.id} not found; GET /v1/models lists the models you can use`)
          : Effect.sync(() => health.report(params.id))
      )
  })
)

const SystemHandlers = HttpApiBuilder.group(
  Api,
  "system",
  Effect.fn(function* (handlers) {
    const readiness = yield* Readiness
    return handlers.handle("health", () =>
      readiness.isUp()
        ? Effect.succeed({ status: "ok" as const, components: { storage: "ok" as const } })
        : Effect.fail(new HealthDown(healthDown))
    )
  })
)

/** `/v1/feedback` and `/v1/experiments/{id}`, on the runtime's experiments. */
const ExperimentsRoutes: Layer.Layer<
  Layer.Success<typeof ExperimentsHandlers.layer>,
  never,
  Experiments.Experiments | Layer.Services<typeof ExperimentsHandlers.layer>
> = ExperimentsHandlers.layer

/** `/v1/keys`, on storage, the audit log, the keys' guards and the router (which checks the names a key may ask for). */
const KeysRoutes: Layer.Layer<
  Layer.Success<typeof KeysHandlers.layer>,
  never,
  ModelRouter.ModelRouter | KeyGuards.KeyGuards | Layer.Services<typeof KeysHandlers.layer>
> = KeysHandlers.layer

/** `/v1/tenants/{tenant}/providers`, on the tenants' sealed provider keys. */
const TenantProvidersRoutes: Layer.Layer<
  Layer.Success<typeof TenantProvidersHandlers.layer>,
  never,
  TenantProviderKeys.TenantProviderKeys | Layer.Services<typeof TenantProvidersHandlers.layer>
> = TenantProvidersHandlers.layer

/** `/v1/audit`, on the runtime's audit log. */
const AuditRoutes: Layer.Layer<
  Layer.Success<typeof AuditHandlers.layer>,
  never,
  Audit.Audit | Layer.Services<typeof AuditHandlers.layer>
> = AuditHandlers.layer

/** `/v1/usage`, on the ledger (and the budgets' writer, flushed before a report). */
const UsageRoutes: Layer.Layer<
  Layer.Success<typeof UsageHandlers.layer>,
  never,
  Budgets.Budgets | Layer.Services<typeof UsageHandlers.layer>
> = UsageHandlers.layer

/** `/v1/workflows`, on the runtime's workflow runs and their tables. */
const WorkflowsRoutes: Layer.Layer<
  Layer.Success<typeof WorkflowsHandlers.layer>,
  never,
  WorkflowRuns.WorkflowRuns | WorkflowStorage.WorkflowStorage | Layer.Services<typeof WorkflowsHandlers.layer>
> = WorkflowsHandlers.layer

/** All handlers but the OpenAI-compatible route's (`CompletionsHandlers.ts`). */
export const layer = Layer.mergeAll(
  ChatHandlers,
  SessionsHandlers,
  AgentsHandlers.layer,
  KeysRoutes,
  TenantProvidersRoutes,
  UsageRoutes,
  ModelsHandlers,
  ExperimentsRoutes,
  AuditRoutes,
  SystemHandlers,
  WorkflowsRoutes
)
