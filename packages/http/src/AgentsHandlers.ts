/**
 * `/v1/agents`: create, list, read, change and delete the tenant's agents. Reading needs any
 * role; changing needs `builder` (or `admin`), as ../shared/API.md says.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import { Agent, Identifier, Storage } from "@polyagent/runtime"
import { Api, Principal } from "./Api.ts"
import * as ApiError from "./ApiError.ts"
import * as Authentication from "./Authentication.ts"

/** The caller's tenant, when its role may change agents. */
const builderTenant = Effect.map(Authentication.requireRole("builder", "changing agents"), ({ tenant }) => tenant)

const notFound = (id: string) => ApiError.fail("not_found", `agent ${id} not found`)

export const layer = HttpApiBuilder.group(
  Api,
  "agents",
  Effect.fn(function* (handlers) {
    const storage = yield* Storage.Storage
    return handlers
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const tenant = yield* builderTenant
          const agent = Agent.fromCreate(yield* Identifier.make("agent"), payload, yield* Storage.nowIso)
          yield* storage.insertAgent(tenant, agent).pipe(Effect.catch(ApiError.storageFailed))
          return agent
        })
      )
      .handle("list", () =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          return { data: yield* storage.listAgents(tenant).pipe(Effect.catch(ApiError.storageFailed)) }
        })
      )
      .handle("get", ({ params }) =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          const agent = yield* storage.getAgent(tenant, params.id).pipe(Effect.catch(ApiError.storageFailed))
          return Option.isSome(agent) ? agent.value : yield* notFound(params.id)
        })
      )
      .handle("update", ({ params, payload }) =>
        Effect.gen(function* () {
          const tenant = yield* builderTenant
          const current = yield* storage.getAgent(tenant, params.id).pipe(Effect.catch(ApiError.storageFailed))
          if (Option.isNone(current)) return yield* notFound(params.id)
          const updated = Agent.applyPatch(current.value, payload, yield* Storage.nowIso)
          const stored = yield* storage.updateAgent(tenant, updated).pipe(Effect.catch(ApiError.storageFailed))
          return stored ? updated : yield* notFound(params.id)
        })
      )
      .handle("delete", ({ params }) =>
        Effect.gen(function* () {
          const tenant = yield* builderTenant
          const deleted = yield* storage.deleteAgent(tenant, params.id).pipe(Effect.catch(ApiError.storageFailed))
          return deleted ? ({ id: params.id, deleted: true } as const) : yield* notFound(params.id)
        })
      )
  })
)
