/**
 * The admins' part of the HTTP API: API keys (`/v1/keys`), tenants' own provider keys
 * (`/v1/tenants/{tenant}/providers`) and the audit log (`/v1/audit`).
 */
import * as Schema from "effect/Schema"
import * as HttpApiEndpoint from "effect/http-api/HttpApiEndpoint"
import * as HttpApiGroup from "effect/http-api/HttpApiGroup"
import * as HttpApiSchema from "effect/http-api/HttpApiSchema"
import * as OpenApi from "effect/http-api/OpenApi"
import { Audit, IpAllowList, Redaction, Storage } from "@polyagent/runtime"
import * as ApiError from "./ApiError.ts"
import { Authentication } from "./ApiSecurity.ts"

/** The answer of a `DELETE` (a session, an agent, a key, …). */
export const Deleted = Schema.Struct({ id: Schema.String, deleted: Schema.Literal(true) })

/** A tenant's name on the wire. */
export const Tenant = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/))

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
