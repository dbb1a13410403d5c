/**
 * Where workflows and their runs are kept, on the database of `Storage` (embedded SQLite or
 * PostgreSQL, the tables of migration `14_workflows`): the versions of each definition, the
 * runs, one record per step run with its output, and each run's events in order.
 *
 * The effect/workflow engine journals the runs' progress in the cluster's own tables; these
 * tables are what the API reads, and what makes a step safe to run twice: a step whose output
 * is stored here is answered from here.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import * as Identifier from "./Identifier.ts"
import { failWith, queryOn, type StorageError } from "./internal/storageQuery.ts"
import { nowIso } from "./Storage.ts"

/** What `POST /v1/workflows` answers, and each entry of the list. */
export const WorkflowSummary = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  version: Schema.Int,
  created_at: Schema.String
})
export type WorkflowSummary = typeof WorkflowSummary.Type

/** A stored version of a definition, as submitted (JSON text). */
export interface StoredDefinition extends WorkflowSummary {
  readonly definition: string
}

/** The status of a run, as the API shows it. */
export const RunStatus = Schema.Literals(["running", "waiting", "completed", "failed", "cancelled"])
export type RunStatus = typeof RunStatus.Type

/** The status of a step run. */
export const StepStatus = Schema.Literals(["running", "waiting", "completed", "failed", "skipped", "rejected"])
export type StepStatus = typeof StepStatus.Type

const RunRow = Schema.Struct({
  id: Schema.String,
  tenant: Schema.String,
  workflow_id: Schema.String,
  version: Schema.Number,
  status: RunStatus,
  input: Schema.String,
  output: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String),
  key_id: Schema.NullOr(Schema.String),
  deadline_ms: Schema.NullOr(Schema.Union([Schema.Number, Schema.NumberFromString])),
  created_at: Schema.String,
  updated_at: Schema.String
})
/** A run as stored; `input` and `output` are JSON text. */
export type RunRow = typeof RunRow.Type

const StepRow = Schema.Struct({
  step_key: Schema.String,
  status: StepStatus,
  output: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String),
  attempts: Schema.Number,
  cost_usd: Schema.Number,
  started_at: Schema.NullOr(Schema.String),
  finished_at: Schema.NullOr(Schema.String)
})
/** A step run as stored; `output` is JSON text. */
export type StepRow = typeof StepRow.Type

const EventRow = Schema.Struct({ seq: Schema.Number, event: Schema.String, data: Schema.String })
/** One event of a run; `data` is JSON text. */
export type EventRow = typeof EventRow.Type

const DefinitionRow = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  version: Schema.Number,
  created_at: Schema.String,
  definition: Schema.String
})

const decode = <S extends Schema.Codec<unknown, unknown>>(schema: S) => Schema.decodeUnknownEffect(Schema.Array(schema))

/**
 * The workflow tables.
 *
 * When to use: from the workflow engine and the `/v1/workflows` handlers; nothing else reads
 * these tables.
 *
 * Gotchas: every method is scoped by tenant except those keyed by a run id, which only the
 * engine calls (run ids are unguessable and global).
 */
export class WorkflowStorage extends Context.Service<
  WorkflowStorage,
  {
    /** Stores a definition: a new workflow, or the next version of the tenant's workflow of that name. */
    readonly saveDefinition: (
      tenant: string,
      name: string,
      definition: string
    ) => Effect.Effect<WorkflowSummary, StorageError>
    /** The newest version of each of the tenant's workflows. */
    readonly listDefinitions: (tenant: string) => Effect.Effect<ReadonlyArray<StoredDefinition>, StorageError>
    /** The newest version of a workflow, or the version given (deleted or not: a run keeps its version). */
    readonly getDefinition: (
      tenant: string,
      id: string,
      version?: number
    ) => Effect.Effect<Option.Option<StoredDefinition>, StorageError>
    /** Deletes every version; runs already started go on. */
    readonly deleteDefinition: (tenant: string, id: string) => Effect.Effect<boolean, StorageError>
    readonly insertRun: (run: RunRow) => Effect.Effect<void, StorageError>
    /** A run of the tenant; `tenant` null: any (for the engine). */
    readonly getRun: (tenant: string | null, id: string) => Effect.Effect<Option.Option<RunRow>, StorageError>
    readonly setRun: (
      id: string,
      status: RunStatus,
      result?: { readonly output?: string | null; readonly error?: string | null }
    ) => Effect.Effect<void, StorageError>
    readonly listSteps: (runId: string) => Effect.Effect<ReadonlyArray<StepRow>, StorageError>
    readonly getStep: (runId: string, key: string) => Effect.Effect<Option.Option<StepRow>, StorageError>
    /** Marks a step run started (or started again): its attempts count up. */
    readonly startStep: (runId: string, key: string, status: "running" | "waiting") => Effect.Effect<void, StorageError>
    /** Records how a step run ended: its output (JSON text) or error, and its cost. */
    readonly endStep: (
      runId: string,
      key: string,
      end: {
        readonly status: "completed" | "failed" | "skipped" | "rejected"
        readonly output: string | null
        readonly error: string | null
        readonly costUsd: number
      }
    ) => Effect.Effect<void, StorageError>
    /** Appends an event to the run's stream. */
    readonly appendEvent: (runId: string, event: string, data: string) => Effect.Effect<void, StorageError>
    /** The run's events after `seq`, in order. */
    readonly eventsAfter: (runId: string, seq: number) => Effect.Effect<ReadonlyArray<EventRow>, StorageError>
  }
