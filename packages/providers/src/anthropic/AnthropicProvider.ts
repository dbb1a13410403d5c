/**
 * Anthropic's Messages API behind effect/ai's `LanguageModel`, on the official `@anthropic-ai/sdk`.
 * One SDK client per provider, built once, over the provider's connection pool (`ConnectionPool.ts`,
 * which lives as long as the scope), with no retries of its own (the router decides what to
 * retry, and on which model) and the configured timeout. Every call reads the current `RequestId`
 * (sent upstream as `X-Request-Id`) and `CallOptions` (token limit, stop sequences, user id), and is
 * bound by an `AbortSignal`: interrupting the Effect, or the configured timeout, closes the HTTP
 * request at once. The conversions live beside this file; this module only wires them to the SDK.
 */
import Anthropic, { APIError } from "@anthropic-ai/sdk"
import type { MessageCreateParamsBase } from "@anthropic-ai/sdk/resources/messages"
import { CallOptions, RequestId, TenantProviderKeys } from "@polyagent/runtime"
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import type * as JsonSchema from "effect/JsonSchema"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as AiError from "effect/ai/AiError"
import * as AnthropicStructuredOutput from "effect/ai/AnthropicStructuredOutput"
import * as LanguageModel from "effect/ai/LanguageModel"
import type * as Response from "effect/ai/Response"
import * as ConnectionPool from "../ConnectionPool.ts"
import type { Calls, Probe, Provider, Settings } from "../Provider.ts"
import * as Config from "./Config.ts"
import { convertMessages } from "./convert-messages.ts"
import { convertResponse } from "./convert-response.ts"
import { convertTools } from "./convert-tools.ts"
import { type RequestInfo, timeoutReason, toAiError, toAiErrorReason } from "./map-error.ts"
import * as AnthropicStream from "./stream.ts"

/**
 * The Anthropic provider for `settings`. Building it makes no request; `probe` is the cheap health
 * check (`GET /v1/models?limit=1`), and `calls(id)` those of a model for any id the API knows.
 *
 * Gotchas: under the pinned API version (`Config.apiVersion`) the Messages API takes no
 * `temperature` or `top_p`, so those `CallOptions` are not sent; a streamed answer is bounded by
 * `settings.timeout` until its first byte and then between two events, not as a whole.
 */
export const make = (settings: Settings): Effect.Effect<Provider, never, Scope.Scope> =>
  Effect.gen(function* () {
    const baseUrl = (settings.baseUrl ?? Config.defaultBaseUrl).replace(/\/+$/u, "")
    const url = URL.parse(baseUrl)
    // A base URL that does not parse has no pool: the SDK reports it on each call.
    const pool =
      url === null
        ? undefined
        : yield* ConnectionPool.make(
            url,
            Config.timeoutMillis(settings.timeout),
            settings.pool ?? ConnectionPool.defaults
          )
    const clientOf = (url: string, withPool: boolean) =>
      new Anthropic({
        apiKey: Redacted.value(settings.apiKey),
        baseURL: url,
        timeout: Config.timeoutMillis(settings.timeout),
        maxRetries: 0,
        defaultHeaders: { "anthropic-version": Config.apiVersion },
        // Explicit, so the SDK neither logs (its debug log prints request headers and bodies) nor
        // traces on its own: effect/ai's spans already cover each call.
        logLevel: "off",
        openTelemetry: false,
        ...(withPool ? ConnectionPool.sdkFetch(pool) : {})
      })
    const client = clientOf(baseUrl, true)
    // Clients of tenants' own base URLs (`TenantProviderKeys`), over the global dispatcher.
    const tenantClients = new Map<string, Anthropic>()
    const clientFor = (url: string) => {
      const found = tenantClients.get(url)
      if (found !== undefined) return found
      if (tenantClients.size >= 100) tenantClients.delete(tenantClients.keys().next().value ?? "")
      const made = clientOf(url.replace(/\/+$/u, ""), false)
      tenantClients.set(url, made)
      return made
    }
    const context: CallContext = {
      client,
      clientFor,
      settings,
      messages: { method: "POST", url: `${baseUrl}/v1/messages` }
    }
    return {
      name: Config.providerName,
      calls: (modelId) => calls(context, modelId),
      probe: probe(client, settings)
    }
  })

