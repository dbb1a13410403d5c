/**
 * `/v1/keys`: admins create, list and revoke API keys. A key is shown once, when created, and
 * stored only as its hash; it can never carry a role above its creator's; keys of another
 * tenant can be made only by an admin of the platform tenant (`default`). A key may carry its own
 * monthly budget (`budget_usd`), which `Budgets` applies instead of the default for keys.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import { Identifier, KeyGuards, Storage } from "@polyagent/runtime"
import { Api } from "./Api.ts"
import * as ApiError from "./ApiError.ts"
import * as Authentication from "./Authentication.ts"

const admin = Authentication.requireRole("admin", "managing keys")

const listed = ({ id, name, role, tenant, created_at, budget_usd }: Storage.ApiKeyRecord) => ({
  id,
  name,
  role,
  tenant,
  created_at,
  budget_usd
})

export const layer = HttpApiBuilder.group(
  Api,
  "keys",
  Effect.fn(function* (handlers) {
    const storage = yield* Storage.Storage
    const keys = yield* Authentication.KeyCache
    const guards = yield* KeyGuards.KeyGuards
    return handlers
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const creator = yield* admin
          if (Storage.roleRank[payload.role] > Storage.roleRank[creator.role]) {
            return yield* ApiError.fail("forbidden", "a key cannot have a role above its creator's")
          }
          const tenant = payload.tenant ?? creator.tenant
          if (tenant !== creator.tenant && creator.tenant !== Authentication.DEFAULT_TENANT) {
            return yield* ApiError.fail(
              "forbidden",
              "only an admin of the default tenant creates keys of other tenants"
            )
          }
          const key = yield* Authentication.newKey
          const record = new Storage.ApiKeyRecord({
            id: yield* Identifier.make("key"),
            tenant,
            name: payload.name ?? "",
            role: payload.role,
            key_hash: Authentication.hashKey(key),
            created_at: yield* Storage.nowIso,
            budget_usd: payload.budget_usd ?? null
          })
          // The guards first: a key whose signing secret cannot be stored is not created at all.
          const signingSecret = payload.signed === true ? `pas_${Identifier.randomBase62(43)}` : undefined
          yield* guards
            .create(record.id, tenant, {
              signingSecret: signingSecret === undefined ? undefined : Redacted.make(signingSecret),
              allowedIps: payload.allowed_ips
            })
            .pipe(
              Effect.catchTags({
                StorageError: ApiError.storageFailed,
                SecretBoxError: (error) => ApiError.fail("unavailable", error.message)
              })
            )
          yield* storage.insertApiKey(record).pipe(Effect.catch(ApiError.storageFailed))
          return {
            ...listed(record),
            key,
            ...(signingSecret === undefined ? {} : { signing_secret: signingSecret }),
            ...(payload.allowed_ips === undefined ? {} : { allowed_ips: payload.allowed_ips })
          }
        })
      )
      .handle("list", () =>
        Effect.gen(function* () {
          const { tenant } = yield* admin
          const keys = yield* storage.listApiKeys(tenant).pipe(Effect.catch(ApiError.storageFailed))
          return { data: keys.map(listed) }
        })
      )
      .handle("revoke", ({ params }) =>
        Effect.gen(function* () {
          const { tenant } = yield* admin
          const revoked = yield* storage
            .revokeApiKey(tenant, params.id, yield* Storage.nowIso)
            .pipe(Effect.catch(ApiError.storageFailed))
          if (!revoked) return yield* ApiError.fail("not_found", `key ${params.id} not found`)
          keys.forget(params.id)
          guards.forget(params.id)
          return { id: params.id, deleted: true } as const
        })
      )
  })
)
