/**
 * `/v1/agents`: create, list, read, change and delete the tenant's agents. Reading needs any
 * role; changing needs `builder` (or `admin`), as ../shared/API.md says (`Authorization.ts`).
 * Every change is recorded in the audit log.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import { Agent, Audit, Identifier, Storage } from "@polyagent/runtime"
import { Api, Principal } from "./Api.ts"
import * as ApiError from "./ApiError.ts"
import * as Authorization from "./Authorization.ts"

const notFound = (id: string) => ApiError.fail("not_found", `agent ${id} not found`)

export const layer = HttpApiBuilder.group(
  Api,
  "agents",
  Effect.fn(function* (handlers) {
    const storage = yield* Storage.Storage
    const record = Authorization.recorder(yield* Audit.Audit)
    return handlers
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          const agent = Agent.fromCreate(yield* Identifier.make("agent"), payload, yield* Storage.nowIso)
          yield* storage.insertAgent(tenant, agent).pipe(Effect.catch(ApiError.storageFailed))
          yield* record("agent.create", agent.id)
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
          const { tenant } = yield* Principal
          const current = yield* storage.getAgent(tenant, params.id).pipe(Effect.catch(ApiError.storageFailed))
          if (Option.isNone(current)) return yield* notFound(params.id)
          const updated = Agent.applyPatch(current.value, payload, yield* Storage.nowIso)
          const stored = yield* storage.updateAgent(tenant, updated).pipe(Effect.catch(ApiError.storageFailed))
          if (!stored) return yield* notFound(params.id)
          yield* record("agent.update", params.id)
          return updated
        })
      )
      .handle("delete", ({ params }) =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          const deleted = yield* storage.deleteAgent(tenant, params.id).pipe(Effect.catch(ApiError.storageFailed))
          if (!deleted) return yield* notFound(params.id)
          yield* record("agent.delete", params.id)
          return { id: params.id, deleted: true } as const
        })
      )
  })
)
