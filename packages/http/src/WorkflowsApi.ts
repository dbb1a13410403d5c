/**
 * The workflows' part of the HTTP API (../shared/API.md "Workflows"): definitions, runs, their
 * events, and the decisions on runs waiting for approval.
 */
import * as Schema from "effect/Schema"
import * as HttpApiEndpoint from "effect/http-api/HttpApiEndpoint"
import * as HttpApiGroup from "effect/http-api/HttpApiGroup"
import * as HttpApiSchema from "effect/http-api/HttpApiSchema"
import * as OpenApi from "effect/http-api/OpenApi"
import * as ApiError from "./ApiError.ts"
import { Deleted } from "./AdminApi.ts"
import { Authentication } from "./ApiSecurity.ts"

/** A workflow as `POST /v1/workflows` answers it and the list shows it. */
export const WorkflowSummary = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  version: Schema.Int,
  created_at: Schema.String
})

/** A stored workflow: its newest version, with the definition as submitted. */
export const WorkflowDetail = Schema.Struct({ ...WorkflowSummary.fields, definition: Schema.Unknown })

/** One step run of a workflow run (a loop's steps once per pass, named `loop[pass].step`). */
export const WorkflowStepRun = Schema.Struct({
  name: Schema.String,
  status: Schema.Literals(["running", "waiting", "completed", "failed", "skipped", "rejected"]),
  output: Schema.Unknown,
  error: Schema.NullOr(Schema.String),
  attempts: Schema.Int,
  cost_usd: Schema.Number,
  started_at: Schema.NullOr(Schema.String),
  finished_at: Schema.NullOr(Schema.String)
})

/** A workflow run. */
export const WorkflowRun = Schema.Struct({
  id: Schema.String,
  workflow_id: Schema.String,
  version: Schema.Int,
  status: Schema.Literals(["running", "waiting", "completed", "failed", "cancelled"]),
  input: Schema.Unknown,
  steps: Schema.Array(WorkflowStepRun),
  output: Schema.Unknown,
  error: Schema.NullOr(Schema.String),
  cost_usd: Schema.Number,
  created_at: Schema.String,
  updated_at: Schema.String
})

/** An event of `GET /v1/workflows/runs/{id}/events`; `data` is JSON. */
export const WorkflowEvent = Schema.Struct({
  event: Schema.Literals(["step_started", "step_finished", "waiting", "completed", "failed"]),
  data: Schema.String
})
export type WorkflowEvent = typeof WorkflowEvent.Type

const Comment = Schema.Struct({ comment: Schema.optional(Schema.String.check(Schema.isMaxLength(10_000))) })

const workflowErrors = [
  ApiError.InvalidRequest,
  ApiError.Forbidden,
  ApiError.NotFound,
  ApiError.Conflict,
  ApiError.Internal,
  ApiError.Unavailable
] as const

export class WorkflowsGroup extends HttpApiGroup.make("workflows")
  .add(
    HttpApiEndpoint.post("create", "/v1/workflows", {
      payload: Schema.Record(Schema.String, Schema.Unknown),
      success: WorkflowSummary.pipe(HttpApiSchema.status(201)),
      error: workflowErrors
    }).annotateMerge(
      OpenApi.annotations({
        description:
          "Stores a workflow definition (builder role). A definition whose name the tenant already uses is the " +
          "next version of that workflow (same id); runs keep the version they started with. An invalid " +
          "definition answers 400 with a message naming the step at fault."
      })
    ),
    HttpApiEndpoint.get("list", "/v1/workflows", {
      success: Schema.Struct({ data: Schema.Array(WorkflowSummary) }),
      error: workflowErrors
    }),
    HttpApiEndpoint.get("get", "/v1/workflows/:id", {
      params: { id: Schema.String },
      success: WorkflowDetail,
      error: workflowErrors
    }),
    HttpApiEndpoint.delete("delete", "/v1/workflows/:id", {
      params: { id: Schema.String },
      success: Deleted,
      error: workflowErrors
    }),
    HttpApiEndpoint.post("start", "/v1/workflows/:id/runs", {
      params: { id: Schema.String },
      payload: Schema.Struct({ input: Schema.optional(Schema.Unknown) }),
      success: Schema.Struct({ id: Schema.String, status: Schema.Literal("running") }).pipe(HttpApiSchema.status(202)),
      error: workflowErrors
    }),
    HttpApiEndpoint.get("run", "/v1/workflows/runs/:id", {
      params: { id: Schema.String },
      success: WorkflowRun,
      error: workflowErrors
    }),
    HttpApiEndpoint.get("events", "/v1/workflows/runs/:id/events", {
      params: { id: Schema.String },
      success: HttpApiSchema.StreamSse({ events: WorkflowEvent }),
      error: workflowErrors
    }),
    HttpApiEndpoint.post("approve", "/v1/workflows/runs/:id/approve", {
      params: { id: Schema.String },
      payload: Comment,
      success: WorkflowRun,
      error: workflowErrors
    }),
    HttpApiEndpoint.post("reject", "/v1/workflows/runs/:id/reject", {
      params: { id: Schema.String },
      payload: Comment,
      success: WorkflowRun,
      error: workflowErrors
    }),
    HttpApiEndpoint.post("cancel", "/v1/workflows/runs/:id/cancel", {
      params: { id: Schema.String },
      payload: Comment,
      success: WorkflowRun,
      error: workflowErrors
    })
  )
  .middleware(Authentication) {}
