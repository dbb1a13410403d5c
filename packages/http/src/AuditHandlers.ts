/**
 * `GET /v1/audit`: the tenant's audit log, newest first, for its admins (the role is checked by
 * the middleware, `Authorization.ts`). `limit` is 1 to 1000 (100 by default); the operator (an
 * admin of tenant `default`) may read another tenant's log with `tenant`, anyone else gets 403.
 */
import * as Effect from "effect/Effect"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import { Audit } from "@polyagent/runtime"
import { Api, Principal } from "./Api.ts"
import * as ApiError from "./ApiError.ts"
import * as Authentication from "./Authentication.ts"

/** The most entries one request reads, and how many it reads by default. */
export const maxLimit = 1000
export const defaultLimit = 100

/** The `limit` query parameter, checked: a whole number from 1 to {@link maxLimit}. */
export const limitOf = (raw: string | undefined): number | undefined => {
  if (raw === undefined) return defaultLimit
  if (!/^\d{1,4}$/.test(raw)) return undefined
  const limit = Number(raw)
  return limit >= 1 && limit <= maxLimit ? limit : undefined
}

export const layer = HttpApiBuilder.group(
  Api,
  "audit",
  Effect.fn(function* (handlers) {
    const audit = yield* Audit.Audit
    return handlers.handle("list", ({ query }) =>
      Effect.gen(function* () {
        const principal = yield* Principal
        const limit = limitOf(query.limit)
        if (limit === undefined) {
          return yield* ApiError.fail("invalid_request", `limit must be a whole number from 1 to ${maxLimit}`)
        }
        const tenant = query.tenant ?? principal.tenant
        if (tenant !== principal.tenant && !Authentication.isOperator(principal)) {
          return yield* ApiError.fail(
            "forbidden",
            "only an admin of the default tenant reads other tenants' audit logs"
          )
        }
        return { data: yield* audit.list(tenant, limit) }
      })
    )
  })
)
