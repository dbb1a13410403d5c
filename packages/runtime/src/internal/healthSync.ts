/**
 * How `ModelHealth`'s state is shared: every sync interval this process publishes its window of
 * each model it called (thinned to a few latency points) and any breaker record that could not
 * be published when it changed, then reads what the other processes shared: their windows join
 * the report and the weights, and a newer breaker record replaces the local breaker's state.
 * A store that fails is counted at every failure and logged once per change of reachability.
 */
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import type { CircuitBreaker } from "./circuitBreaker.ts"
import { type HealthWindow, thin, type WindowSummary } from "./rolling.ts"
import { sharedPoints, type SharedStateError, type SharedStore, type SharedView } from "./sharedHealth.ts"

/** One model's state in this process. */
export interface ModelState {
  readonly breaker: CircuitBreaker
  readonly window: HealthWindow
  /** The last (up to) three latency samples, oldest first, and when the last one came. */
  readonly recent: Array<number>
  estimateAt: number
  /** What the other processes shared of this model's window. */
  remote: ReadonlyArray<WindowSummary>
  remoteRequests: number
  remoteFailures: number
}

/** Whether the store answered last time, and how many operations on it failed. */
export interface Reach {
  down: boolean
  errors: number
}

/** The publishing half and the sync tick over `store`. */
export const makeSync = (options: {
  readonly store: SharedStore
  readonly windowMs: number
  readonly onUnavailable: "fail_open" | "fail_closed"
  readonly reach: Reach
  readonly models: ReadonlyMap<string, ModelState>
  readonly stateOf: (model: string) => ModelState
  readonly now: () => number
}) => {
  const { store, reach, models, stateOf, now } = options
  const windowMs = options.windowMs
  const pending = new Set<string>()

  const failed = (error: SharedStateError) =>
    Effect.suspend(() => {
      reach.errors += 1
      if (reach.down) return Effect.void
      reach.down = true
      return Effect.logWarning("shared health state unreachable").pipe(
        Effect.annotateLogs({
          store: store.name,
          on_unavailable: options.onUnavailable,
          cause: error.message
        })
      )
    })
  const answered = Effect.suspend(() => {
    if (!reach.down) return Effect.void
    reach.down = false
    return Effect.logInfo("shared health state reachable again").pipe(Effect.annotateLogs({ store: store.name }))
  })
  const observed = <A>(effect: Effect.Effect<A, SharedStateError>) =>
    Effect.matchEffect(effect, { onFailure: failed, onSuccess: () => answered })

  /** Publishes `model`'s breaker now; on failure it goes out with the next sync. */
  const publishBreaker = (model: string) =>
    observed(
      Effect.suspend(() => store.publishBreaker(model, stateOf(model).breaker.snapshot())).pipe(
        Effect.tapError(() => Effect.sync(() => pending.add(model)))
      )
    )

  const apply = (view: SharedView, process: string, at: number) => {
    const remote = new Map<string, Array<WindowSummary>>()
    for (const window of view.windows) {
      if (window.process === process) continue
      const list = remote.get(window.model) ?? []
      list.push(window.summary)
      remote.set(window.model, list)
    }
    for (const [model, state] of models) {
      if (remote.has(model)) continue
      state.remote = []
      state.remoteRequests = 0
      state.remoteFailures = 0
    }
    for (const [model, summaries] of remote) {
      const state = stateOf(model)
      state.remote = summaries
      state.remoteRequests = summaries.reduce((sum, summary) => sum + summary.requests, 0)
      state.remoteFailures = summaries.reduce((sum, summary) => sum + summary.failures, 0)
    }
    for (const [model, record] of view.breakers) stateOf(model).breaker.adopt(record, at)
  }

  const sync = Effect.fnUntraced(function* (process: string) {
    const at = now()
    const windows = [...models].flatMap(([model, state]) => {
      const { requests, failures, latency, ttft } = state.window.summary(at)
      if (requests === 0) return []
      const summary = { requests, failures, latency: thin(latency, sharedPoints), ttft: thin(ttft, sharedPoints) }
      return [{ process, model, at, summary }]
    })
    yield* store.publishWindows(windows, at - windowMs)
    for (const model of pending) {
      yield* store.publishBreaker(model, stateOf(model).breaker.snapshot())
      pending.delete(model)
    }
    apply(yield* store.read(at - windowMs), process, now())
  })

  /** One sync, for a process id drawn once. */
  const tick = Effect.map(
    Effect.all([Random.nextIntBetween(0, 2 ** 30), Random.nextIntBetween(0, 2 ** 30)]),
    ([high, low]) => observed(sync(`${high.toString(36)}${low.toString(36)}`))
  )
  return { publishBreaker, tick }
}
