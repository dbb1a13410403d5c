/**
 * A tool the model can call: a name, a description, a Schema for its parameters (the model
 * is shown the JSON Schema derived from it), a Schema for its result, the permissions it
 * needs, and an Effect handler. Tools are defined by plugin authors with `Tool.make` and run
 * by the executor, which decodes the model's arguments, checks permissions, bounds time and
 * result size, and turns every failure into a result the model can read.
 */
import type * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type * as JsonSchema from "effect/JsonSchema"

const TypeId = "~@polyagent/tools/Tool"

/**
 * What a tool may need beyond computing: `network` (outbound HTTP through the guarded client
 * of `SafeHttp`). A tool gets only what it declares and the agent allows.
 */
export const Permission = Schema.Literals(["network"])
export type Permission = typeof Permission.Type

/** How a tool fails on purpose; the model sees `message`, so write it for the model. */
export class ToolFailure extends Schema.TaggedError<ToolFailure>()("ToolFailure", {
  message: Schema.String
}) {}

/** A tool whose handler needs the services `R`. */
export interface Tool<
  Name extends string = string,
  Parameters extends Schema.Top = Schema.Top,
  Success extends Schema.Top = Schema.Top,
  R = never
> {
  readonly [TypeId]: typeof TypeId
  readonly name: Name
  readonly description: string
  readonly parameters: Parameters
  readonly success: Success
  readonly permissions: ReadonlyArray<Permission>
  readonly handler: (params: Parameters["Type"]) => Effect.Effect<Success["Type"], ToolFailure, R>
}

/** Any tool, whatever its schemas and services. */
// oxlint-disable-next-line typescript/no-explicit-any -- a handler's parameters and services vary per tool
export type Any = Tool<string, any, any, any>

/** Names the model can call: what OpenAI and Anthropic both accept. */
export const namePattern = /^[A-Za-z0-9_-]{1,64}$/

/**
 * Defines a tool. `parameters` should be a `Schema.Struct` (models call tools with a JSON
 * object); `permissions` defaults to none.
 */
export const make = <const Name extends string, Parameters extends Schema.Top, Success extends Schema.Top, R = never>(
  name: Name,
  options: {
    readonly description: string
    readonly parameters: Parameters
    readonly success: Success
    readonly permissions?: ReadonlyArray<Permission> | undefined
    readonly handler: (params: Parameters["Type"]) => Effect.Effect<Success["Type"], ToolFailure, R>
  }
): Tool<Name, Parameters, Success, R> => ({
  [TypeId]: TypeId,
  name,
  description: options.description,
  parameters: options.parameters,
  success: options.success,
  permissions: options.permissions ?? [],
  handler: options.handler
})

/** Whether `u` is a tool made by {@link make} (plugins are loaded from untrusted modules). */
export const isTool = (u: unknown): u is Any => Predicate.hasProperty(u, TypeId)

/** The JSON Schema of the tool's parameters, as the model is shown it. */
export const jsonSchema = (tool: Any): JsonSchema.JsonSchema => {
  const document = Schema.toJsonSchemaDocument(tool.parameters)
  return Object.keys(document.definitions).length > 0
    ? { ...document.schema, $defs: document.definitions }
    : document.schema
}
