/**
 * What an execution of `WorkflowRuns.RunWorkflow` does: it reads the run and the version of the
 * definition it started with, then interprets the steps in order — leaves as activities
 * (answered from their stored output when they have one), `sleep` as a `DurableClock`,
 * `approval` as a `DurableDeferred`, `parallel` and `loop` over their steps — recording each
 * step and event in the workflow tables, and the run's end.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Activity from "effect/workflow/Activity"
import * as DurableClock from "effect/workflow/DurableClock"
import * as DurableDeferred from "effect/workflow/DurableDeferred"
import type { WorkflowEngine, WorkflowInstance } from "effect/workflow/WorkflowEngine"
import type * as StatelessTurn from "../StatelessTurn.ts"
import * as WorkflowDefinition from "../WorkflowDefinition.ts"
import { type RunRow, type RunStatus, type StepRow, WorkflowStorage } from "../WorkflowStorage.ts"
import * as Expression from "./workflowExpression.ts"
import { type Done, perform, StepFailed } from "./workflowSteps.ts"

/** What a person decided on an approval step. */
const Decision = Schema.Struct({ approved: Schema.Boolean, comment: Schema.NullOr(Schema.String) })

export const approvalOf = (key: string) => DurableDeferred.make(`approval/${key}`, { success: Decision })

