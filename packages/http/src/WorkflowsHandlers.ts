/**
 * `/v1/workflows`: definitions (changing them needs `builder`), runs (any role of the tenant
 * may start, read and follow them; approving, rejecting and cancelling needs `builder`), and
 * each run's event stream. Another tenant's workflow or run answers 404 like a missing one.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import { Audit, type Storage, WorkflowDefinition, WorkflowRuns, WorkflowStorage } from "@polyagent/runtime"
import { Api, Principal, type WorkflowEvent } from "./Api.ts"
import * as ApiError from "./ApiError.ts"
import * as Authentication from "./Authentication.ts"
import * as Authorization from "./Authorization.ts"

type RunsError =
  | WorkflowRuns.RunNotFound
  | WorkflowRuns.RunConflict
  | WorkflowRuns.WorkflowNotFound
  | WorkflowDefinition.DefinitionError
  | Storage.StorageError

/** The one mapping of the workflow service's failures onto the envelope. */
const toApiError = (
  error: RunsError
): Effect.Effect<
  never,
  ApiError.NotFound | ApiError.Conflict | ApiError.InvalidRequest | ApiError.Internal | ApiError.Unavailable
> => {
  switch (error._tag) {
    case "WorkflowRunNotFound":
    case "WorkflowNotFound":
      return ApiError.fail("not_found", error.message)
    case "WorkflowRunConflict":
      return ApiError.fail("conflict", error.message)
    case "WorkflowDefinitionError":
      return ApiError.fail("invalid_request", error.message)
    case "StorageError":
      return ApiError.storageFailed(error)
  }
}

const notFound = (id: string) => ApiError.fail("not_found", `workflow ${id} not found`)

const eventNames = new Set<string>(["step_started", "step_finished", "waiting", "completed", "failed"])
const isEventName = (name: string): name is WorkflowEvent["event"] => eventNames.has(name)

export const layer = HttpApiBuilder.group(
  Api,
  "workflows",
  Effect.fn(function* (handlers) {
    const runs = yield* WorkflowRuns.WorkflowRuns
    const storage = yield* WorkflowStorage.WorkflowStorage

    const decide = (id: string, approved: boolean, comment: string | undefined) =>
      Effect.gen(function* () {
        const principal = yield* Principal
        return yield* runs
          .decide(principal.tenant, id, {
            approved,
            comment: comment ?? null,
            actor: principal.subject,
            requestId: yield* Effect.service(ApiError.RequestId)
          })
          .pipe(Effect.catch(toApiError))
      })

    const record = Authorization.recorder(yield* Audit.Audit)
    return handlers
      .handle("create", ({ payload }) =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          const saved = yield* runs.save(tenant, payload).pipe(Effect.catch(toApiError))
          yield* record("workflow.save", `${saved.id}@${saved.version}`)
          return saved
        })
      )
      .handle("list", () =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          const stored = yield* storage.listDefinitions(tenant).pipe(Effect.catch(ApiError.storageFailed))
          return { data: stored.map(({ id, name, version, created_at }) => ({ id, name, version, created_at })) }
        })
      )
      .handle("get", ({ params }) =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          const stored = yield* storage.getDefinition(tenant, params.id).pipe(Effect.catch(ApiError.storageFailed))
          if (Option.isNone(stored)) return yield* notFound(params.id)
          const { id, name, version, created_at, definition } = stored.value
          return { id, name, version, created_at, definition: JSON.parse(definition) }
        })
      )
      .handle("delete", ({ params }) =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          const deleted = yield* storage.deleteDefinition(tenant, params.id).pipe(Effect.catch(ApiError.storageFailed))
          if (!deleted) return yield* notFound(params.id)
          yield* record("workflow.delete", params.id)
          return { id: params.id, deleted: true } as const
        })
      )
      .handle("start", ({ params, payload }) =>
        Effect.gen(function* () {
          const principal = yield* Principal
          const payer = Authentication.payerOf(principal)
          const run = yield* runs.start(payer, params.id, payload.input ?? null).pipe(Effect.catch(toApiError))
          return { id: run.id, status: "running" } as const
        })
      )
      .handle("run", ({ params }) =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          return yield* runs.get(tenant, params.id).pipe(Effect.catch(toApiError))
        })
      )
      .handle("events", ({ params }) =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          const events = yield* runs.events(tenant, params.id, 0).pipe(Effect.catch(toApiError))
          return events.pipe(
            Stream.map(
              (event): WorkflowEvent => ({
                event: isEventName(event.event) ? event.event : "failed",
                data: JSON.stringify(event.data)
              })
            ),
            // Storage failing mid-stream ends the stream with a `failed` event saying so.
            Stream.catch(() =>
              Stream.make({
                event: "failed",
                data: JSON.stringify({ error: "the run's events could not be read; read the run again" })
              } satisfies WorkflowEvent)
            )
          )
        })
      )
      .handle("approve", ({ params, payload }) => decide(params.id, true, payload.comment))
      .handle("reject", ({ params, payload }) => decide(params.id, false, payload.comment))
      .handle("cancel", ({ params }) =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          return yield* runs.cancel(tenant, params.id).pipe(Effect.catch(toApiError))
        })
      )
  })
)
