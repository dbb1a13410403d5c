/**
 * The HTTP API of PolyAgent as one `HttpApi` definition: the single source of the
 * server's routing and decoding, of `api/openapi/polyagent-api.yaml` and of the typed
 * client. Wire names are snake_case (../shared/API.md).
 */
import * as Schema from "effect/Schema"
import * as HttpApi from "effect/http-api/HttpApi"
import * as HttpApiEndpoint from "effect/http-api/HttpApiEndpoint"
import * as HttpApiGroup from "effect/http-api/HttpApiGroup"
import * as HttpApiSchema from "effect/http-api/HttpApiSchema"
import * as OpenApi from "effect/http-api/OpenApi"
import {
  Agent as AgentModule,
  Experiments,
  Message,
  ModelCatalog,
  ModelHealth,
  Safety,
  Session,
  SessionProtocol,
  Usage
} from "@polyagent/runtime"
import { ToolExecutor } from "@polyagent/tools"
import { AuditGroup, Deleted, KeysGroup, TenantProvidersGroup } from "./AdminApi.ts"
import * as ApiError from "./ApiError.ts"
import { Authentication, RequestErrors } from "./ApiSecurity.ts"
import * as ChatCompletions from "./ChatCompletions.ts"
import { WorkflowsGroup } from "./WorkflowsApi.ts"

export * from "./AdminApi.ts"
export * from "./ApiSecurity.ts"
export * from "./WorkflowsApi.ts"

const MAX_MESSAGE_CHARS = 200_000

/** The body of `POST /v1/chat` and `POST /v1/chat/stream`. */
export const ChatRequest = Schema.Struct({
  message: Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(MAX_MESSAGE_CHARS)),
  session_id: Schema.optional(Session.SessionId),
  agent_id: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(200))),
  use_tools: Schema.optional(Schema.Boolean),
  /** Keep this message in the model's context however long the conversation grows. */
  pin: Schema.optional(Schema.Boolean),
  metadata: Schema.optional(Schema.Record(Schema.String, Schema.Unknown))
})
export type ChatRequest = typeof ChatRequest.Type

/** 1–255 printable ASCII characters, as Stripe and OpenAI clients send them. */
const IdempotencyKey = Schema.String.check(
  Schema.isMinLength(1),
  Schema.isMaxLength(255),
  Schema.isPattern(/^[ -~]*$/, { expected: "printable ASCII characters" })
).annotate({
  description:
    "1-255 printable ASCII characters (else 400). Makes a retried turn safe: a turn whose key is already stored in the session is not run again; it answers " +
    "with the stored answer (a stream replays it as session, delta, usage, done). The same key with another " +
    "message answers 409 conflict. Keys are kept per session, so a turn that creates a session (no session_id) " +
    "always runs."
})

/** The headers of `POST /v1/chat` and `POST /v1/chat/stream`. */
export const ChatHeaders = Schema.Struct({ "idempotency-key": Schema.optional(IdempotencyKey) })
export type ChatHeaders = typeof ChatHeaders.Type

const event = <const Name extends string, S extends Schema.Top>(name: Name, data: S) =>
  Schema.Struct({ event: Schema.Literal(name), data: Schema.fromJsonString(data) })

const ErrorEnvelope = Schema.Struct({
  error: Schema.Struct({ type: Schema.String, message: Schema.String, request_id: Schema.String })
})

/** The events of `POST /v1/chat/stream`, in the order they come. */
export const ChatEvent = Schema.Union([
  event("session", Schema.Struct({ session_id: Schema.String })),
  event("delta", Schema.Struct({ content: Schema.String })),
  event("tool_call", Message.ToolCallRecord),
  event("tool_result", ToolExecutor.ToolResult),
  event("failover", Schema.Struct({ from: Schema.String, to: Schema.String })),
  event("safety", Safety.Decision),
  event("usage", Usage.Usage),
  event("done", SessionProtocol.TurnResult),
  event("error", ErrorEnvelope)
])
export type ChatEvent = typeof ChatEvent.Type

const turnErrors = [
  ApiError.InvalidRequest,
  ApiError.BudgetExceeded,
  ApiError.Forbidden,
  ApiError.NotFound,
  ApiError.Conflict,
  ApiError.RateLimited,
  ApiError.Internal,
  ApiError.UpstreamError,
  ApiError.Unavailable,
  ApiError.UpstreamTimeout
] as const

