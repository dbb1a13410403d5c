/**
 * The HTTP API of PolyAgent as one `HttpApi` definition: the single source of the
 * server's routing and decoding, of `api/openapi/polyagent-api.yaml` and of the typed
 * client. Wire names are snake_case (../shared/API.md).
 */
import * as Context from "effect/Context"
import * as Schema from "effect/Schema"
import * as HttpApi from "effect/http-api/HttpApi"
import * as HttpApiEndpoint from "effect/http-api/HttpApiEndpoint"
import * as HttpApiGroup from "effect/http-api/HttpApiGroup"
import * as HttpApiMiddleware from "effect/http-api/HttpApiMiddleware"
import * as HttpApiSchema from "effect/http-api/HttpApiSchema"
import * as HttpApiSecurity from "effect/http-api/HttpApiSecurity"
import * as OpenApi from "effect/http-api/OpenApi"
import {
  Agent as AgentModule,
  Audit,
  Experiments,
  IpAllowList,
  Message,
  ModelCatalog,
  ModelHealth,
  Redaction,
  Safety,
  Session,
  SessionProtocol,
  Storage,
  Usage
} from "@polyagent/runtime"
import type { RateLimiter } from "@polyagent/runtime"
import { ToolExecutor } from "@polyagent/tools"
import * as ApiError from "./ApiError.ts"
import * as ChatCompletions from "./ChatCompletions.ts"

/** Who is calling: resolved from the bearer token by {@link Authentication}. */
export class Principal extends Context.Service<
  Principal,
  {
    /** How the caller authenticated: an API key or a JWT. */
    readonly kind: "key" | "jwt"
    readonly tenant: string
    /** The key's id for a key, the token's `sub` for a JWT. */
    readonly subject: string
    readonly role: Storage.Role
    /** The API key's id; null for a JWT. */
    readonly keyId: string | null
    /** The model, route or experiment names the caller may ask for; null: any. */
    readonly models: ReadonlyArray<string> | null
    /** The caller's own rate limit; null: the configured one (`rate_limit`). */
    readonly rateLimit: RateLimiter.Limit | null
  }
>()("@polyagent/http/Principal") {}

/**
 * Bearer authentication with an API key or a JWT, and the route's role (`Authorization.ts`). A
 * key that cannot be looked up because storage is unreachable answers 503 `unavailable`, never
 * 401; a caller whose role is below the route's answers 403.
 */
export class Authentication extends HttpApiMiddleware.Service<Authentication, { provides: Principal }>()(
  "@polyagent/http/Authentication",
  {
    security: { bearer: HttpApiSecurity.bearer },
    error: [ApiError.Unauthenticated, ApiError.Forbidden, ApiError.RateLimited, ApiError.Unavailable]
  }
) {}

/** Turns request decoding failures into the `invalid_request` envelope. */
export class RequestErrors extends HttpApiMiddleware.Service<RequestErrors>()("@polyagent/http/RequestErrors", {
  error: [ApiError.InvalidRequest, ApiError.Internal]
}) {}

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

/** `DELETE /v1/sessions/{id}`'s answer. */
export const Deleted = Schema.Struct({ id: Schema.String, deleted: Schema.Literal(true) })

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

const Tenant = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/))

/** A key's own rate limit on the wire. */
export const KeyRateLimit = Schema.Struct({
  requests_per_minute: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 })),
  burst: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 }))
})

/** An API key as listed: never its secret or hash. */
export const ApiKey = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  role: Storage.Role,
  tenant: Schema.String,
  /** `pa_` and the key's first 8 characters, to tell keys apart; null for keys made before prefixes were kept. */
  prefix: Schema.NullOr(Schema.String),
  created_at: Schema.String,
  /** When the key stops working; null: never. */
  expires_at: Schema.NullOr(Schema.String),
  /** When the key was last used (to the minute); null: never. */
  last_used_at: Schema.NullOr(Schema.String),
  /** The model, route or experiment names the key may ask for; null: any. */
  models: Schema.NullOr(Schema.Array(Schema.String)),
  /** The key's own rate limit; null: the configured `rate_limit`. */
  rate_limit: Schema.NullOr(KeyRateLimit),
  /** The key's own monthly budget in USD; null: the configured default for keys (`budgets.keys`). */
  budget_usd: Schema.NullOr(Schema.Number)
})

