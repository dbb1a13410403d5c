/**
 * `/v1/keys`: admins create, list and revoke API keys (the role is checked by the middleware,
 * `Authorization.ts`). A key is shown once, when created, and stored only as its hash; listings
 * show its prefix (`pa_` and 8 characters). A key can never carry a role above its creator's. An
 * admin manages its own tenant's keys; the operator (an admin of tenant `default`) also creates,
 * lists (`?tenant=`) and revokes other tenants' keys, while another tenant's key id answers 404
 * to anyone else. A key may carry an expiry, the model names it may ask for, its own rate limit
 * and its own monthly budget (`budget_usd`, which `Budgets` applies instead of the default for
 * keys). Creations, refusals and revocations are recorded in the audit log.
 */
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import { Audit, Identifier, KeyGuards, ModelRouter, Storage } from "@polyagent/runtime"
import { Api, Principal } from "./Api.ts"
import * as ApiError from "./ApiError.ts"
import * as Authentication from "./Authentication.ts"

/** A key as listed: never its secret or hash. */
const listed = (record: Storage.ApiKeyRecord) => ({
  id: record.id,
  name: record.name,
  role: record.role,
  tenant: record.tenant,
  prefix: record.prefix,
  created_at: record.created_at,
  expires_at: record.expires_at,
  last_used_at: record.last_used_at,
  models: record.models,
  rate_limit:
    record.rate_limit_rpm === null || record.rate_limit_burst === null
      ? null
      : { requests_per_minute: record.rate_limit_rpm, burst: record.rate_limit_burst },
  budget_usd: record.budget_usd
})

const zonedTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/

/** When a new key expires (ISO 8601), from `expires_in_days` or `expires_at`; null: never. */
const expiryOf = (
  payload: { readonly expires_in_days?: number | undefined; readonly expires_at?: string | undefined },
  now: DateTime.Utc
) =>
  Effect.gen(function* () {
    if (payload.expires_in_days !== undefined && payload.expires_at !== undefined) {
      return yield* ApiError.fail("invalid_request", "give expires_in_days or expires_at, not both")
    }
    if (payload.expires_in_days !== undefined) {
      return DateTime.formatIso(DateTime.add(now, { days: payload.expires_in_days }))
    }
    if (payload.expires_at === undefined) return null
    const at = zonedTime.test(payload.expires_at) ? DateTime.make(payload.expires_at) : Option.none()
    if (Option.isNone(at)) {
      return yield* ApiError.fail(
        "invalid_request",
        "expires_at must be an ISO 8601 time with a zone (2027-01-31T00:00:00Z)"
      )
    }
    if (!DateTime.isGreaterThan(at.value, now)) {
      return yield* ApiError.fail("invalid_request", "expires_at must be in the future")
    }
    return DateTime.formatIso(at.value)
  })

export const layer = HttpApiBuilder.group(
  Api,
  "keys",
  Effect.fn(function* (handlers) {
    const storage = yield* Storage.Storage
    const keys = yield* Authentication.KeyCache
    const audit = yield* Audit.Audit
    const router = yield* ModelRouter.ModelRouter

    /** Records what the caller did to `target` (a key id, or what it asked for) of `tenant`. */
    const record = (action: string, tenant: string, target: string, outcome: "ok" | "denied") =>
      Effect.gen(function* () {
        const principal = yield* Principal
        yield* audit.record({
          actor: Authentication.actorOf(principal),
          tenant,
          action,
          target,
          request_id: yield* Effect.service(ApiError.RequestId),
          outcome
        })
      })

    /** The tenant whose keys the caller asks for: its own, or for the operator any. */
    const tenantFor = (requested: string | undefined, action: string) =>
      Effect.gen(function* () {
        const creator = yield* Principal
        const tenant = requested ?? creator.tenant
        if (tenant !== creator.tenant && !Authentication.isOperator(creator)) {
          yield* record(action, creator.tenant, `tenant:${tenant}`, "denied")
          return yield* ApiError.fail("forbidden", "only an admin of the default tenant manages keys of other tenants")
        }
        return tenant
      })

    const guards = yield* KeyGuards.KeyGuards

    return handlers
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const creator = yield* Principal
          const tenant = yield* tenantFor(payload.tenant, "key.create")
          if (Storage.roleRank[payload.role] > Storage.roleRank[creator.role]) {
            yield* record("key.create", creator.tenant, `role:${payload.role}`, "denied")
            return yield* ApiError.fail("forbidden", "a key cannot have a role above its creator's")
          }
          const unknown = (payload.models ?? []).filter((name) => !router.knows(name))
          if (unknown.length > 0) {
            return yield* ApiError.fail(
              "invalid_request",
              `models: ${unknown.map((name) => JSON.stringify(name)).join(", ")} names no model, route or experiment; GET /v1/models lists the models`
            )
          }
          const now = yield* DateTime.now
          const key = yield* Authentication.newKey
          const rateLimit = payload.rate_limit
          const created = new Storage.ApiKeyRecord({
            id: yield* Identifier.make("key"),
            tenant,
            name: payload.name ?? "",
            role: payload.role,
            key_hash: Authentication.hashKey(key),
            created_at: DateTime.formatIso(now),
            budget_usd: payload.budget_usd ?? null,
            prefix: Authentication.prefixOf(key),
            expires_at: yield* expiryOf(payload, now),
            last_used_at: null,
            models: payload.models ?? null,
            rate_limit_rpm: rateLimit?.requests_per_minute ?? null,
            rate_limit_burst: rateLimit?.burst ?? null
          })
          // The guards first: a key whose signing secret cannot be stored is not created at all.
          const signingSecret = payload.signed === true ? `pas_${Identifier.randomBase62(43)}` : undefined
          yield* guards
            .create(created.id, tenant, {
              signingSecret: signingSecret === undefined ? undefined : Redacted.make(signingSecret),
              allowedIps: payload.allowed_ips
            })
            .pipe(
              Effect.catchTags({
                StorageError: ApiError.storageFailed,
                SecretBoxError: (error) => ApiError.fail("unavailable", error.message)
              })
            )
          yield* storage.insertApiKey(created).pipe(Effect.catch(ApiError.storageFailed))
          yield* record("key.create", tenant, created.id, "ok")
          return {
            ...listed(created),
            key,
            ...(signingSecret === undefined ? {} : { signing_secret: signingSecret }),
            ...(payload.allowed_ips === undefined ? {} : { allowed_ips: payload.allowed_ips })
          }
        })
      )
      .handle("list", ({ query }) =>
        Effect.gen(function* () {
          const tenant = yield* tenantFor(query.tenant, "key.list")
          const found = yield* storage.listApiKeys(tenant).pipe(Effect.catch(ApiError.storageFailed))
          return { data: found.map(listed) }
        })
      )
      .handle("revoke", ({ params }) =>
        Effect.gen(function* () {
          const principal = yield* Principal
          // The operator revokes any tenant's key; another admin's search stops at its tenant.
          const scope = Authentication.isOperator(principal) ? null : principal.tenant
          const revoked = yield* storage
            .revokeApiKey(scope, params.id, yield* Storage.nowIso)
            .pipe(Effect.catch(ApiError.storageFailed))
          if (Option.isNone(revoked)) return yield* ApiError.fail("not_found", `key ${params.id} not found`)
          keys.forget(params.id)
          yield* record("key.revoke", revoked.value, params.id, "ok")
          guards.forget(params.id)
          return { id: params.id, deleted: true } as const
        })
      )
  })
)
