/**
 * OpenAI's Chat Completions behind effect/ai's `LanguageModel`, on the official `openai` SDK. It is
 * the adapter of the whole family: OpenRouter, GLM and any OpenAI-compatible server are this
 * provider with another name, base URL, headers and quirks (see `Config.ts`).
 *
 * One SDK client per provider, built with `maxRetries: 0` (the router decides about retries) and
 * the settings' timeout. Every call passes an `AbortSignal`, so interrupting the Effect (a client
 * that went away, a router timeout) closes the upstream connection at once. The runtime's
 * `RequestId` goes upstream as `X-Request-Id`, its `CallOptions` as sampling parameters. Failures
 * are `AiError`s whose texts are ours (see `map-error.ts`).
 *
 * Beside the `LanguageModel`, each model has a relay (`relay.ts`): the gateway's pass-through of a
 * client's Chat Completions body, over a connection pool of the provider that lives as long as the
 * scope `make` runs in.
 */
import { CallOptions, RequestId, TenantProviderKeys } from "@polyagent/runtime"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as AiError from "effect/ai/AiError"
import * as IdGenerator from "effect/ai/IdGenerator"
import * as LanguageModel from "effect/ai/LanguageModel"
import type * as Response from "effect/ai/Response"
import OpenAI, { APIError } from "openai"
import type { Probe, Provider, Settings } from "../Provider.ts"
import { type Config, derive, openAi, type Quirks } from "./Config.ts"
import { convertCompletion } from "./convert-response.ts"
import { type ErrorContext, mapError, scrub, timeoutError } from "./map-error.ts"
import { buildRequest, codecTransformer, type RequestBody } from "./request.ts"
import * as ConnectionPool from "../ConnectionPool.ts"
import * as Relay from "./relay.ts"
import { makeAssembler } from "./stream.ts"
import { ChatCompletion, ChatCompletionChunk } from "./wire.ts"

/** Settings of a server of the family; unlike {@link Settings} the key may be absent (local servers). */
export interface ClientSettings extends Omit<Settings, "apiKey"> {
  /** Sent as `Authorization: Bearer …`; absent or empty, no `Authorization` header is sent at all. */
  readonly apiKey?: Redacted.Redacted<string> | undefined
}

/** How the provider differs from OpenAI's own API: its name, default base URL, headers, quirks. */
export interface Options {
  readonly name?: string | undefined
  readonly defaultBaseUrl?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly quirks?: Partial<Quirks> | undefined
}

/**
 * A provider of the OpenAI family; without `options`, OpenAI itself. `calls(id)` are the calls
 * of effect/ai's `LanguageModel` for the model `id`; `probe` lists the models (`GET /models`, or the
 * `probePath` quirk) and never fails.
 *
 * `relay(id)` is the pass-through of the model `id` (see `relay.ts`).
 *
 * Gotchas: the scope owns the relay's connection pool: the provider must not be used once it is
 * closed. A streamed answer fails with a timeout when no chunk arrives for `settings.timeout`;
 * the SDK reads `OPENAI_CUSTOM_HEADERS` from the environment (other `OPENAI_*` variables are
 * overridden here).
 */
export const make = (settings: ClientSettings, options?: Options): Effect.Effect<Provider, never, Scope.Scope> =>
  Effect.gen(function* () {
    const config = derive(openAi, options ?? {})
    const baseUrl = (settings.baseUrl ?? config.defaultBaseUrl).replace(/\/+$/, "")
    const timeoutMs = Duration.toMillis(settings.timeout)
    const key = settings.apiKey === undefined ? "" : Redacted.value(settings.apiKey)
    const url = URL.parse(baseUrl)
    // A base URL that does not parse has no pool and no relay: the SDK reports it on each call.
    const pool =
      url === null ? undefined : yield* ConnectionPool.make(url, timeoutMs, settings.pool ?? ConnectionPool.defaults)
    const clientOf = (url: string, withPool: boolean) =>
      new OpenAI({
        // A function keeps the key out of the client's fields; without a key the header is removed.
        apiKey: key === "" ? "unused" : () => Promise.resolve(key),
        baseURL: url,
        organization: null,
        project: null,
        adminAPIKey: null,
        webhookSecret: null,
        maxRetries: 0,
        timeout: timeoutMs,
        logLevel: "off",
        defaultHeaders: key === "" ? { ...config.headers, Authorization: null } : config.headers,
        ...(withPool ? ConnectionPool.sdkFetch(pool) : {})
      })
    const client = clientOf(baseUrl, true)
    // Clients of tenants' own base URLs (`TenantProviderKeys`), over the global dispatcher.
    const tenantClients = new Map<string, OpenAI>()
    const upstream: Upstream = {
      client,
      clientFor: (url) => {
        const found = tenantClients.get(url)
        if (found !== undefined) return found
        if (tenantClients.size >= 100) tenantClients.delete(tenantClients.keys().next().value ?? "")
        const made = clientOf(url.replace(/\/+$/, ""), false)
        tenantClients.set(url, made)
        return made
      },
      config,
      settings,
      timeoutMs,
      chatUrl: publicUrl(`${baseUrl}/chat/completions`),
      secret: key
    }
    // Tenants' own base URLs (`TenantProviderKeys`) are reached through one agent of any origin.
    const tenantAgent = yield* ConnectionPool.makeAgent(timeoutMs)
    const relay =
      url === null || pool === undefined
        ? undefined
        : Relay.make({ config, baseUrl: url, apiKey: key, timeoutMs }, pool, tenantAgent)
    return {
      name: config.name,
      calls: (modelId) => ({
        generateText: (request) => generateText(upstream, modelId, request),
        streamText: (request) => streamText(upstream, modelId, request),
        codecTransformer: codecTransformer(config.quirks)
      }),
      relay,
      probe: probe(upstream)
    }
  })