export class ChatGroup extends HttpApiGroup.make("chat")
  .add(
    HttpApiEndpoint.post("send", "/v1/chat", {
      payload: ChatRequest,
      headers: ChatHeaders,
      success: SessionProtocol.TurnResult,
      error: turnErrors
    }),
    HttpApiEndpoint.post("stream", "/v1/chat/stream", {
      payload: ChatRequest,
      headers: ChatHeaders,
      success: HttpApiSchema.StreamSse({ events: ChatEvent }),
      error: turnErrors
    })
  )
  .middleware(Authentication) {}

export class SessionsGroup extends HttpApiGroup.make("sessions")
  .add(
    HttpApiEndpoint.get("get", "/v1/sessions/:id", {
      params: { id: Schema.String },
      success: Session.Session,
      error: [ApiError.NotFound, ApiError.Internal]
    }),
    HttpApiEndpoint.delete("delete", "/v1/sessions/:id", {
      params: { id: Schema.String },
      success: Deleted,
      error: turnErrors
    })
  )
  .middleware(Authentication) {}

/** A model of `GET /v1/models`, with its health status (`healthy`, `degraded`, `unavailable`). */
export const ModelEntry = Schema.Struct({
  ...ModelCatalog.ModelInfo.fields,
  status: ModelHealth.HealthStatus
})

export class ModelsGroup extends HttpApiGroup.make("models")
  .add(
    HttpApiEndpoint.get("list", "/v1/models", { success: Schema.Struct({ data: Schema.Array(ModelEntry) }) }),
    HttpApiEndpoint.get("health", "/v1/models/:id/health", {
      params: { id: Schema.String },
      success: ModelHealth.HealthReport,
      error: ApiError.NotFound
    }).annotateMerge(
      OpenApi.annotations({
        description:
          "The model's rolling health window (merged over every process sharing it) and its circuit breaker. An id with a slash is sent URL-encoded (%2F)."
      })
    )
  )
  .middleware(Authentication) {}

/**
 * An event of a streamed completion: `data:` lines of JSON chunks, then `[DONE]`; `safety`
 * `{action, category}` when a safety policy decided; `error` on failure.
 */
export const CompletionEvent = Schema.Struct({
  event: Schema.Literals(["message", "safety", "error"]),
  data: Schema.String
})
export type CompletionEvent = typeof CompletionEvent.Type

export class OpenAiGroup extends HttpApiGroup.make("openai")
  .add(
    HttpApiEndpoint.post("completions", "/v1/chat/completions", {
      payload: ChatCompletions.Request,
      success: [ChatCompletions.Completion, HttpApiSchema.StreamSse({ events: CompletionEvent })],
      error: turnErrors
    })
  )
  .middleware(Authentication)
  .annotateMerge(
    OpenApi.annotations({
      description: "OpenAI-compatible, stateless: point the official openai SDK at http://host:port/v1"
    })
  ) {}

export class AgentsGroup extends HttpApiGroup.make("agents")
  .add(
    HttpApiEndpoint.post("create", "/v1/agents", {
      payload: AgentModule.AgentCreate,
      success: AgentModule.Agent.pipe(HttpApiSchema.status(201)),
      error: [ApiError.Forbidden, ApiError.Internal]
    }),
    HttpApiEndpoint.get("list", "/v1/agents", {
      success: Schema.Struct({ data: Schema.Array(AgentModule.Agent) }),
      error: ApiError.Internal
    }),
    HttpApiEndpoint.get("get", "/v1/agents/:id", {
      params: { id: Schema.String },
      success: AgentModule.Agent,
      error: [ApiError.NotFound, ApiError.Internal]
    }),
    HttpApiEndpoint.patch("update", "/v1/agents/:id", {
      params: { id: Schema.String },
      payload: AgentModule.AgentPatch,
      success: AgentModule.Agent,
      error: [ApiError.NotFound, ApiError.Forbidden, ApiError.Internal]
    }),
    HttpApiEndpoint.delete("delete", "/v1/agents/:id", {
      params: { id: Schema.String },
      success: Deleted,
      error: [ApiError.NotFound, ApiError.Forbidden, ApiError.Internal]
    })
  )
  .middleware(Authentication) {}

/** One group of `GET /v1/usage`: the group's value under the name of what was grouped by, and its sums. */
export const UsageEntry = Schema.Struct({
  model: Schema.optional(Schema.String),
  key: Schema.optional(Schema.NullOr(Schema.String)),
  day: Schema.optional(Schema.String),
  tenant: Schema.optional(Schema.String),
  requests: Schema.Int,
  prompt_tokens: Schema.Int,
  completion_tokens: Schema.Int,
  cost_usd: Schema.Number
})

