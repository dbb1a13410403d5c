/**
 * Calling a plan's candidates: breakers, retries and failover, for a whole answer and for a
 * stream. A candidate whose breaker does not admit a call is skipped. A retryable failure moves
 * to the next candidate at once; the last candidate is retried with backoff and jitter (the
 * provider's `Retry-After` when it gave one), within the retry budget and `maxAttempts`. A
 * non-retryable failure ends the call. A stream that breaks after it sent text goes on with the
 * next candidate, which is given the text so far to continue from.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Stream from "effect/Stream"
import { type Model, ModelError } from "../ModelCatalog.ts"
import type { ModelHealth } from "../ModelHealth.ts"
import type { RetryBudget } from "../RetryBudget.ts"
import * as Tokens from "../Tokens.ts"
import * as Usage from "../Usage.ts"

/**
 * What the next model is asked, after the text of an answer another model broke off: to continue
 * it where it stops, so that the client gets one answer.
 */
export const continuationInstruction =
  "Your answer above was cut off. Continue it exactly where it stops: do not repeat any of it, do not comment on the interruption."

/** How the last candidate is retried. */
export interface RetrySettings {
  /** Calls of one model for one request, the first included. */
  readonly maxAttempts: number
  readonly baseDelay: Duration.Duration
  /** The longest wait between two calls; a provider asking for longer is not retried. */
  readonly maxDelay: Duration.Duration
}

/** What calling needs of the server. */
export interface Deps {
  readonly health: ModelHealth["Service"]
  readonly retryBudget: RetryBudget["Service"]
  readonly retry: RetrySettings
}

/** Where the calls of one request report what they cost. */
export interface Meter {
  /** `model` answered (all or part of) the request, using `usage`. */
  readonly charge: (model: Model, usage: Usage.Usage) => void
}

/** A stream moved from one model to the next after it had sent text. */
export class Failover {
  readonly _tag = "Failover"
  readonly from: string
  readonly to: string
  constructor(from: string, to: string) {
    this.from = from
    this.to = to
  }
}

/** A call answered by `model`. */
export interface Answered<A> {
  readonly value: A
  readonly model: Model
}

/** The failure of a plan whose every candidate's breaker is open. */
const circuitOpen = (model: Model) =>
  new ModelError({
    model: model.info.id,
    provider: model.info.provider,
    reason: "circuit_open",
    retryable: true,
    retry_after_ms: null
  })

/** The wait before calling the same model again, or `undefined` when it should not be called again. */
const backoff = (deps: Deps, error: ModelError, attempt: number) =>
  Effect.gen(function* () {
    if (attempt >= deps.retry.maxAttempts) return undefined
    const max = Duration.toMillis(deps.retry.maxDelay)
    if (error.retry_after_ms !== null) {
      return error.retry_after_ms <= max && deps.retryBudget.acquire() ? error.retry_after_ms : undefined
    }
    if (!deps.retryBudget.acquire()) return undefined
    const ceiling = Math.min(max, Duration.toMillis(deps.retry.baseDelay) * 2 ** (attempt - 1))
    // "Equal jitter": half the ceiling, plus up to the other half at random.
    return ceiling / 2 + (yield* Random.next) * (ceiling / 2)
  })

/** Whether a candidate after `index` may be called now (without taking a half-open slot). */
const hasNext = (deps: Deps, candidates: ReadonlyArray<Model>, index: number) =>
  candidates.slice(index + 1).some((model) => deps.health.circuit(model.info.id) !== "open")

/**
 * Tries `candidates` in order (see the module's comment) until one answers; fails with the last
 * model's error, or `circuit_open` when no candidate could be called.
 */
