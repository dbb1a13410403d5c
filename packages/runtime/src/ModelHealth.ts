/** TEMPORARY (replaced by the `health` branch): the interface of the model health service. */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import type { ModelErrorReason } from "./ModelCatalog.ts"

export type Circuit = "closed" | "open" | "half_open"
export interface CallOutcome {
  readonly ok: boolean
  readonly latencyMs: number
  readonly ttftMs?: number | undefined
  readonly reason?: ModelErrorReason | undefined
  readonly probe?: boolean | undefined
}
export class ModelHealth extends Context.Service<
  ModelHealth,
  {
    readonly admit: (model: string) => boolean
    readonly record: (model: string, outcome: CallOutcome) => void
    readonly circuit: (model: string) => Circuit
    readonly latencyMs: (model: string) => number | undefined
    readonly weight: (model: string) => number
  }
>()("@polyagent/runtime/ModelHealth") {}
export const layerMemory = Layer.succeed(ModelHealth, {
  admit: () => true,
  record: () => {},
  circuit: () => "closed",
  latencyMs: () => undefined,
  weight: () => 1
})