>()("@polyagent/runtime/WorkflowStorage") {}

/** Builds the storage on the `SqlClient` in context, whose tables `Database` created. */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const query = queryOn(sql)

  const newest = (tenant: string) =>
    query`SELECT d.id, d.name, d.version, d.created_at, d.definition FROM workflow_definitions d
          WHERE d.tenant = ${tenant} AND d.deleted = 0 AND d.version = (
            SELECT MAX(v.version) FROM workflow_definitions v WHERE v.tenant = d.tenant AND v.id = d.id)
          ORDER BY d.created_at, d.id`.pipe(Effect.flatMap(decode(DefinitionRow)))

  const saveOnce = (tenant: string, name: string, definition: string) =>
    Effect.gen(function* () {
      const current = (yield* newest(tenant)).find((row) => row.name === name)
      const id = current?.id ?? (yield* Identifier.make("wf"))
      const version = (current?.version ?? 0) + 1
      const now = yield* nowIso
      yield* query`INSERT INTO workflow_definitions (tenant, id, version, name, definition, created_at, deleted)
                   VALUES (${tenant}, ${id}, ${version}, ${name}, ${definition}, ${now}, 0)`
      return { id, name, version, created_at: now }
    })

  return WorkflowStorage.of({
    // Two saves of one name at once: the second's insert conflicts, and it tries again on top.
    saveDefinition: (tenant, name, definition) =>
      saveOnce(tenant, name, definition).pipe(Effect.retry({ times: 2 }), failWith("saveWorkflow")),
    listDefinitions: (tenant) => newest(tenant).pipe(failWith("listWorkflows")),
    getDefinition: (tenant, id, version) =>
      (version === undefined
        ? query`SELECT id, name, version, created_at, definition FROM workflow_definitions
                WHERE tenant = ${tenant} AND id = ${id} AND deleted = 0 ORDER BY version DESC LIMIT 1`
        : query`SELECT id, name, version, created_at, definition FROM workflow_definitions
                WHERE tenant = ${tenant} AND id = ${id} AND version = ${version}`
      ).pipe(
        Effect.flatMap(decode(DefinitionRow)),
        Effect.map((rows) => Option.fromNullishOr(rows[0])),
        failWith("getWorkflow")
      ),
    deleteDefinition: (tenant, id) =>
      query`UPDATE workflow_definitions SET deleted = 1 WHERE tenant = ${tenant} AND id = ${id} AND deleted = 0
            RETURNING version`.pipe(
        Effect.map((rows) => rows.length > 0),
        failWith("deleteWorkflow")
      ),
    insertRun: (run) =>
      query`INSERT INTO workflow_runs (id, tenant, workflow_id, version, status, input, output, error, key_id,
                                       deadline_ms, created_at, updated_at)
            VALUES (${run.id}, ${run.tenant}, ${run.workflow_id}, ${run.version}, ${run.status}, ${run.input},
                    ${run.output}, ${run.error}, ${run.key_id}, ${run.deadline_ms}, ${run.created_at},
                    ${run.updated_at})`.pipe(Effect.asVoid, failWith("insertRun")),
    getRun: (tenant, id) =>
      (tenant === null
        ? query`SELECT * FROM workflow_runs WHERE id = ${id}`
        : query`SELECT * FROM workflow_runs WHERE id = ${id} AND tenant = ${tenant}`
      ).pipe(
        Effect.flatMap(decode(RunRow)),
        Effect.map((rows) => Option.fromNullishOr(rows[0])),
        failWith("getRun")
      ),
    setRun: (id, status, result = {}) =>
      Effect.gen(function* () {
        const now = yield* nowIso
        const output = result.output === undefined ? null : result.output
        const error = result.error === undefined ? null : result.error
        // A run that ended stays ended: a late step of a cancelled run does not revive it.
        yield* query`UPDATE workflow_runs SET status = ${status}, updated_at = ${now},
                       output = CASE WHEN ${result.output === undefined ? 0 : 1} = 1 THEN ${output} ELSE output END,
                       error = CASE WHEN ${result.error === undefined ? 0 : 1} = 1 THEN ${error} ELSE error END
                     WHERE id = ${id} AND status NOT IN ('completed', 'failed', 'cancelled')`
      }).pipe(failWith("setRun")),
    listSteps: (runId) =>
      query`SELECT step_key, status, output, error, attempts, cost_usd, started_at, finished_at
            FROM workflow_steps WHERE run_id = ${runId} ORDER BY position`.pipe(
        Effect.flatMap(decode(StepRow)),
        failWith("listSteps")
      ),
    getStep: (runId, key) =>
      query`SELECT step_key, status, output, error, attempts, cost_usd, started_at, finished_at
            FROM workflow_steps WHERE run_id = ${runId} AND step_key = ${key}`.pipe(
        Effect.flatMap(decode(StepRow)),
        Effect.map((rows) => Option.fromNullishOr(rows[0])),
        failWith("getStep")
      ),
    startStep: (runId, key, status) =>
      Effect.gen(function* () {
        const now = yield* nowIso
        yield* query`INSERT INTO workflow_steps (run_id, step_key, position, status, output, error, attempts, cost_usd,
                                                 started_at, finished_at)
                     SELECT ${runId}, ${key}, COALESCE(MAX(position), 0) + 1, ${status}, NULL, NULL, 1, 0, ${now}, NULL
                     FROM workflow_steps WHERE run_id = ${runId}
                     ON CONFLICT (run_id, step_key) DO UPDATE
                     SET status = ${status}, attempts = workflow_steps.attempts + 1, error = NULL`
      }).pipe(failWith("startStep")),
    endStep: (runId, key, end) =>
      Effect.gen(function* () {
        const now = yield* nowIso
        yield* query`INSERT INTO workflow_steps (run_id, step_key, position, status, output, error, attempts, cost_usd,
                                                 started_at, finished_at)
                     SELECT ${runId}, ${key}, COALESCE(MAX(position), 0) + 1, ${end.status}, ${end.output}, ${end.error},
                            0, ${end.costUsd}, NULL, ${now}
                     FROM workflow_steps WHERE run_id = ${runId}
                     ON CONFLICT (run_id, step_key) DO UPDATE
                     SET status = ${end.status}, output = ${end.output}, error = ${end.error},
                         cost_usd = ${end.costUsd}, finished_at = ${now}`
      }).pipe(failWith("endStep")),
    appendEvent: (runId, event, data) =>
      Effect.gen(function* () {
        const now = yield* nowIso
        yield* query`INSERT INTO workflow_events (run_id, seq, event, data, created_at)
                     SELECT ${runId}, COALESCE(MAX(seq), 0) + 1, ${event}, ${data}, ${now}
                     FROM workflow_events WHERE run_id = ${runId}`
      }).pipe(
        // Parallel steps may append at once: the loser of a sequence number takes the next.
        Effect.retry({ times: 5 }),
        failWith("appendEvent")
      ),
    eventsAfter: (runId, seq) =>
      query`SELECT seq, event, data FROM workflow_events WHERE run_id = ${runId} AND seq > ${seq} ORDER BY seq`.pipe(
        Effect.flatMap(decode(EventRow)),
        failWith("runEvents")
      )
  })
})

/** The workflow tables on the `SqlClient` in context. */
export const layer: Layer.Layer<WorkflowStorage, never, SqlClient.SqlClient> = Layer.effect(WorkflowStorage, make)
