/**
 * Durable workflow runs on `effect/workflow`, with the cluster's engine
 * (`ClusterWorkflowEngine`, journaled in the cluster's SQL storage: embedded SQLite or
 * PostgreSQL). Every run is one execution of {@link RunWorkflow}, which reads the version of
 * the definition the run started with and interprets its steps:
 *
 * - `model`, `agent`, `tool` and `transform` steps are activities: their result is journaled,
 *   so a run resumed after a crash does not run a finished step again. An activity that was
 *   running when the process died runs again; it first looks for its output in the step
 *   records (stored before the step reports it finished) and answers from there, so a model is
 *   not called twice for a step whose answer was stored. Per-step timeout and retries with
 *   exponential backoff apply inside the activity.
 * - `sleep` is a `DurableClock`, `approval` a `DurableDeferred`: the run is suspended, holding
 *   no fiber, until the clock fires or `approve`/`reject` completes the deferred.
 * - `parallel` runs its steps at once; `loop` runs its steps again up to its bound.
 *
 * The run's state (status, step records, events) is kept in `WorkflowStorage`'s tables for
 * the API. A run's cost is the sum of its model calls, charged to the key that started it.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Activity from "effect/workflow/Activity"
import * as DurableClock from "effect/workflow/DurableClock"
import * as DurableDeferred from "effect/workflow/DurableDeferred"
import * as Workflow from "effect/workflow/Workflow"
import type { WorkflowEngine, WorkflowInstance } from "effect/workflow/WorkflowEngine"
import { Audit } from "./Audit.ts"
import * as Identifier from "./Identifier.ts"
import { type Done, perform, StepFailed } from "./internal/workflowSteps.ts"
import * as Expression from "./internal/workflowExpression.ts"
import type * as StatelessTurn from "./StatelessTurn.ts"
import { nowIso, type StorageError } from "./Storage.ts"
import * as WorkflowDefinition from "./WorkflowDefinition.ts"
import { type RunRow, type RunStatus, type StepRow, WorkflowStorage, type WorkflowSummary } from "./WorkflowStorage.ts"

export { StepFailed } from "./internal/workflowSteps.ts"

/** The durable workflow every run is an execution of, keyed by the run's id. */
export const RunWorkflow = Workflow.make("PolyAgentWorkflowRun", {
  payload: { run_id: Schema.String },
  idempotencyKey: ({ run_id }) => run_id
})

/** What a person decided on an approval step. */
const Decision = Schema.Struct({ approved: Schema.Boolean, comment: Schema.NullOr(Schema.String) })

const approvalOf = (key: string) => DurableDeferred.make(`approval/${key}`, { success: Decision })

/** No such workflow for the tenant. */
export class WorkflowNotFound extends Schema.TaggedError<WorkflowNotFound>()("WorkflowNotFound", {
  id: Schema.String
}) {
  override get message(): string {
    return `workflow ${this.id} not found`
  }
}

/** No such run for the tenant. */
export class RunNotFound extends Schema.TaggedError<RunNotFound>()("WorkflowRunNotFound", { id: Schema.String }) {
  override get message(): string {
    return `workflow run ${this.id} not found`
  }
}

/** The run is not in a state that allows this (approving a run that waits for nothing, cancelling an ended one). */
export class RunConflict extends Schema.TaggedError<RunConflict>()("WorkflowRunConflict", {
  id: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `workflow run ${this.id}: ${this.reason}`
  }
}

/** A step of a run as the API shows it. */
export interface StepView {
  readonly name: string
  readonly status: StepRow["status"]
  readonly output: unknown
  readonly error: string | null
  readonly attempts: number
  readonly cost_usd: number
  readonly started_at: string | null
  readonly finished_at: string | null
}

/** A run as the API shows it. */
export interface RunView {
  readonly id: string
  readonly workflow_id: string
  readonly version: number
  readonly status: RunStatus
  readonly input: unknown
  readonly steps: ReadonlyArray<StepView>
  readonly output: unknown
  readonly error: string | null
  readonly cost_usd: number
  readonly created_at: string
  readonly updated_at: string
}

/** One event of a run's stream. */
export interface RunEvent {
  readonly seq: number
  readonly event: string
  readonly data: unknown
}

