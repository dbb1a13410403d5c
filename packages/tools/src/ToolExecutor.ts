/**
 * Runs the tool calls a model makes. A call's arguments are decoded with the tool's parameter
 * Schema, its permissions checked against what the agent grants, and its handler run with its
 * plugin's services, the host services its granted permissions unlock, a timeout, and a permit
 * from a concurrency limit shared by all calls. The result is encoded with the tool's result
 * Schema and bounded in size. Whatever happens, the answer is a `ToolResult` the model can read:
 * a failing or misbehaving tool never fails the turn.
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Semaphore from "effect/Semaphore"
import * as Tool from "./Tool.ts"
import { type RegisteredTool, ToolRegistry } from "./ToolRegistry.ts"

/** A call the model made: `arguments` is the model's JSON, not yet decoded. */
export const ToolCall = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  arguments: Schema.Unknown
})
export type ToolCall = typeof ToolCall.Type

/** Why a call produced no result; the model sees it with a message. */
export const ToolErrorType = Schema.Literals([
  "unknown_tool",
  "invalid_arguments",
  "forbidden",
  "timeout",
  "failed",
  "result_too_large"
])
export type ToolErrorType = typeof ToolErrorType.Type

/**
 * What a call answers, for the model and for storage. `result` is the JSON text of the
 * handler's value encoded with the tool's `success` Schema.
 */
export const ToolResult = Schema.Union([
  Schema.Struct({
    id: Schema.String,
    name: Schema.String,
    status: Schema.Literal("ok"),
    result: Schema.String
  }),
  Schema.Struct({
    id: Schema.String,
    name: Schema.String,
    status: Schema.Literal("error"),
    error: Schema.Struct({ type: ToolErrorType, message: Schema.String })
  })
])
export type ToolResult = typeof ToolResult.Type

/**
 * Which service keys each permission unlocks, e.g. `{ network: [SafeHttp] }`. The executor's
 * layer requires these services; a tool gets them only when it declares the permission and
 * the call's grant includes it.
 */
export type HostServices = { readonly [P in Tool.Permission]?: ReadonlyArray<Context.Key<unknown, unknown>> }

/** The services the keys of `H` stand for: what {@link layer} requires. */
export type HostServicesOf<H extends HostServices> = {
  [P in keyof H]-?: NonNullable<H[P]> extends ReadonlyArray<infer K> ? Context.Service.Identifier<K> : never
}[keyof H]

/** How calls are bounded. */
export interface Options<H extends HostServices> {
  /** How long a handler may run once it has a permit; default 30 seconds. */
  readonly timeout?: Duration.Input | undefined
  /** How many handlers may run at once, across all calls; default 8. */
  readonly concurrency?: number | undefined
  /** The largest result, in bytes of its JSON text; default 64 KiB. */
  readonly maxResultBytes?: number | undefined
  /** The services PolyAgent lends tools, per permission. */
  readonly hostServices?: H | undefined
}

/** Runs tool calls; never fails. */
export class ToolExecutor extends Context.Service<
  ToolExecutor,
  {
    /** Runs one call. Interrupting it interrupts the handler. */
    readonly run: (call: ToolCall, grant: ReadonlySet<Tool.Permission>) => Effect.Effect<ToolResult>
    /** Runs the model's parallel calls together (within the concurrency limit), results in call order. */
    readonly runAll: (
      calls: ReadonlyArray<ToolCall>,
      grant: ReadonlySet<Tool.Permission>
    ) => Effect.Effect<ReadonlyArray<ToolResult>>
  }
>()("@polyagent/tools/ToolExecutor") {}

const failure = (call: ToolCall, type: ToolErrorType, message: string): ToolResult => ({
  id: call.id,
  name: call.name,
  status: "error",
  error: { type, message }
})

// Shown instead of a defect's cause, which is logged: stacks and internals are not for the model.
const unexpected = (name: string) => `tool "${name}" failed unexpectedly`

/**
 * Builds an executor over the registry's tools. The host services named in `options` are taken
 * from the environment when the executor is built.
 */