interface Upstream {
  readonly client: OpenAI
  /** The client of a tenant's own base URL. */
  readonly clientFor: (baseUrl: string) => OpenAI
  readonly config: Config
  readonly settings: ClientSettings
  readonly timeoutMs: number
  readonly chatUrl: string
  readonly secret: string
}

const generateText = (
  upstream: Upstream,
  modelId: string,
  request: LanguageModel.ProviderOptions
): Effect.Effect<Array<Response.PartEncoded>, AiError.AiError, IdGenerator.IdGenerator> =>
  Effect.gen(function* () {
    const body = yield* prepare(upstream, "generateText", modelId, request)
    const { client, headers } = yield* target(upstream)
    const raw = yield* call(upstream, "generateText", "request", (signal) =>
      client.chat.completions.create({ ...body, stream: false }, { signal, headers })
    )
    const completion = yield* decode(upstream, "generateText", ChatCompletion, raw)
    const fallback = yield* fallbackCallIds
    return yield* fromResult(upstream, "generateText", convertCompletion(completion, fallback))
  })

const streamText = (
  upstream: Upstream,
  modelId: string,
  request: LanguageModel.ProviderOptions
): Stream.Stream<Response.StreamPartEncoded, AiError.AiError, IdGenerator.IdGenerator> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const body = yield* prepare(upstream, "streamText", modelId, request)
      const { client, headers } = yield* target(upstream)
      // Aborted when the stream's scope closes: consumer done, interrupted, failed or timed out.
      const controller = yield* Effect.acquireRelease(
        Effect.sync(() => new AbortController()),
        (controller) => Effect.sync(() => controller.abort())
      )
      const chunks = yield* call(upstream, "streamText", "request", (signal) =>
        client.chat.completions.create(
          {
            ...body,
            stream: true,
            ...(upstream.config.quirks.streamOptions ? { stream_options: { include_usage: true } } : {})
          },
          { signal: AbortSignal.any([signal, controller.signal]), headers }
        )
      )
      const assembler = makeAssembler(yield* fallbackCallIds)
      const parts = Stream.fromAsyncIterable(chunks, (error) => error).pipe(
        Stream.timeoutOrElse({
          duration: upstream.settings.timeout,
          orElse: () => Stream.fail(timeoutError(context(upstream, "streamText", 0), "no chunk"))
        }),
        Stream.catch((error) =>
          Stream.fromEffect(
            AiError.isAiError(error) ? Effect.fail(error) : failWith(upstream, "streamText", "stream", error)
          )
        ),
        Stream.mapEffect((chunk) => decode(upstream, "streamText", ChatCompletionChunk, chunk)),
        Stream.map((chunk) => assembler.push(chunk)),
        Stream.flattenIterable
      )
      const closing = Stream.suspend(() =>
        assembler.finished()
          ? Stream.fromIterableEffect(fromResult(upstream, "streamText", assembler.end()))
          : Stream.fail(truncated(upstream))
      )
      return Stream.concat(parts, closing)
    })
  )

const probe = (upstream: Upstream): Effect.Effect<Probe> =>
  Effect.gen(function* () {
    const start = yield* Clock.currentTimeMillis
    const result = yield* Effect.result(
      Effect.tryPromise({
        try: (signal) => upstream.client.get(upstream.config.quirks.probePath, { signal }).withResponse(),
        catch: (error) => error
      })
    )
    const latencyMs = (yield* Clock.currentTimeMillis) - start
    if (Result.isSuccess(result)) {
      const status = result.success.response.status
      return { ok: status >= 200 && status < 300, latencyMs, status }
    }
    const error = result.failure
    return error instanceof APIError && error.status !== undefined
      ? { ok: false, latencyMs, status: error.status }
      : { ok: false, latencyMs }
  })

// ---------------------------------------------------------------------------------------------
// Calls