const parseJson = (text: string | null): unknown => {
  if (text === null) return null
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const toJson = (value: unknown): string => JSON.stringify(value ?? null) ?? "null"

const isEnded = (status: RunStatus) => status === "completed" || status === "failed" || status === "cancelled"

/** Who starts a run: the tenant and the key it is charged to. */
export interface Starter {
  readonly tenant: string
  readonly keyId: string | null
}

/**
 * The workflow runs.
 *
 * When to use: to store definitions and to start, read, approve, reject, cancel and follow
 * runs (the `/v1/workflows` routes, workflow agents).
 *
 * Details: `start` returns as soon as the run is stored and handed to the engine; the run goes
 * on in the background, on whichever runner owns its shard, and survives restarts.
 *
 * Gotchas: code definitions (`WorkflowBuilder`) hold functions, so they cannot be stored: they
 * are registered with {@link layer} in every process that may run them, under the id
 * `code:<name>`.
 */
export class WorkflowRuns extends Context.Service<
  WorkflowRuns,
  {
    readonly save: (
      tenant: string,
      json: unknown
    ) => Effect.Effect<WorkflowSummary, WorkflowDefinition.DefinitionError | StorageError>
    readonly start: (
      starter: Starter,
      workflowId: string,
      input: unknown
    ) => Effect.Effect<RunView, WorkflowNotFound | StorageError>
    readonly get: (tenant: string, runId: string) => Effect.Effect<RunView, RunNotFound | StorageError>
    readonly decide: (
      tenant: string,
      runId: string,
      decision: {
        readonly approved: boolean
        readonly comment: string | null
        readonly actor: string
        readonly requestId: string | null
      }
    ) => Effect.Effect<RunView, RunNotFound | RunConflict | StorageError>
    readonly cancel: (tenant: string, runId: string) => Effect.Effect<RunView, RunNotFound | RunConflict | StorageError>
    /** The run's events from the first (or after `afterSeq`), ending after `completed` or `failed`. */
    readonly events: (
      tenant: string,
      runId: string,
      afterSeq: number
    ) => Effect.Effect<Stream.Stream<RunEvent, StorageError>, RunNotFound | StorageError>
    /** Waits until the run has ended (polling its record), and answers it. */
    readonly awaitEnd: (tenant: string, runId: string) => Effect.Effect<RunView, RunNotFound | StorageError>
  }
>()("@polyagent/runtime/WorkflowRuns") {}

/** How often event streams and waiters look for news of a run. */
const pollEvery = Duration.millis(150)

/** What {@link layer} takes: code definitions to register. */
export interface Options {
  readonly definitions?: ReadonlyArray<WorkflowDefinition.Definition> | undefined
}

const codeId = (name: string) => `code:${name}`

/** The runs' execution: what an execution of {@link RunWorkflow} does. */
const execute = (code: ReadonlyMap<string, WorkflowDefinition.Definition>) =>
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

const costOf = (steps: ReadonlyArray<StepRow>) => steps.reduce((sum, step) => sum + step.cost_usd, 0)

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

const viewOf = (run: RunRow, steps: ReadonlyArray<StepRow>): RunView => ({
  id: run.id,
  workflow_id: run.workflow_id,
  version: run.version,
  status: run.status,
  input: parseJson(run.input),
  steps: steps.map((step) => ({
    name: step.step_key,
    status: step.status,
    output: parseJson(step.output),
    error: step.error,
    attempts: step.attempts,
    cost_usd: step.cost_usd,
    started_at: step.started_at,
    finished_at: step.finished_at
  })),
  output: parseJson(run.output),
  error: run.error,
  cost_usd: costOf(steps),
  created_at: run.created_at,
  updated_at: run.updated_at
})

/** The service over the engine and storage in context. */
export const make = (options: Options = {}) =>
  Effect.gen(function* () {
    const storage = yield* WorkflowStorage
    const audit = yield* Audit
    const engine = yield* Effect.context<WorkflowEngine>()
    const code = new Map((options.definitions ?? []).map((definition) => [codeId(definition.name), definition]))
    const withEngine = <A, E>(effect: Effect.Effect<A, E, WorkflowEngine>) => Effect.provideContext(effect, engine)

    const load = (tenant: string, runId: string) =>
      Effect.gen(function* () {
        const run = yield* storage.getRun(tenant, runId)
        if (Option.isNone(run)) return yield* new RunNotFound({ id: runId })
        return run.value
      })
    const view = (tenant: string, runId: string) =>
      Effect.gen(function* () {
        const run = yield* load(tenant, runId)
        return viewOf(run, yield* storage.listSteps(runId))
      })

    const start = Effect.fnUntraced(function* (starter: Starter, workflowId: string, input: unknown) {
      const fromCode = code.get(workflowId)
      let version = 0
      let timeoutMs = fromCode?.timeoutMs
      if (fromCode === undefined) {
        const stored = yield* storage.getDefinition(starter.tenant, workflowId)
        if (Option.isNone(stored)) return yield* new WorkflowNotFound({ id: workflowId })
        version = stored.value.version
        const definition = WorkflowDefinition.fromJson(parseJson(stored.value.definition))
        timeoutMs = definition instanceof WorkflowDefinition.DefinitionError ? undefined : definition.timeoutMs
      }
      const now = yield* nowIso
      const nowMs = yield* Clock.currentTimeMillis
      const run: RunRow = {
        id: yield* Identifier.make("wfrun"),
        tenant: starter.tenant,
        workflow_id: workflowId,
        version,
        status: "running",
        input: toJson(input),
        output: null,
        error: null,
        key_id: starter.keyId,
        deadline_ms: timeoutMs === undefined ? null : nowMs + timeoutMs,
        created_at: now,
        updated_at: now
      }
      yield* storage.insertRun(run)
      yield* withEngine(RunWorkflow.execute({ run_id: run.id }, { discard: true }))
      return viewOf(run, [])
    })

    return WorkflowRuns.of({
      save: (tenant, json) =>
        Effect.gen(function* () {
          const definition = WorkflowDefinition.fromJson(json)
          if (definition instanceof WorkflowDefinition.DefinitionError) return yield* definition
          return yield* storage.saveDefinition(tenant, definition.name, toJson(json))
        }),
      start,
      get: view,
      decide: (tenant, runId, decision) =>
        Effect.gen(function* () {
          const run = yield* load(tenant, runId)
          const waiting = (yield* storage.listSteps(runId)).find((step) => step.status === "waiting")
          if (isEnded(run.status) || waiting === undefined) {
            return yield* new RunConflict({ id: runId, reason: "it is not waiting for an approval" })
          }
          const executionId = yield* RunWorkflow.executionId({ run_id: runId })
          const deferred = approvalOf(waiting.step_key)
          const token = DurableDeferred.tokenFromExecutionId(deferred, { workflow: RunWorkflow, executionId })
          yield* withEngine(
            DurableDeferred.succeed(deferred, {
              token,
              value: { approved: decision.approved, comment: decision.comment }
            })
          )
          yield* audit.record({
            actor: decision.actor,
            tenant,
            action: decision.approved ? "workflow.approve" : "workflow.reject",
            target: `${runId}/${waiting.step_key}`,
            request_id: decision.requestId,
            outcome: "ok"
          })
          return yield* view(tenant, runId)
        }),
      cancel: (tenant, runId) =>
        Effect.gen(function* () {
          const run = yield* load(tenant, runId)
          if (isEnded(run.status))
            return yield* new RunConflict({ id: runId, reason: `it has already ended (${run.status})` })
          yield* storage.setRun(runId, "cancelled", { error: "cancelled" })
          yield* storage.appendEvent(runId, "failed", toJson({ status: "cancelled", error: "cancelled" }))
          const executionId = yield* RunWorkflow.executionId({ run_id: runId })
          yield* withEngine(RunWorkflow.interrupt(executionId))
          return yield* view(tenant, runId)
        }),
      events: (tenant, runId, afterSeq) =>
        Effect.map(load(tenant, runId), () =>
          Stream.paginate(afterSeq, (seq: number) =>
            Effect.gen(function* () {
              const rows = yield* storage.eventsAfter(runId, seq)
              if (rows.length === 0) yield* Effect.sleep(pollEvery)
              const last = rows.at(-1)
              const finished = rows.some((row) => row.event === "completed" || row.event === "failed")
              const events: ReadonlyArray<RunEvent> = rows.map((row) => ({
                seq: row.seq,
                event: row.event,
                data: parseJson(row.data)
              }))
              return [events, finished ? Option.none() : Option.some(last?.seq ?? seq)] as const
            })
          )
        ),
      awaitEnd: (tenant, runId) =>
        view(tenant, runId).pipe(
          Effect.repeat({ until: (run) => isEnded(run.status), schedule: Schedule.spaced(pollEvery) })
        )
    })
  })

/**
 * The runs' service and the execution of {@link RunWorkflow}, on a `WorkflowEngine` (the
 * cluster's, in a server) and the workflow tables.
 */
export const layer = (options: Options = {}) => {
  const code = new Map((options.definitions ?? []).map((definition) => [codeId(definition.name), definition]))
  return Layer.merge(
    Layer.effect(WorkflowRuns, make(options)),
    RunWorkflow.toLayer((payload) => execute(code)(payload))
  )
}
