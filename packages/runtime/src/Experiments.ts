/** TEMPORARY (replaced by the `experiments` branch). */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export interface Arm {
  readonly target: string
  readonly weight: number
}
export interface Experiment {
  readonly id: string
  readonly arms: ReadonlyArray<Arm>
}
export const assign = (experiment: Experiment, stickyKey: string): Arm => {
  let hash = 2166136261
  for (const char of `${experiment.id}\0${stickyKey}`) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619)
  const total = experiment.arms.reduce((sum, arm) => sum + arm.weight, 0)
  let point = ((hash >>> 0) / 2 ** 32) * total
  for (const arm of experiment.arms) {
    point -= arm.weight
    if (point < 0) return arm
  }
  return experiment.arms[experiment.arms.length - 1] as Arm
}
export interface Outcome {
  readonly tenant: string
  readonly experiment: string
  readonly arm: string
  readonly session_id: string | null
  readonly request_id: string
  readonly ok: boolean
  readonly latency_ms: number
  readonly cost_usd: number
}
export class Experiments extends Context.Service<
  Experiments,
  { readonly record: (outcome: Outcome) => Effect.Effect<void> }
>()("@polyagent/runtime/Experiments") {
  static readonly layerMemory = Layer.succeed(Experiments, { record: () => Effect.void })
}