/** The request body for this call, with the runtime's sampling settings. */
const prepare = (
  upstream: Upstream,
  method: string,
  modelId: string,
  request: LanguageModel.ProviderOptions
): Effect.Effect<RequestBody, AiError.AiError> =>
  Effect.gen(function* () {
    const callOptions = yield* CallOptions.CallOptions
    return yield* fromResult(upstream, method, buildRequest(modelId, request, callOptions, upstream.config.quirks))
  })

const requestHeaders: Effect.Effect<Record<string, string>> = Effect.gen(function* () {
  const id = yield* RequestId.RequestId
  return id === "" ? {} : { "X-Request-Id": id }
})

/**
 * Where this call goes: the provider's client and key, or, when the current tenant has its own
 * key for this provider (`TenantProviderKeys.CurrentCredentials`), that key (and base URL).
 */
const target = (
  upstream: Upstream
): Effect.Effect<{ readonly client: OpenAI; readonly headers: Record<string, string> }> =>
  Effect.gen(function* () {
    const headers = yield* requestHeaders
    const credential = yield* TenantProviderKeys.currentFor(upstream.config.name)
    if (credential === undefined) return { client: upstream.client, headers }
    return {
      client: credential.baseUrl === null ? upstream.client : upstream.clientFor(credential.baseUrl),
      headers: { ...headers, Authorization: `Bearer ${Redacted.value(credential.apiKey)}` }
    }
  })

// Ids for tool calls the server left unnamed: one generated prefix per answer, numbered.
const fallbackCallIds: Effect.Effect<(n: number) => string, never, IdGenerator.IdGenerator> = Effect.gen(function* () {
  const generator = yield* IdGenerator.IdGenerator
  const prefix = yield* generator.generateId()
  return (n: number) => `call_${prefix}_${n}`
})

/** Runs one SDK call with an abort signal tied to the fiber; its failure becomes an `AiError`. */
const call = <A>(
  upstream: Upstream,
  method: string,
  phase: "request" | "stream",
  run: (signal: AbortSignal) => Promise<A>
): Effect.Effect<A, AiError.AiError> =>
  Effect.tryPromise({ try: run, catch: (error) => error }).pipe(
    Effect.catch((error) => failWith(upstream, method, phase, error))
  )

const failWith = (
  upstream: Upstream,
  method: string,
  phase: "request" | "stream",
  error: unknown
): Effect.Effect<never, AiError.AiError> =>
  Effect.flatMap(
    Effect.all([Clock.currentTimeMillis, TenantProviderKeys.currentFor(upstream.config.name)]),
    ([now, credential]) => {
      const aiError = mapError(error, context(upstream, method, now), phase)
      const text = scrub(error instanceof Error ? error.message : String(error), upstream.secret)
      // The upstream's own words stay in the server log, without the server's key or the tenant's.
      return Effect.logDebug("upstream error text").pipe(
        Effect.annotateLogs({
          provider: upstream.config.name,
          method,
          reason: aiError.reason._tag,
          upstream: credential === undefined ? text : scrub(text, Redacted.value(credential.apiKey))
        }),
        Effect.andThen(Effect.fail(aiError))
      )
    }
  )

const decode = <S extends Schema.Decoder<unknown>>(
  upstream: Upstream,
  method: string,
  schema: S,
  value: unknown
): Effect.Effect<S["Type"], AiError.AiError> =>
  Schema.decodeUnknownEffect(schema)(value).pipe(
    Effect.mapError(() =>
      AiError.make({
        module: upstream.config.name,
        method,
        reason: new AiError.InvalidResponseError({ description: "the provider's answer is not a chat completion" })
      })
    )
  )

const fromResult = <A>(
  upstream: Upstream,
  method: string,
  result: Result.Result<A, AiError.AiErrorReason>
): Effect.Effect<A, AiError.AiError> =>
  Result.isSuccess(result)
    ? Effect.succeed(result.success)
    : Effect.fail(AiError.make({ module: upstream.config.name, method, reason: result.failure }))

const context = (upstream: Upstream, method: string, now: number): ErrorContext => ({
  provider: upstream.config.name,
  method,
  url: upstream.chatUrl,
  now,
  timeoutMs: upstream.timeoutMs,
  errorCodes: upstream.config.quirks.errorCodes
})

/** The upstream stream ended without a finish reason: a proxy or the server cut it short. */
const truncated = (upstream: Upstream): AiError.AiError =>
  AiError.make({
    module: upstream.config.name,
    method: "streamText",
    reason: new AiError.NetworkError({
      reason: "TransportError",
      method: "POST",
      url: upstream.chatUrl,
      description: "Connection lost: the stream ended before the answer was finished"
    })
  })

// An endpoint as errors show it: no user info, query or fragment.
const publicUrl = (url: string): string => {
  const parsed = URL.parse(url)
  return parsed === null ? "(invalid base URL)" : `${parsed.origin}${parsed.pathname}`
}