export const parseJson = (text: string | null): unknown => {
  if (text === null) return null
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

export const toJson = (value: unknown): string => JSON.stringify(value ?? null) ?? "null"

export const isEnded = (status: RunStatus) => status === "completed" || status === "failed" || status === "cancelled"

/** The runs' execution: what an execution of {@link RunWorkflow} does. */
export const execute = (code: ReadonlyMap<string, WorkflowDefinition.Definition>) =>
  Effect.fnUntraced(function* (payload: { readonly run_id: string }) {
    const storage = yield* WorkflowStorage
    const runId = payload.run_id
    const found = yield* Effect.orDie(storage.getRun(null, runId))
    if (Option.isNone(found) || isEnded(found.value.status)) return
    const run = found.value
    const definition = yield* definitionOfRun(code, run)
    if (definition === undefined) {
      yield* Effect.orDie(storage.setRun(runId, "failed", { error: "the workflow's definition cannot be read" }))
      yield* Effect.orDie(storage.appendEvent(runId, "failed", toJson({ error: "definition unreadable" })))
      return
    }
    const caller = { payer: { tenant: run.tenant, keyId: run.key_id }, sessionId: null }
    const event = (name: string, data: unknown) => Effect.orDie(storage.appendEvent(runId, name, toJson(data)))
    const steps: Record<string, unknown> = {}
    const context = { input: parseJson(run.input), steps }

    const checkRun = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      if (run.deadline_ms !== null && now > run.deadline_ms) {
        return yield* new StepFailed({ step: "(run)", reason: "the run took longer than its timeout" })
      }
      const current = yield* Effect.orDie(storage.getRun(null, runId))
      if (Option.isSome(current) && current.value.status === "cancelled") return yield* Effect.interrupt
    })

    /** A leaf step as an activity: answered from its stored output when it has one. */
    const leaf = (step: WorkflowDefinition.Step, key: string) =>
      Activity.make({
        name: key,
        success: Schema.String,
        error: StepFailed,
        execute: Effect.gen(function* () {
          const stored = yield* Effect.orDie(storage.getStep(runId, key))
          if (Option.isSome(stored) && stored.value.status === "completed") return stored.value.output ?? "null"
          yield* Effect.orDie(storage.startStep(runId, key, "running"))
          yield* event("step_started", { step: key, type: step.type })
          const remaining = run.deadline_ms === null ? undefined : run.deadline_ms - (yield* Clock.currentTimeMillis)
          const limit = Math.min(step.timeoutMs ?? Number.POSITIVE_INFINITY, remaining ?? Number.POSITIVE_INFINITY)
          const once: Effect.Effect<Done, StepFailed, StatelessTurn.Services> = perform(step, key, context, {
            ...caller,
            // The same request id on every attempt: it is the run's step, whatever the attempt.
            requestId: `${runId}/${key}`
          }).pipe(
            Number.isFinite(limit)
              ? Effect.timeoutOrElse({
                  duration: Duration.millis(Math.max(1, limit)),
                  orElse: () => Effect.fail(new StepFailed({ step: key, reason: `timed out after ${limit} ms` }))
                })
              : (effect) => effect
          )
          const retry = step.retry
          const attempts =
            retry === undefined || retry.maxAttempts <= 1
              ? once
              : once.pipe(
                  Effect.retry({
                    times: retry.maxAttempts - 1,
                    schedule: Schedule.exponential(Duration.millis(Math.max(1, retry.backoffMs)))
                  })
                )
          const exit = yield* Effect.exit(attempts)
          if (Exit.isFailure(exit)) {
            const reason = Option.match(Exit.findErrorOption(exit), {
              onNone: () => "the step stopped unexpectedly",
              onSome: (error) => error.reason
            })
            yield* Effect.orDie(
              storage.endStep(runId, key, { status: "failed", output: null, error: reason, costUsd: 0 })
            )
            yield* event("step_finished", { step: key, status: "failed", error: reason })
            return yield* new StepFailed({ step: key, reason })
          }
          const output = toJson(exit.value.output)
          yield* Effect.orDie(
            storage.endStep(runId, key, { status: "completed", output, error: null, costUsd: exit.value.costUsd })
          )
          yield* event("step_finished", { step: key, status: "completed", output: exit.value.output })
          return output
        })
      })

    /** Records a step that did not run (its condition did not hold), once. */
    const skip = (key: string) =>
      Effect.gen(function* () {
        const stored = yield* Effect.orDie(storage.getStep(runId, key))
        if (Option.isSome(stored) && stored.value.status === "skipped") return
        yield* Effect.orDie(storage.endStep(runId, key, { status: "skipped", output: null, error: null, costUsd: 0 }))
        yield* event("step_finished", { step: key, status: "skipped" })
      })

    /** Marks a composite or durable step started, once; answers its stored output when it has finished. */
    const begin = (step: WorkflowDefinition.Step, key: string, status: "running" | "waiting") =>
      Effect.gen(function* () {
        const stored = yield* Effect.orDie(storage.getStep(runId, key))
        if (Option.isSome(stored)) {
          if (stored.value.status === "completed") return Option.some(parseJson(stored.value.output))
          if (stored.value.status === status) return Option.none()
        }
        yield* Effect.orDie(storage.startStep(runId, key, status))
        if (status === "waiting") {
          yield* Effect.orDie(storage.setRun(runId, "waiting"))
          yield* event("waiting", { step: key, message: step.type === "approval" ? (step.message ?? null) : null })
        } else {
          yield* event("step_started", { step: key, type: step.type })
        }
        return Option.none()
      })

    const finish = (key: string, output: unknown) =>
      Effect.gen(function* () {
        yield* Effect.orDie(
          storage.endStep(runId, key, { status: "completed", output: toJson(output), error: null, costUsd: 0 })
        )
        yield* event("step_finished", { step: key, status: "completed", output })
      })

    const holds = (condition: WorkflowDefinition.Condition | undefined): boolean =>
      condition === undefined
        ? true
        : condition._tag === "Expression"
          ? Expression.holds(condition.expr, context)
          : condition.holds(context)

    type Outcome = { readonly ran: boolean; readonly output: unknown }

    const runStep = (step: WorkflowDefinition.Step, key: string): Effect.Effect<Outcome, StepFailed, RunServices> =>
      Effect.gen(function* () {
        yield* checkRun
        if (!holds(step.when)) {
          yield* skip(key)
          context.steps[step.name] = null
          return { ran: false, output: null }
        }
        let output: unknown
        switch (step.type) {
          case "parallel": {
            const stored = yield* begin(step, key, "running")
            if (Option.isSome(stored)) {
              output = stored.value
              break
            }
            const prefix = key.slice(0, key.length - step.name.length)
            const outcomes = yield* Effect.forEach(step.steps, (child) => runStep(child, `${prefix}${child.name}`), {
              concurrency: "unbounded"
            })
            output = Object.fromEntries(step.steps.map((child, i) => [child.name, outcomes[i]?.output ?? null]))
            yield* finish(key, output)
            break
          }
          case "loop": {
            const stored = yield* begin(step, key, "running")
            if (Option.isSome(stored)) {
              output = stored.value
              break
            }
            const passes: Array<Record<string, unknown>> = []
            for (let pass = 1; pass <= step.maxIterations; pass++) {
              const record: Record<string, unknown> = {}
              for (const child of step.steps) {
                record[child.name] = (yield* runStep(child, `${key}[${pass}].${child.name}`)).output
              }
              passes.push(record)
              if (step.until !== undefined && holds(step.until)) break
            }
            output = passes
            yield* finish(key, output)
            break
          }
          case "sleep": {
            const stored = yield* begin(step, key, "running")
            if (Option.isSome(stored)) break
            yield* DurableClock.sleep({ name: key, duration: Duration.millis(step.durationMs) })
            output = null
            yield* finish(key, output)
            break
          }
          case "approval": {
            const stored = yield* begin(step, key, "waiting")
            if (Option.isSome(stored)) {
              output = stored.value
              break
            }
            const decision = yield* DurableDeferred.await(approvalOf(key))
            if (!decision.approved) {
              yield* Effect.orDie(
                storage.endStep(runId, key, { status: "rejected", output: null, error: decision.comment, costUsd: 0 })
              )
              yield* event("step_finished", { step: key, status: "rejected", comment: decision.comment })
              return yield* new StepFailed({
                step: key,
                reason: decision.comment === null ? "rejected" : `rejected: ${decision.comment}`
              })
            }
            output = { approved: true, comment: decision.comment }
            yield* Effect.orDie(storage.setRun(runId, "running"))
            yield* finish(key, output)
            break
          }
          default:
            output = parseJson(yield* leaf(step, key))
        }
        context.steps[step.name] = output
        return { ran: true, output }
      })

    const exit = yield* Effect.exit(
      Effect.gen(function* () {
        let last: unknown = null
        for (const step of definition.steps) {
          const outcome = yield* runStep(step, step.name)
          // Approvals and sleeps are gates: the run's output is the last step that produced something.
          if (outcome.ran && step.type !== "approval" && step.type !== "sleep") last = outcome.output
        }
        return last
      })
    )
    if (Exit.isSuccess(exit)) {
      yield* Effect.orDie(storage.setRun(runId, "completed", { output: toJson(exit.value) }))
      const steps = yield* Effect.orDie(storage.listSteps(runId))
      yield* event("completed", { output: exit.value, cost_usd: costOf(steps) })
      return
    }
    const failure = Exit.findErrorOption(exit)
    if (Option.isSome(failure)) {
      yield* Effect.orDie(storage.setRun(runId, "failed", { error: failure.value.message }))
      yield* event("failed", { error: failure.value.message, step: failure.value.step })
      return
    }
    // Cancelled: the engine interrupted the run. Anything else is a defect of the engine's own.
    if (Cause.hasInterruptsOnly(exit.cause)) return yield* Effect.interrupt
    return yield* Effect.die(Cause.squash(exit.cause))
  })

/** What a run's execution needs. */
type RunServices = WorkflowStorage | StatelessTurn.Services | WorkflowEngine | WorkflowInstance

export const costOf = (steps: ReadonlyArray<StepRow>) => steps.reduce((sum, step) => sum + step.cost_usd, 0)

const definitionOfRun = (code: ReadonlyMap<string, WorkflowDefinition.Definition>, run: RunRow) =>
  Effect.gen(function* () {
    const fromCode = code.get(run.workflow_id)
    if (fromCode !== undefined) return fromCode
    const storage = yield* WorkflowStorage
    const stored = yield* Effect.orDie(storage.getDefinition(run.tenant, run.workflow_id, run.version))
    if (Option.isNone(stored)) return undefined
    const definition = WorkflowDefinition.fromJson(parseJson(stored.value.definition))
    return definition instanceof WorkflowDefinition.DefinitionError ? undefined : definition
  })
