/**
 * Role-based access: the one table of which role each route needs (`admin` ⊃ `builder` ⊃
 * `user`, ../shared/API.md), read by the authentication middleware for every route of the stack
 * and by the fast lane for the one it serves. A caller below a route's role answers 403
 * `forbidden`, and the refusal is audited. A route missing from the table needs `admin`, so a
 * route added without thought is closed rather than open (a test checks that every route is
 * listed).
 *
 * Tenant isolation is not here: every handler reads and writes the caller's tenant only, and a
 * resource of another tenant answers 404 like one that does not exist.
 */
import * as Effect from "effect/Effect"
import { Audit, Storage } from "@polyagent/runtime"
import { Principal } from "./Api.ts"
import * as ApiError from "./ApiError.ts"

/** The role each route needs, by `group.endpoint` of the HttpApi. */
export const routeRoles: Readonly<Record<string, Storage.Role>> = {
  // Chat, sessions of the caller's tenant, models, the OpenAI-compatible route: any caller.
  "chat.send": "user",
  "chat.stream": "user",
  "sessions.get": "user",
  "sessions.delete": "user",
  "openai.completions": "user",
  "models.list": "user",
  "models.health": "user",
  // Reading agents is for everyone; changing them is for builders.
  "agents.list": "user",
  "agents.get": "user",
  "agents.create": "builder",
  "agents.update": "builder",
  "agents.delete": "builder",
  // A user sees its own key's usage, an admin its tenant's (UsageHandlers).
  "usage.report": "user",
  "experiments.feedback": "user",
  "experiments.results": "builder",
  // Keys, tenants' provider keys and the audit log are the admins'.
  "keys.create": "admin",
  "keys.list": "admin",
  "keys.revoke": "admin",
  "tenantProviders.put": "admin",
  "tenantProviders.list": "admin",
  "tenantProviders.delete": "admin",
  "audit.list": "admin",
  // Workflows: changing definitions and deciding runs is for builders; runs are the tenant's.
  "workflows.create": "builder",
  "workflows.list": "user",
  "workflows.get": "user",
  "workflows.delete": "builder",
  "workflows.start": "user",
  "workflows.run": "user",
  "workflows.events": "user",
  "workflows.approve": "builder",
  "workflows.reject": "builder",
  "workflows.cancel": "builder"
}

/**
 * Who the caller is for the audit log, budgets and the ledger: the API key's id, or `jwt:<sub>`
 * for a JWT (stable for the subject, never a key's id).
 */
export const actorOf = (principal: Principal["Service"]): string => principal.keyId ?? `jwt:${principal.subject}`

/** The role `route` (`group.endpoint`) needs: `admin` for a route the table does not list. */
export const roleOf = (route: string): Storage.Role => routeRoles[route] ?? "admin"

/** Whether `principal` may call `route`. */
export const permits = (principal: Principal["Service"], route: string): boolean =>
  Storage.roleRank[principal.role] >= Storage.roleRank[roleOf(route)]

/** The 403 of a caller below `route`'s role, recorded in the audit log as `denied`. */
export const refuse = (principal: Principal["Service"], route: string) =>
  Effect.gen(function* () {
    const audit = yield* Audit.Audit
    yield* audit.record({
      actor: actorOf(principal),
      tenant: principal.tenant,
      action: route,
      target: route,
      request_id: yield* Effect.service(ApiError.RequestId),
      outcome: "denied"
    })
    return yield* ApiError.fail("forbidden", `this route needs the ${roleOf(route)} role`)
  })

/**
 * What records, in `audit`, that the caller did `action` to `target` (an agent, a workflow, …): `ok`.
 *
 * When to use: in a handler group, after a change of a tenant's resources has been stored.
 */
export const recorder =
  (audit: Audit.Audit["Service"]) =>
  (action: string, target: string): Effect.Effect<void, never, Principal> =>
    Effect.gen(function* () {
      const principal = yield* Principal
      yield* audit.record({
        actor: actorOf(principal),
        tenant: principal.tenant,
        action,
        target,
        request_id: yield* Effect.service(ApiError.RequestId),
        outcome: "ok"
      })
    })