const ModelName = Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(200))

/** Addresses and CIDR ranges, IPv4 or IPv6, at most 100. */
export const AllowedIps = Schema.Array(Schema.String.check(Schema.isMaxLength(64))).check(
  Schema.isMaxLength(100),
  Schema.makeFilter((entries) => {
    const invalid = IpAllowList.invalidEntries(entries)
    return invalid.length === 0
      ? undefined
      : `expected IP addresses or CIDR ranges; cannot read ${JSON.stringify(invalid)}`
  })
)

/** The body of `POST /v1/keys`. */
export const KeyCreate = Schema.Struct({
  role: Storage.Role,
  tenant: Schema.optional(Tenant),
  name: Schema.optional(Schema.String.check(Schema.isMaxLength(200))),
  /** The key's monthly budget in USD (UTC months), instead of `budgets.keys.monthly_usd`. */
  budget_usd: Schema.optional(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))),
  /** The key stops working this many days after it is created (or at `expires_at`; not both). */
  expires_in_days: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 36_500 }))),
  /** When the key stops working: an ISO 8601 time with a zone, in the future. */
  expires_at: Schema.optional(Schema.String),
  /** The model, route or experiment names the key may ask for (others answer 403); absent: any. */
  models: Schema.optional(Schema.Array(ModelName).check(Schema.isMinLength(1), Schema.isMaxLength(100))),
  /** The key's own rate limit, instead of the configured `rate_limit`. */
  rate_limit: Schema.optional(KeyRateLimit),
  /** The key's requests must be signed with the `signing_secret` of the answer (see the README). */
  signed: Schema.optional(Schema.Boolean),
  /** Where the key may be used from; absent: anywhere (within the tenant's own list). */
  allowed_ips: Schema.optional(AllowedIps)
})

/** The answer of `POST /v1/keys`: the key, and its signing secret, are shown in this answer only. */
export const KeyCreated = Schema.Struct({
  ...ApiKey.fields,
  key: Redaction.sensitive(Schema.String),
  signing_secret: Schema.optional(Redaction.sensitive(Schema.String)),
  allowed_ips: Schema.optional(Schema.Array(Schema.String))
})

export class KeysGroup extends HttpApiGroup.make("keys")
  .add(
    HttpApiEndpoint.post("create", "/v1/keys", {
      payload: KeyCreate,
      success: KeyCreated.pipe(HttpApiSchema.status(201)),
      error: [ApiError.InvalidRequest, ApiError.Forbidden, ApiError.Internal, ApiError.Unavailable]
    }),
    HttpApiEndpoint.get("list", "/v1/keys", {
      query: { tenant: Schema.optional(Tenant) },
      success: Schema.Struct({ data: Schema.Array(ApiKey) }),
      error: [ApiError.Forbidden, ApiError.Internal]
    }),
    HttpApiEndpoint.delete("revoke", "/v1/keys/:id", {
      params: { id: Schema.String },
      success: Deleted,
      error: [ApiError.NotFound, ApiError.Forbidden, ApiError.Internal]
    })
  )
  .middleware(Authentication) {}

/** The providers a tenant may bring its own key for. */
export const ProviderName = Schema.Literals(["openai", "anthropic", "openrouter", "glm"])

/** The body of `PUT /v1/tenants/{tenant}/providers/{provider}`. */
export const ProviderKeyPut = Schema.Struct({
  api_key: Redaction.sensitive(
    Schema.String.check(
      Schema.isMinLength(1),
      Schema.isMaxLength(4096),
      Schema.isPattern(/^\S+$/, { expected: "a key without spaces" })
    )
  ),
  /** The provider's server for this tenant's calls; only the operator (an admin of `default`) sets it. */
  base_url: Schema.optional(Schema.String.check(Schema.isPattern(/^https?:\/\/\S+$/, { expected: "an http(s) URL" })))
})

