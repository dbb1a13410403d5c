/** TEMPORARY (replaced by the `budgets` branch). */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type { ModelInfo } from "./ModelCatalog.ts"
import type { StorageError } from "./Storage.ts"
import type * as Usage from "./Usage.ts"

export interface Payer {
  readonly tenant: string
  readonly keyId: string | null
}
export interface Charge {
  readonly model: string
  readonly provider: string
  readonly usage: Usage.Usage
  readonly cost_usd: number
  readonly request_id: string
  readonly session_id: string | null
}
export class BudgetExceeded extends Schema.TaggedError<BudgetExceeded>()("BudgetExceeded", {
  scope: Schema.String
}) {}
export interface Reservation {
  readonly estimateUsd: number
}
export class Budgets extends Context.Service<
  Budgets,
  {
    readonly reserve: (payer: Payer, estimateUsd: number) => Effect.Effect<Reservation, BudgetExceeded | StorageError>
    readonly settle: (reservation: Reservation, charges: ReadonlyArray<Charge>) => Effect.Effect<void>
  }
>()("@polyagent/runtime/Budgets") {
  static readonly layerMemory = Layer.succeed(Budgets, {
    reserve: (_payer, estimateUsd) => Effect.succeed({ estimateUsd }),
    settle: () => Effect.void
  })
}
export const estimate = (info: ModelInfo, promptTokens: number, maxOutputTokens: number | undefined): number =>
  (promptTokens * info.cost_per_1k_tokens.input + (maxOutputTokens ?? 1024) * info.cost_per_1k_tokens.output) / 1000
