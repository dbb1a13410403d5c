/**
 * `/v1/tenants/{tenant}/providers`: a tenant's own provider keys (`TenantProviderKeys`). An admin
 * of the tenant, or the operator (an admin of `default`), stores, lists and removes them; another
 * tenant's admin gets 404, as for any resource of another tenant. Only the operator may point a
 * tenant at another server (`base_url`): that decides where this server sends requests. Every
 * change is audited; no answer, log line or error ever holds a key.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import { Audit, type SecretBox, TenantProviderKeys } from "@polyagent/runtime"
import { Api, Principal } from "./Api.ts"
import * as ApiError from "./ApiError.ts"
import * as Authentication from "./Authentication.ts"

/**
 * The caller (an admin: `Authorization` checked the route's role), when it may manage the
 * providers of `tenant`; another tenant's admin gets 404.
 */
const managerOf = (tenant: string) =>
  Effect.gen(function* () {
    const caller = yield* Principal
    if (caller.tenant !== tenant && !Authentication.isOperator(caller)) {
      return yield* ApiError.fail("not_found", `tenant ${tenant} not found`)
    }
    return caller
  })

/** A key that cannot be sealed: no secret key on this server (PostgreSQL without one). */
const sealFailed = (error: SecretBox.SecretBoxError) =>
  Effect.logWarning("a tenant's provider key cannot be stored", { reason: error.reason }).pipe(
    Effect.andThen(ApiError.fail("unavailable", error.message))
  )

export const layer = HttpApiBuilder.group(
  Api,
  "tenantProviders",
  Effect.fn(function* (handlers) {
    const store = yield* TenantProviderKeys.TenantProviderKeys
    const audit = yield* Audit.Audit
    const record = (tenant: string, action: string, target: string, outcome: string) =>
      Effect.gen(function* () {
        const { subject } = yield* Principal
        yield* audit.record({ actor: subject, tenant, action, target, request_id: yield* ApiError.RequestId, outcome })
      })
    return handlers
      .handle("put", ({ params, payload }) =>
        Effect.gen(function* () {
          const caller = yield* managerOf(params.tenant)
          if (payload.base_url !== undefined && caller.tenant !== Authentication.DEFAULT_TENANT) {
            return yield* ApiError.fail("forbidden", "only the operator (an admin of the default tenant) sets base_url")
          }
          const stored = yield* store
            .put(params.tenant, params.provider, {
              apiKey: Redacted.make(payload.api_key),
              baseUrl: payload.base_url ?? null
            })
            .pipe(
              Effect.catchTags({ StorageError: ApiError.storageFailed, SecretBoxError: sealFailed }),
              Effect.tapError(() => record(params.tenant, "tenant.provider_key.put", params.provider, "failed"))
            )
          yield* record(params.tenant, "tenant.provider_key.put", params.provider, "ok")
          return {
            tenant: params.tenant,
            provider: params.provider,
            configured: true as const,
            base_url: payload.base_url ?? null,
            updated_at: stored.updated_at
          }
        })
      )
      .handle("list", ({ params }) =>
        Effect.gen(function* () {
          yield* managerOf(params.tenant)
          const configured = yield* store.list(params.tenant).pipe(Effect.catch(ApiError.storageFailed))
          return {
            data: configured.map((entry) => ({ tenant: params.tenant, configured: true as const, ...entry }))
          }
        })
      )
      .handle("delete", ({ params }) =>
        Effect.gen(function* () {
          yield* managerOf(params.tenant)
          const removed = yield* store.remove(params.tenant, params.provider).pipe(Effect.catch(ApiError.storageFailed))
          yield* record(params.tenant, "tenant.provider_key.delete", params.provider, removed ? "ok" : "not_found")
          if (!removed)
            return yield* ApiError.fail("not_found", `no key of ${params.provider} for tenant ${params.tenant}`)
          return { tenant: params.tenant, provider: params.provider, deleted: true as const }
        })
      )
  })
)