export class UsageGroup extends HttpApiGroup.make("usage")
  .add(
    HttpApiEndpoint.get("report", "/v1/usage", {
      query: {
        group_by: Schema.optional(Schema.String),
        from: Schema.optional(Schema.String),
        to: Schema.optional(Schema.String)
      },
      success: Schema.Struct({ data: Schema.Array(UsageEntry) }),
      error: [ApiError.InvalidRequest, ApiError.Internal, ApiError.Unavailable]
    })
  )
  .middleware(Authentication)
  .annotateMerge(
    OpenApi.annotations({
      description:
        "Usage from the ledger, one entry per group: `group_by` is model (the default), key, day (UTC) or tenant; " +
        "`from` and `to` are dates (YYYY-MM-DD, both included) or ISO 8601 times (`to` excluded). A user or " +
        "builder sees their own key's usage, an admin their tenant's; an admin of the platform tenant `default` " +
        "grouping by tenant sees every tenant."
    })
  ) {}
/** `POST /v1/feedback`'s answer: the feedback as stored. */
export const FeedbackRecorded = Schema.Struct({
  session_id: Schema.String,
  score: Schema.Number,
  comment: Schema.NullOr(Schema.String)
})

export class ExperimentsGroup extends HttpApiGroup.make("experiments")
  .add(
    HttpApiEndpoint.post("feedback", "/v1/feedback", {
      payload: Experiments.Feedback,
      success: FeedbackRecorded.pipe(HttpApiSchema.status(201)),
      error: [ApiError.NotFound, ApiError.Internal, ApiError.Unavailable]
    }).annotateMerge(
      OpenApi.annotations({
        description:
          "Feedback on one of the caller's tenant's sessions: a score from -1 (bad) to 1 (good) and an optional " +
          "comment of at most 2,000 characters. It counts for the arms of A/B experiments the session ran in. " +
          "Any role; a session of another tenant answers 404."
      })
    ),
    HttpApiEndpoint.get("results", "/v1/experiments/:id", {
      params: { id: Schema.String },
      success: Experiments.ExperimentResults,
      error: [ApiError.NotFound, ApiError.Forbidden, ApiError.Internal, ApiError.Unavailable]
    }).annotateMerge(
      OpenApi.annotations({
        description:
          "Per-arm results of an A/B experiment of `routing.experiments`, for the caller's tenant: sessions, " +
          "requests, errors, latency percentiles (nearest rank, successful calls), cost and feedback. " +
          "Needs the builder role; an experiment that is not configured answers 404."
      })
    )
  )
  .middleware(Authentication) {}

/** `GET /v1/health`. */
export const Health = Schema.Struct({
  status: Schema.Literals(["ok", "degraded", "down"]),
  components: Schema.Record(Schema.String, Schema.Literals(["ok", "degraded", "down"]))
})

/** `GET /v1/health` while storage is unreachable: 503 with the health body itself, not the envelope. */
export class HealthDown extends Schema.Error<HealthDown>("@polyagent/http/HealthDown")(
  { status: Schema.Literal("down"), components: Schema.Struct({ storage: Schema.Literal("down") }) },
  { httpApiStatus: 503, description: "Storage is unreachable; the server becomes ready by itself when it returns" }
) {}

/** The body of `GET /v1/health` while storage is unreachable. */
export const healthDown = { status: "down", components: { storage: "down" } } as const

export class SystemGroup extends HttpApiGroup.make("system").add(
  HttpApiEndpoint.get("health", "/v1/health", { success: Health, error: HealthDown })
) {}

/** The whole API. */
export class Api extends HttpApi.make("polyagent")
  .add(ChatGroup, SessionsGroup, AgentsGroup, ModelsGroup, OpenAiGroup, UsageGroup, ExperimentsGroup, SystemGroup)
  .add(KeysGroup, TenantProvidersGroup, AuditGroup, WorkflowsGroup)
  .middleware(RequestErrors)
  .annotateMerge(
    OpenApi.annotations({
      title: "PolyAgent API",
      version: "0.1.0",
      description:
        "LLM gateway and agent platform. Every error answers `{ error: { type, message, request_id } }`; " +
        "every response carries `X-Request-Id`."
    })
  ) {}