export const call = <A>(
  deps: Deps,
  candidates: ReadonlyArray<Model>,
  meter: Meter,
  attempt: (model: Model) => Effect.Effect<A, ModelError>,
  usageOf: (value: A) => Usage.Usage
): Effect.Effect<Answered<A>, ModelError> =>
  Effect.gen(function* () {
    deps.retryBudget.request()
    let last: ModelError | undefined
    for (let index = 0; index < candidates.length; index++) {
      const model = candidates[index] as Model
      if (!deps.health.admit(model.info.id)) continue
      for (let tries = 1; ; tries++) {
        const exit = yield* Effect.exit(attempt(model))
        if (Exit.isSuccess(exit)) {
          meter.charge(model, usageOf(exit.value))
          return { value: exit.value, model }
        }
        const error = Cause.findErrorOption(exit.cause)
        if (error._tag === "None") return yield* Effect.failCause(exit.cause)
        last = error.value
        if (!last.retryable) return yield* Effect.fail(last)
        if (hasNext(deps, candidates, index)) break
        const wait = yield* backoff(deps, last, tries)
        if (wait === undefined) break
        yield* Effect.sleep(Duration.millis(wait))
        if (!deps.health.admit(model.info.id)) break
      }
    }
    return yield* Effect.fail(last ?? circuitOpen(candidates[0] as Model))
  })

/** How {@link stream} reads the parts of a streamed answer. */
export interface StreamParts<A> {
  /** The model's answer, continuing `partial` (the text already sent) when it is not empty. */
  readonly attempt: (model: Model, partial: string) => Stream.Stream<A, ModelError>
  /** The usage one attempt reported (its parts are given), if any; read once the attempt ended. */
  readonly usage: (parts: ReadonlyArray<A>) => Usage.Usage | undefined
  /**
   * The text of one attempt's parts: read only when there is no usage to charge or the attempt
   * broke off (to continue it), so a part is not parsed on the way through.
   */
  readonly text: (parts: ReadonlyArray<A>) => string
  /** The prompt's tokens, to charge a stream that broke before it reported its usage. */
  readonly promptTokens: number
}

/**
 * Streams the answer of the first candidate that can give one (see the module's comment); a
 * {@link Failover} goes out when the answer moves to another model after some of it was sent.
 */
export const stream = <A>(
  deps: Deps,
  candidates: ReadonlyArray<Model>,
  meter: Meter,
  parts: StreamParts<A>
): Stream.Stream<A | Failover, ModelError> =>
  Stream.callback<A | Failover, ModelError>((queue) =>
    Effect.gen(function* () {
      deps.retryBudget.request()
      let partial = ""
      let last: ModelError | undefined
      let previous: Model | undefined
      for (let index = 0; index < candidates.length; index++) {
        const model = candidates[index] as Model
        if (!deps.health.admit(model.info.id)) continue
        if (previous !== undefined && partial !== "") {
          yield* Queue.offer(queue, new Failover(previous.info.id, model.info.id))
        }
        for (let tries = 1; ; tries++) {
          const sent: Array<A> = []
          const exit = yield* Effect.exit(
            Stream.runForEach(parts.attempt(model, partial), (part) => {
              sent.push(part)
              return Queue.offer(queue, part)
            })
          )
          // What was sent is charged, whole or cut short; a cut stream's usage is estimated.
          const usage = parts.usage(sent)
          const text = usage === undefined || Exit.isFailure(exit) ? parts.text(sent) : ""
          if (usage !== undefined) meter.charge(model, usage)
          else if (text !== "") meter.charge(model, Usage.make(parts.promptTokens, Tokens.countText(text)))
          if (Exit.isSuccess(exit)) return yield* Queue.end(queue)
          const error = Cause.findErrorOption(exit.cause)
          if (error._tag === "None") return yield* Effect.failCause(exit.cause)
          last = error.value
          partial += text
          previous = model
          if (!last.retryable) return yield* Effect.fail(last)
          // Once text was sent the answer goes on elsewhere: the same model would start over.
          if (partial !== "" || hasNext(deps, candidates, index)) break
          const wait = yield* backoff(deps, last, tries)
          if (wait === undefined) break
          yield* Effect.sleep(Duration.millis(wait))
          if (!deps.health.admit(model.info.id)) break
        }
      }
      return yield* Effect.fail(last ?? circuitOpen(candidates[0] as Model))
    })
  )