export const make = <const H extends HostServices = {}>(
  options: Options<H> = {}
): Effect.Effect<ToolExecutor["Service"], never, ToolRegistry | HostServicesOf<H>> =>
  Effect.gen(function* () {
    const registry = yield* ToolRegistry
    const timeout = Duration.fromInputUnsafe(options.timeout ?? "30 seconds")
    const maxResultBytes = options.maxResultBytes ?? 64 * 1024
    const semaphore = yield* Semaphore.make(options.concurrency ?? 8)
    const environment = yield* Effect.context<HostServicesOf<H>>()
    const hostServices = new Map<Tool.Permission, Context.Context<never>>()
    const hostKeys: Array<Context.Key<unknown, unknown>> = []
    for (const [permission, keys] of hostEntries(options.hostServices)) {
      hostServices.set(permission, Context.pick(...keys)(environment))
      hostKeys.push(...keys)
    }
    // A handler sees the caller's services minus every host service, then its plugin's, then
    // the host services of its (granted) permissions: a caller holding `SafeHttp` lends it to no
    // tool that did not ask for it.
    const contextFor = (entry: RegisteredTool) => {
      const granted = entry.tool.permissions.reduce(
        (context, permission) => Context.merge(context, hostServices.get(permission) ?? Context.empty()),
        entry.context
      )
      return (caller: Context.Context<never>) => widen(Context.merge(Context.omit(...hostKeys)(caller), granted))
    }

    const invoke = Effect.fnUntraced(function* (call: ToolCall, entry: RegisteredTool) {
      const { tool } = entry
      const decoded = yield* Effect.result(decode(tool, call.arguments))
      if (Result.isFailure(decoded)) {
        return failure(call, "invalid_arguments", `invalid arguments for tool "${tool.name}": ${decoded.failure}`)
      }
      const exit = yield* semaphore.withPermit(
        Effect.exit(
          Effect.timeoutOption(Effect.scoped(Effect.suspend(() => handlerOf(tool)(decoded.success))), timeout)
        )
      )
      if (Exit.isFailure(exit)) {
        const error = Cause.findErrorOption(exit.cause)
        // Not `instanceof`: an installed plugin may bring its own copy of `@polyagent/tools`.
        if (Option.isSome(error) && isToolFailure(error.value)) {
          return failure(call, "failed", error.value.message)
        }
        yield* Effect.logError("tool failed unexpectedly", exit.cause)
        return failure(call, "failed", unexpected(tool.name))
      }
      if (Option.isNone(exit.value)) {
        return failure(call, "timeout", `tool "${tool.name}" did not finish within ${Duration.format(timeout)}`)
      }
      const encoded = yield* Effect.exit(encode(tool, exit.value.value))
      if (Exit.isFailure(encoded)) {
        yield* Effect.logError("tool returned a value its result Schema rejects", encoded.cause)
        return failure(call, "failed", unexpected(tool.name))
      }
      const bytes = Buffer.byteLength(encoded.value, "utf8")
      if (bytes > maxResultBytes) {
        return failure(
          call,
          "result_too_large",
          `tool "${tool.name}" returned ${bytes} bytes, over the limit of ${maxResultBytes}: ask for less`
        )
      }
      const ok: ToolResult = { id: call.id, name: call.name, status: "ok", result: encoded.value }
      return ok
    })

    const run = Effect.fn("ToolExecutor.run")(function* (call: ToolCall, grant: ReadonlySet<Tool.Permission>) {
      yield* Effect.annotateCurrentSpan({ "tool.name": call.name, "tool.call_id": call.id })
      const found = registry.get(call.name)
      if (Option.isNone(found)) {
        return failure(call, "unknown_tool", `there is no tool named "${call.name}"`)
      }
      const entry = found.value
      const missing = entry.tool.permissions.filter((permission) => !grant.has(permission))
      if (missing.length > 0) {
        return failure(
          call,
          "forbidden",
          `tool "${call.name}" needs the ${missing.map((p) => `"${p}"`).join(", ")} permission, which this agent does not grant`
        )
      }
      return yield* Effect.updateContext(invoke(call, entry), contextFor(entry)).pipe(
        Effect.annotateLogs({ tool: call.name, plugin: entry.plugin.name, callId: call.id })
      )
    })

    return ToolExecutor.of({
      run,
      runAll: (calls, grant) => Effect.forEach(calls, (call) => run(call, grant), { concurrency: "unbounded" })
    })
  })

/**
 * The executor as a layer, requiring the registry and the host services named in
 * `options.hostServices`: `layer({ hostServices: { network: [SafeHttp] } })` needs `SafeHttp`.
 */
export const layer = <const H extends HostServices = {}>(
  options: Options<H> = {}
): Layer.Layer<ToolExecutor, never, ToolRegistry | HostServicesOf<H>> => Layer.effect(ToolExecutor, make(options))

const isPermission = Schema.is(Tool.Permission)

const hostEntries = (
  hostServices: HostServices | undefined
): ReadonlyArray<readonly [Tool.Permission, ReadonlyArray<Context.Key<unknown, unknown>>]> =>
  Object.entries(hostServices ?? {}).flatMap(([permission, keys]) =>
    isPermission(permission) && keys !== undefined ? [[permission, keys] as const] : []
  )

// What the executor knows of a loaded tool at run time: unknown values and services.
const handlerOf = (tool: Tool.Any): ((params: unknown) => Effect.Effect<unknown, Tool.ToolFailure, unknown>) =>
  tool.handler

const decode = (tool: Tool.Any, input: unknown): Effect.Effect<unknown, string, unknown> =>
  Schema.decodeUnknownEffect(tool.parameters)(input, { errors: "all" }).pipe(
    Effect.mapError((error) => describeIssue(error.issue))
  )

const encode = (tool: Tool.Any, value: unknown): Effect.Effect<string, unknown, unknown> =>
  Schema.encodeUnknownEffect(tool.success)(value).pipe(
    Effect.flatMap((encoded) => Effect.try(() => JSON.stringify(encoded) ?? "null"))
  )

// "city: Expected string, got 1; days: Expected an integer, got 2.5"
const describeIssue = (issue: SchemaIssue.Issue): string =>
  SchemaIssue.makeFormatterStandardSchemaV1()(issue)
    .issues.map(({ message, path }) =>
      path === undefined || path.length === 0 ? message : `${path.map(String).join(".")}: ${message}`
    )
    .join("; ")

const isToolFailure = (u: unknown): u is Tool.ToolFailure =>
  Predicate.isTagged(u, "ToolFailure") && Predicate.hasProperty(u, "message") && Predicate.isString(u.message)

/**
 * The services a loaded tool needs are known only at run time: it gets its plugin's and the host
 * services it was granted, and a service nobody provides surfaces as a defect ("failed").
 */
const widen = (context: Context.Context<never>): Context.Context<unknown> => Context.makeUnsafe(context.mapUnsafe)