// ---------------------------------------------------------------------------------------------
// Language model

interface CallContext {
  readonly client: Anthropic
  /** The client of a tenant's own base URL. */
  readonly clientFor: (baseUrl: string) => Anthropic
  readonly settings: Settings
  readonly messages: RequestInfo
}

const calls = (context: CallContext, modelId: string): Calls => ({
  codecTransformer: AnthropicStructuredOutput.toCodecAnthropic,
  generateText: (options) => generateText(context, modelId, options),
  streamText: (options) => streamText(context, modelId, options)
})

const generateText = Effect.fn("AnthropicProvider.generateText")(function* (
  context: CallContext,
  modelId: string,
  options: LanguageModel.ProviderOptions
) {
  const body = yield* requestBody(modelId, options, "generateText")
  const { client, headers } = yield* target(context)
  const message = yield* call(context.messages, "generateText", (signal) =>
    client.messages.create({ ...body, stream: false }, { headers, signal })
  ).pipe(withTimeout(context, "generateText"))
  const timestamp = DateTime.formatIso(yield* DateTime.now)
  return yield* Effect.mapError(Effect.fromResult(convertResponse(message, timestamp)), (reason) =>
    toAiError("generateText", reason)
  )
})

const streamText = (
  context: CallContext,
  modelId: string,
  options: LanguageModel.ProviderOptions
): Stream.Stream<Response.StreamPartEncoded, AiError.AiError> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const body = yield* requestBody(modelId, options, "streamText")
      const { client, headers } = yield* target(context)
      // Aborted when the stream's scope closes: on interruption, on failure, and after the end.
      const controller = yield* Effect.acquireRelease(
        Effect.sync(() => new AbortController()),
        (controller) => Effect.sync(() => controller.abort())
      )
      const events = yield* call(context.messages, "streamText", () =>
        client.messages.create({ ...body, stream: true }, { headers, signal: controller.signal })
      ).pipe(withTimeout(context, "streamText"))
      const now = yield* Clock.currentTimeMillis
      const state = AnthropicStream.initial({
        timestamp: DateTime.formatIso(DateTime.makeUnsafe(now)),
        request: context.messages
      })
      // `now` only resolves a `retry-after` date, should a streamed error carry one.
      return Stream.fromAsyncIterable(events, (cause) =>
        toAiError("streamText", toAiErrorReason(cause, context.messages, now))
      ).pipe(
        // Anthropic pings an idle stream, so a long silence means the connection is gone.
        Stream.timeoutOrElse({
          duration: context.settings.timeout,
          orElse: () => Stream.fail(toAiError("streamText", timeoutReason(context.messages)))
        }),
        Stream.map((event): AnthropicStream.Input => ({ _tag: "Event", event })),
        Stream.concat(Stream.succeed<AnthropicStream.Input>({ _tag: "End" })),
        Stream.mapAccumEffect(
          () => state,
          (state, input) =>
            Effect.mapError(Effect.fromResult(AnthropicStream.step(state, input)), (reason) =>
              toAiError("streamText", reason)
            )
        )
      )
    })
  )

// ---------------------------------------------------------------------------------------------
// Requests

const requestBody = (
  modelId: string,
  options: LanguageModel.ProviderOptions,
  method: string
): Effect.Effect<MessageCreateParamsBase, AiError.AiError> =>
  Effect.flatMap(CallOptions.CallOptions, (callOptions) =>
    Effect.mapError(
      Effect.fromResult(
        Result.gen(function* () {
          const { system, messages } = yield* convertMessages(options.prompt)
          const { tools, toolChoice } = yield* convertTools(options.tools, options.toolChoice)
          const body: MessageCreateParamsBase = {
            model: modelId,
            max_tokens: callOptions.maxTokens ?? Config.defaultMaxTokens(modelId),
            messages,
            ...(system === undefined ? {} : { system }),
            ...(tools === undefined ? {} : { tools }),
            ...(toolChoice === undefined ? {} : { tool_choice: toolChoice }),
            ...(callOptions.stop === undefined || callOptions.stop.length === 0
              ? {}
              : { stop_sequences: [...callOptions.stop] }),
            ...(callOptions.user === undefined ? {} : { metadata: { user_id: callOptions.user } }),
            ...(options.responseFormat.type === "json"
              ? {
                  output_config: {
                    format: { type: "json_schema", schema: yield* outputSchema(options.responseFormat.schema) }
                  }
                }
              : {})
          }
          return body
        })
      ),
      (reason) => toAiError(method, reason)
    )
  )