/** A tenant's provider as answered: never its key. */
export const ProviderKeyEntry = Schema.Struct({
  tenant: Schema.String,
  provider: Schema.String,
  configured: Schema.Literal(true),
  base_url: Schema.NullOr(Schema.String),
  updated_at: Schema.String
})

export class TenantProvidersGroup extends HttpApiGroup.make("tenantProviders")
  .add(
    HttpApiEndpoint.put("put", "/v1/tenants/:tenant/providers/:provider", {
      params: { tenant: Tenant, provider: ProviderName },
      payload: ProviderKeyPut,
      success: ProviderKeyEntry,
      error: [ApiError.Forbidden, ApiError.NotFound, ApiError.Internal, ApiError.Unavailable]
    }),
    HttpApiEndpoint.get("list", "/v1/tenants/:tenant/providers", {
      params: { tenant: Tenant },
      success: Schema.Struct({ data: Schema.Array(ProviderKeyEntry) }),
      error: [ApiError.Forbidden, ApiError.NotFound, ApiError.Internal, ApiError.Unavailable]
    }),
    HttpApiEndpoint.delete("delete", "/v1/tenants/:tenant/providers/:provider", {
      params: { tenant: Tenant, provider: ProviderName },
      success: Schema.Struct({ tenant: Schema.String, provider: Schema.String, deleted: Schema.Literal(true) }),
      error: [ApiError.Forbidden, ApiError.NotFound, ApiError.Internal, ApiError.Unavailable]
    })
  )
  .middleware(Authentication)
  .annotateMerge(
    OpenApi.annotations({
      description:
        "A tenant's own provider keys (bring your own key): the tenant's calls to that provider use it instead of " +
        "the server's. Admins of the tenant, or the operator (an admin of `default`); the key is never returned. " +
        "Another tenant's answers 404."
    })
  ) {}

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

/** One entry of `GET /v1/audit`: the audit log's own entry, on the wire. */
export const AuditEntry = Schema.Struct(Audit.Entry.fields)

export class AuditGroup extends HttpApiGroup.make("audit")
  .add(
    HttpApiEndpoint.get("list", "/v1/audit", {
      query: { limit: Schema.optional(Schema.String), tenant: Schema.optional(Tenant) },
      success: Schema.Struct({ data: Schema.Array(AuditEntry) }),
      error: [ApiError.InvalidRequest, ApiError.Forbidden, ApiError.Internal]
    })
  )
  .middleware(Authentication)
  .annotateMerge(
    OpenApi.annotations({
      description:
        "The tenant's audit log, newest first: key creation, use (sampled), revocation, agent changes, refusals " +
        "(403). Admin only; `limit` from 1 to 1000 (100 by default); the operator (an admin of tenant `default`) " +
        "may read another tenant's with `tenant`."
    })
  ) {}

/** A workflow as `POST /v1/workflows` answers it and the list shows it. */
export const WorkflowSummary = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  version: Schema.Int,
  created_at: Schema.String
})

/** A stored workflow: its newest version, with the definition as submitted. */
export const WorkflowDetail = Schema.Struct({ ...WorkflowSummary.fields, definition: Schema.Unknown })

/** One step run of a workflow run (a loop's steps once per pass, named `loop[pass].step`). */
export const WorkflowStepRun = Schema.Struct({
  name: Schema.String,
  status: Schema.Literals(["running", "waiting", "completed", "failed", "skipped", "rejected"]),
  output: Schema.Unknown,
  error: Schema.NullOr(Schema.String),
  attempts: Schema.Int,
  cost_usd: Schema.Number,
  started_at: Schema.NullOr(Schema.String),
  finished_at: Schema.NullOr(Schema.String)
})

