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
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as DurableDeferred from "effect/workflow/DurableDeferred"
import * as Workflow from "effect/workflow/Workflow"
import type { WorkflowEngine } from "effect/workflow/WorkflowEngine"
import { Audit } from "./Audit.ts"
import * as Identifier from "./Identifier.ts"
import { approvalOf, costOf, execute, isEnded, parseJson, toJson } from "./internal/workflowExecution.ts"
import { nowIso, type StorageError } from "./Storage.ts"
import * as WorkflowDefinition from "./WorkflowDefinition.ts"
import { type RunRow, type RunStatus, type StepRow, WorkflowStorage, type WorkflowSummary } from "./WorkflowStorage.ts"

export { StepFailed } from "./internal/workflowSteps.ts"

/** The durable workflow every run is an execution of, keyed by the run's id. */
export const RunWorkflow = Workflow.make("PolyAgentWorkflowRun", {
  payload: { run_id: Schema.String },
  idempotencyKey: ({ run_id }) => run_id
})

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
