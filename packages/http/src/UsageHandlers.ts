/**
 * `GET /v1/usage`: the usage ledger summed by model, key, UTC day or tenant over a time range. A
 * user or builder sees their own key's usage, an admin their tenant's; the operator (an admin of
 * the platform tenant `default`) grouping by tenant sees every tenant. A bad `group_by`, date or
 * range answers 400 naming the parameter.
 */
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import { Budgets, Ledger } from "@polyagent/runtime"
import { Api, Principal } from "./Api.ts"
import * as ApiError from "./ApiError.ts"
import * as Authentication from "./Authentication.ts"

const day = /^\d{4}-\d{2}-\d{2}$/
const time = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/

/**
 * A bound of the range as the ledger's ISO 8601 UTC time: a date is its day's start (for `to`,
 * the next day's, so that the date is included), a time is itself. `undefined` when it is neither
 * or names no real day (`2026-02-30`).
 */
export const boundOf = (input: string, end: boolean): string | undefined => {
  if (!day.test(input) && !time.test(input)) return undefined
  const parsed = DateTime.make(day.test(input) ? `${input}T00:00:00Z` : input)
  if (Option.isNone(parsed)) return undefined
  const iso = DateTime.formatIso(parsed.value)
  if (day.test(input) && iso.slice(0, 10) !== input) return undefined
  return day.test(input) && end ? DateTime.formatIso(DateTime.add(parsed.value, { days: 1 })) : iso
}

const decodeGroupBy = Schema.decodeUnknownResult(Ledger.GroupBy)

/** The query of `GET /v1/usage`, checked: what the ledger is asked, or what is wrong with it. */
export const parseQuery = (query: {
  readonly group_by?: string | undefined
  readonly from?: string | undefined
  readonly to?: string | undefined
}): Result.Result<{ groupBy: Ledger.GroupBy; from: string | null; to: string | null }, string> => {
  const groupBy = decodeGroupBy(query.group_by ?? "model")
  if (Result.isFailure(groupBy)) return Result.fail("group_by must be one of model, key, day, tenant")
  const from = query.from === undefined ? null : boundOf(query.from, false)
  const to = query.to === undefined ? null : boundOf(query.to, true)
  const expected = "a date (YYYY-MM-DD) or an ISO 8601 time with a zone (2026-12-03T10:00:00Z)"
  if (from === undefined) return Result.fail(`from must be ${expected}`)
  if (to === undefined) return Result.fail(`to must be ${expected}`)
  if (from !== null && to !== null && from >= to) return Result.fail("from must be before to")
  return Result.succeed({ groupBy: groupBy.success, from, to })
}

/** The handler, with the ledger's reports on the `SqlClient` of the server. */
export const layer = HttpApiBuilder.group(
  Api,
  "usage",
  Effect.fn(function* (handlers) {
    const ledger = yield* Ledger.Ledger
    const budgets = yield* Budgets.Budgets
    return handlers.handle("report", ({ query }) =>
      Effect.gen(function* () {
        const principal = yield* Principal
        const parsed = parseQuery(query)
        if (Result.isFailure(parsed)) return yield* ApiError.fail("invalid_request", parsed.failure)
        const { groupBy, from, to } = parsed.success
        // This process's own recent charges are in the report (those of other processes follow soon).
        yield* budgets.flush
        const admin = principal.role === "admin"
        const operator = admin && principal.tenant === Authentication.DEFAULT_TENANT && groupBy === "tenant"
        const groups = yield* ledger
          .report({
            groupBy,
            tenant: operator ? null : principal.tenant,
            keyId: admin ? null : Authentication.payerOf(principal).keyId,
            from,
            to
          })
          .pipe(Effect.catch(ApiError.storageFailed))
        return {
          data: groups.map(({ group, ...sums }) =>
            groupBy === "key" ? { key: group, ...sums } : { [groupBy]: group ?? "", ...sums }
          )
        }
      })
    )
  })
).pipe(Layer.provide(Ledger.layer))