// The JSON Schema of a structured answer, in the subset Anthropic accepts. The conversion throws
// on what that subset cannot express (recursive schemas, for one).
const outputSchema = (schema: Schema.Top): Result.Result<JsonSchema.JsonSchema, AiError.AiErrorReason> =>
  Result.try({
    try: () => AnthropicStructuredOutput.toCodecAnthropic(schema).jsonSchema,
    catch: () => new AiError.UnsupportedSchemaError({ description: "Anthropic cannot express this output schema" })
  })

// The request id of the client request being served, when there is one.
const requestHeaders: Effect.Effect<Record<string, string>> = Effect.map(RequestId.RequestId, (requestId) =>
  requestId.length > 0 ? { "X-Request-Id": requestId } : {}
)

/**
 * Where this call goes: the provider's client and key, or, when the current tenant has its own
 * key for Anthropic (`TenantProviderKeys.CurrentCredentials`), that key (and base URL).
 */
const target = (
  context: CallContext
): Effect.Effect<{ readonly client: Anthropic; readonly headers: Record<string, string> }> =>
  Effect.gen(function* () {
    const headers = yield* requestHeaders
    const credential = yield* TenantProviderKeys.currentFor(Config.providerName)
    if (credential === undefined) return { client: context.client, headers }
    return {
      client: credential.baseUrl === null ? context.client : context.clientFor(credential.baseUrl),
      headers: { ...headers, "X-Api-Key": Redacted.value(credential.apiKey) }
    }
  })

// Runs one SDK call with an abort signal; a failure becomes an `AiError` of `method`.
const call = <A>(
  request: RequestInfo,
  method: string,
  run: (signal: AbortSignal) => PromiseLike<A>
): Effect.Effect<A, AiError.AiError> =>
  Effect.tryPromise({ try: run, catch: (cause) => cause }).pipe(
    Effect.catch((cause) => failWith(request, method, cause))
  )

const failWith = (request: RequestInfo, method: string, cause: unknown): Effect.Effect<never, AiError.AiError> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.fail(toAiError(method, toAiErrorReason(cause, request, now))))

// The SDK's own timer stops once the answer's headers arrive; this one also covers a body that
// never comes. Either way the request is aborted and the reason is a timeout.
const withTimeout =
  (context: CallContext, method: string) =>
  <A>(effect: Effect.Effect<A, AiError.AiError>): Effect.Effect<A, AiError.AiError> =>
    Effect.timeoutOrElse(effect, {
      duration: context.settings.timeout,
      orElse: () => Effect.fail(toAiError(method, timeoutReason(context.messages)))
    })

// ---------------------------------------------------------------------------------------------
// Probe

// Listing one model is authenticated and free; any answer but a 2xx in time is a failed probe.
const probe = (client: Anthropic, settings: Settings): Effect.Effect<Probe> =>
  Effect.gen(function* () {
    const start = yield* Clock.currentTimeMillis
    const outcome = yield* Effect.tryPromise({
      try: (signal) => client.models.list({ limit: 1 }, { signal }).withResponse(),
      catch: (cause) => cause
    }).pipe(
      Effect.map(({ response }) => ({ ok: true, status: response.status })),
      Effect.catch((cause) =>
        Effect.succeed({ ok: false, status: cause instanceof APIError ? cause.status : undefined })
      ),
      Effect.timeoutOrElse({
        duration: settings.timeout,
        orElse: () => Effect.succeed({ ok: false, status: undefined })
      })
    )
    return { ...outcome, latencyMs: (yield* Clock.currentTimeMillis) - start }
  })
