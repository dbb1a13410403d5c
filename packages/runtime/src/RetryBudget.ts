/** TEMPORARY (replaced by the `health` branch). */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"

export class RetryBudget extends Context.Service<
  RetryBudget,
  { readonly request: () => void; readonly acquire: () => boolean }
>()("@polyagent/runtime/RetryBudget") {}
export const layerMemory = Layer.succeed(RetryBudget, { request: () => {}, acquire: () => true })