/** A workflow run. */
export const WorkflowRun = Schema.Struct({
  id: Schema.String,
  workflow_id: Schema.String,
  version: Schema.Int,
  status: Schema.Literals(["running", "waiting", "completed", "failed", "cancelled"]),
  input: Schema.Unknown,
  steps: Schema.Array(WorkflowStepRun),
  output: Schema.Unknown,
  error: Schema.NullOr(Schema.String),
  cost_usd: Schema.Number,
  created_at: Schema.String,
  updated_at: Schema.String
})

/** An event of `GET /v1/workflows/runs/{id}/events`; `data` is JSON. */
export const WorkflowEvent = Schema.Struct({
  event: Schema.Literals(["step_started", "step_finished", "waiting", "completed", "failed"]),
  data: Schema.String
})
export type WorkflowEvent = typeof WorkflowEvent.Type

const Comment = Schema.Struct({ comment: Schema.optional(Schema.String.check(Schema.isMaxLength(10_000))) })

const workflowErrors = [
  ApiError.InvalidRequest,
  ApiError.Forbidden,
  ApiError.NotFound,
  ApiError.Conflict,
  ApiError.Internal,
  ApiError.Unavailable
] as const

export class WorkflowsGroup extends HttpApiGroup.make("workflows")
  .add(
    HttpApiEndpoint.post("create", "/v1/workflows", {
      payload: Schema.Record(Schema.String, Schema.Unknown),
      success: WorkflowSummary.pipe(HttpApiSchema.status(201)),
      error: workflowErrors
    }).annotateMerge(
      OpenApi.annotations({
        description:
          "Stores a workflow definition (builder role). A definition whose name the tenant already uses is the " +
          "next version of that workflow (same id); runs keep the version they started with. An invalid " +
          "definition answers 400 with a message naming the step at fault."
      })
    ),
    HttpApiEndpoint.get("list", "/v1/workflows", {
      success: Schema.Struct({ data: Schema.Array(WorkflowSummary) }),
      error: workflowErrors
    }),
    HttpApiEndpoint.get("get", "/v1/workflows/:id", {
      params: { id: Schema.String },
      success: WorkflowDetail,
      error: workflowErrors
    }),
    HttpApiEndpoint.delete("delete", "/v1/workflows/:id", {
      params: { id: Schema.String },
      success: Deleted,
      error: workflowErrors
    }),
    HttpApiEndpoint.post("start", "/v1/workflows/:id/runs", {
      params: { id: Schema.String },
      payload: Schema.Struct({ input: Schema.optional(Schema.Unknown) }),
      success: Schema.Struct({ id: Schema.String, status: Schema.Literal("running") }).pipe(HttpApiSchema.status(202)),
      error: workflowErrors
    }),
    HttpApiEndpoint.get("run", "/v1/workflows/runs/:id", {
      params: { id: Schema.String },
      success: WorkflowRun,
      error: workflowErrors
    }),
    HttpApiEndpoint.get("events", "/v1/workflows/runs/:id/events", {
      params: { id: Schema.String },
      success: HttpApiSchema.StreamSse({ events: WorkflowEvent }),
      error: workflowErrors
    }),
    HttpApiEndpoint.post("approve", "/v1/workflows/runs/:id/approve", {
      params: { id: Schema.String },
      payload: Comment,
      success: WorkflowRun,
      error: workflowErrors
    }),
    HttpApiEndpoint.post("reject", "/v1/workflows/runs/:id/reject", {
      params: { id: Schema.String },
      payload: Comment,
      success: WorkflowRun,
      error: workflowErrors
    }),
    HttpApiEndpoint.post("cancel", "/v1/workflows/runs/:id/cancel", {
      params: { id: Schema.String },
      payload: Comment,
      success: WorkflowRun,
      error: workflowErrors
    })
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
  .add(ChatGroup, SessionsGroup, AgentsGroup, KeysGroup, UsageGroup, ModelsGroup, OpenAiGroup, SystemGroup)
  .add(ChatGroup, SessionsGroup, AgentsGroup, KeysGroup, ModelsGroup, ExperimentsGroup, OpenAiGroup, SystemGroup)
  .add(AuditGroup)
  .add(TenantProvidersGroup)

  .add(WorkflowsGroup)
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
