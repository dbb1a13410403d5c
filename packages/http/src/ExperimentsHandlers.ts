/**
 * `POST /v1/feedback` and `GET /v1/experiments/{id}`: feedback on a session of the caller's
 * tenant (any role), and the per-arm results of an A/B experiment (builder), both through the
 * runtime's `Experiments` service.
 */
import * as Effect from "effect/Effect"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import { Experiments } from "@polyagent/runtime"
import { Api, Principal } from "./Api.ts"
import * as ApiError from "./ApiError.ts"

export const layer = HttpApiBuilder.group(
  Api,
  "experiments",
  Effect.fn(function* (handlers) {
    const experiments = yield* Experiments.Experiments
    return handlers
      .handle("feedback", ({ payload }) =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          yield* experiments.feedback(tenant, payload)
          return { session_id: payload.session_id, score: payload.score, comment: payload.comment ?? null }
        }).pipe(
          Effect.catchTags({
            SessionNotFound: (error) => ApiError.fail("not_found", error.message),
            StorageError: ApiError.storageFailed
          })
        )
      )
      .handle("results", ({ params }) =>
        Effect.gen(function* () {
          const { tenant } = yield* Principal
          return yield* experiments.results(tenant, params.id).pipe(
            Effect.catchTags({
              ExperimentNotFound: (error) => ApiError.fail("not_found", error.message),
              StorageError: ApiError.storageFailed
            })
          )
        })
      )
  })
)
