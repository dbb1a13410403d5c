/**
 * The Chat Completions pass-through ("relay") of the OpenAI family: the gateway's hot path. The
 * client's request body, shaped for the provider by {@link upstreamBody} (model id, quirks), goes
 * upstream as JSON over one keep-alive undici `Pool` per provider (`ConnectionPool.ts`), and the upstream's answer comes
 * back as its bytes, untouched: no SDK, no effect/ai conversions, no Schema decoding either way.
 * Each call reports what it used to the caller's meter (`relay-meter.ts`): a stream is passed on
 * in whole SSE events, and its usage event only when the client asked for it.
 *
 * Failures are classified as on the SDK path: a non-2xx answer becomes the SDK's own `APIError`
 * and goes through `mapError`, and undici's transport errors become the SDK's connection errors or
 * a timeout, so statuses, vendor codes, `Retry-After` and "no upstream text in an error" hold alike.
 */
import { type ModelCatalog, TenantProviderKeys, Usage } from "@polyagent/runtime"
import * as Redacted from "effect/Redacted"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Latch from "effect/Latch"
import * as Predicate from "effect/Predicate"
import type * as Pull from "effect/Pull"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type * as AiError from "effect/ai/AiError"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { constVoid } from "effect/Function"
import type { IncomingHttpHeaders } from "node:http"
import type { Readable } from "node:stream"
import { APIConnectionError, APIError, APIUserAbortError } from "openai"
import type { Dispatcher } from "undici"
import { type Collected, CollectError, collect } from "../internal/collect.ts"
import type { Config, Quirks } from "./Config.ts"
import { type ErrorContext, mapError, scrub, timeoutError } from "./map-error.ts"
import { asksUsage, promptTokensOf, StreamMeter, usageOfWire } from "./relay-meter.ts"

// ---------------------------------------------------------------------------------------------
// The request body

/**
 * The body sent upstream for the model `modelId`: the client's `body` with `model` set, `stream`
 * set (streamed) or removed, and the server's `quirks` applied: the token limit, whether the client
 * named it `max_tokens` or `max_completion_tokens`, goes under `quirks.maxTokensParam` (the field
 * the quirk names wins when both are sent); `temperature` is kept within `[0, maxTemperature]`;
 * `user` and `stream_options` are dropped where the server does not take them (where it does, a
 * stream asks for `include_usage`, to meter it); with
 * `toolChoice: "auto"` a forced tool choice is only asked for. Every other field goes as the
 * client sent it. `body` is not modified.
 *
 * Gotchas: a non-streamed body never carries `stream_options` (OpenAI rejects it without
 * `stream`). With `toolChoice: "auto"`, `tool_choice: "none"` is sent as no tools at all (nor
 * `parallel_tool_calls`), and a named function as `auto` over that function alone, as the SDK
 * path does.
 */
export const upstreamBody = (
  body: ModelCatalog.RelayBody,
  modelId: string,
  quirks: Quirks,
  stream: boolean
): Record<string, unknown> => {
  const {
    stream: _stream,
    stream_options,
    max_tokens,
    max_completion_tokens,
    temperature,
    user,
    tools,
    tool_choice,
    parallel_tool_calls,
    ...rest
  } = body
  const upstream: Record<string, unknown> = { ...rest, model: modelId }
  if (stream) {
    upstream.stream = true
    // Usage is asked for, so that the relay can meter the stream; it is dropped if the client did not ask.
    if (quirks.streamOptions) {
      upstream.stream_options = Predicate.isObject(stream_options)
        ? { ...stream_options, include_usage: true }
        : { include_usage: true }
    }
  }
  const limit =
    quirks.maxTokensParam === "max_tokens"
      ? (max_tokens ?? max_completion_tokens)
      : (max_completion_tokens ?? max_tokens)
  if (limit !== undefined) upstream[quirks.maxTokensParam] = limit
  if (temperature !== undefined) {
    upstream.temperature =
      typeof temperature === "number" ? Math.min(Math.max(temperature, 0), quirks.maxTemperature) : temperature
  }
  if (user !== undefined && quirks.sendUser) upstream.user = user
  const onlyAuto = quirks.toolChoice === "auto"
  if (onlyAuto && tool_choice === "none") return upstream
  const forced = onlyAuto && tool_choice !== undefined && tool_choice !== "auto"
  if (tools !== undefined) upstream.tools = forced ? namedOnly(tools, tool_choice) : tools
  if (tool_choice !== undefined) upstream.tool_choice = forced ? "auto" : tool_choice
  if (parallel_tool_calls !== undefined) upstream.parallel_tool_calls = parallel_tool_calls
  return upstream
}

// The tools of a choice that names a function: that function alone, when the list has it.
const namedOnly = (tools: unknown, choice: unknown): unknown => {
  const name = functionName(choice)
  if (name === undefined || !Array.isArray(tools)) return tools
  const named = tools.filter((tool) => functionName(tool) === name)
  return named.length === 0 ? tools : named
}

// `{ function: { name } }`, the shape of both a function tool and a named tool choice.
const functionName = (value: unknown): unknown =>
  Predicate.hasProperty(value, "function") && Predicate.hasProperty(value.function, "name")
    ? value.function.name
    : undefined

// ---------------------------------------------------------------------------------------------
// The relay

/** Where a provider's relay sends its requests. */
export interface Target {
  readonly config: Config
  /** The base URL, ending before `/chat/completions`; it may carry a path (`/api/paas/v4`). */
  readonly baseUrl: URL
  /** Sent as `Authorization: Bearer …`; empty, no `Authorization` header is sent. */
  readonly apiKey: string
  /** How long the response headers, then each chunk of the body, may take (reported in timeouts). */
  readonly timeoutMs: number
}

/** The relay of each model of one provider. */
export type Relays = (modelId: string) => ModelCatalog.Relay<AiError.AiError>

/**
 * The relays of the provider at `target`, over `pool`, the provider's connection pool to the base
 * URL's origin (`ConnectionPool.make`: its size, HTTP/2, timeouts and queue).
 *
 * A relay's `complete` sends the request when run; `stream` when the stream runs. Interrupting
 * either, or a consumer that stops reading the stream early, aborts the request at once, which
 * closes its connection (an HTTP/2 stream, not the session). `X-Request-Id` is sent when
 * `requestId` is not empty. The `meter` is told once what the call used, when it ends, whichever
 * way it ends.
 *
 * Gotchas: the timeout is not a total deadline: the headers must come within it, then each chunk
 * of the body within it of the previous one, so a silent upstream fails and a slow stream does
 * not. Its clock starts when the request gets a connection: time queued in the pool does not
 * count. undici checks these timeouts about twice a second: one fires up to a second late, and a
 * gap shorter than about half a second never trips it, whatever the timeout.
 */
export const make = (target: Target, pool: Dispatcher, tenantDispatcher: Dispatcher = pool): Relays =>
  relays(pool, tenantDispatcher, target, chatPath(target.baseUrl), target.baseUrl.origin)

const chatPath = (baseUrl: URL) => `${baseUrl.pathname.replace(/\/+$/, "")}/chat/completions`

/** Where one call goes and with which key. */
interface Route {
  readonly dispatcher: Dispatcher
  readonly origin: string
  readonly path: string
  readonly headers: Record<string, string>
  /** The key sent, scrubbed from logged upstream text. */
  readonly secret: string
}

const relays = (
  pool: Dispatcher,
  tenantDispatcher: Dispatcher,
  target: Target,
  path: string,
  origin: string
): Relays => {
  const { config, apiKey } = target
  const headers: Record<string, string> = { "content-type": "application/json" }
  if (apiKey !== "") headers["authorization"] = `Bearer ${apiKey}`
  for (const [name, value] of Object.entries(config.headers)) headers[name.toLowerCase()] = value
  const serverRoute: Route = { dispatcher: pool, origin, path, headers, secret: apiKey }
  /**
   * The server's route, or, when the current tenant has its own key for this provider
   * (`TenantProviderKeys.CurrentCredentials`), its key, and its base URL over `tenantDispatcher`.
   */
  const routeOf = Effect.map(TenantProviderKeys.currentFor(config.name), (credential): Route => {
    if (credential === undefined) return serverRoute
    const secret = Redacted.value(credential.apiKey)
    const withKey = { ...headers, authorization: `Bearer ${secret}` }
    const url = credential.baseUrl === null ? undefined : URL.parse(credential.baseUrl)
    return url === undefined || url === null
      ? { ...serverRoute, headers: withKey, secret }
      : { dispatcher: tenantDispatcher, origin: url.origin, path: chatPath(url), headers: withKey, secret }
  })
  const context = (method: string): Omit<ErrorContext, "now"> => ({
    provider: config.name,
    method,
    url: `${origin}${path}`,
    timeoutMs: target.timeoutMs,
    errorCodes: config.quirks.errorCodes
  })
  const completing = context("complete")
  const streaming = context("stream")

  return (modelId) => {
    const options = (route: Route, body: ModelCatalog.RelayBody, requestId: string, stream: boolean) => ({
      origin: route.origin,
      path: route.path,
      method: "POST" as const,
      headers: requestId === "" ? route.headers : { ...route.headers, "x-request-id": requestId },
      body: JSON.stringify(upstreamBody(body, modelId, config.quirks, stream))
    })
    const send = (
      route: Route,
      body: ModelCatalog.RelayBody,
      requestId: string,
      stream: boolean,
      signal: AbortSignal
    ) => route.dispatcher.request({ ...options(route, body, requestId, stream), signal })

    const complete = (
      body: ModelCatalog.RelayBody,
      requestId: string,
      meter: ModelCatalog.Meter
    ): Effect.Effect<Uint8Array, AiError.AiError> =>
      Effect.flatMap(routeOf, (route) => completeOn(route, body, requestId, meter))

    const completeOn = (
      route: Route,
      body: ModelCatalog.RelayBody,
      requestId: string,
      meter: ModelCatalog.Meter
    ): Effect.Effect<Uint8Array, AiError.AiError> => {
      // What the call used: the answer's usage (estimated without it), or nothing without an answer.
      let began = false
      let used: readonly [Usage.Usage, boolean] = [Usage.zero, false]
      return Effect.tryPromise({
        // The signal is aborted if the Effect is interrupted, while waiting for headers or body alike.
        try: (signal) =>
          collect(route.dispatcher, options(route, body, requestId, false), signal, errorBodyLimit).then(
            (answer) => {
              began = isSuccess(answer.status)
              return readAnswer(answer)
            },
            (error) => {
              const answered = error instanceof CollectError && error.answered
              began = answered && isSuccess(error.status)
              return failure(error instanceof CollectError ? error.error : error, answered ? "stream" : "request")
            }
          ),
        catch: (error) => failure(error, "request")
      }).pipe(
        Effect.flatMap((answer) => {
          if (!("bytes" in answer)) return Effect.fail(answer)
          const reported = usageOfWire(Predicate.hasProperty(answer.json, "usage") ? answer.json.usage : undefined)
          used = reported === undefined ? [Usage.make(promptTokensOf(body), 0), true] : [reported, false]
          return Effect.succeed(answer.bytes)
        }),
        Effect.catch((failed) => failWith(completing, failed, route.secret)),
        Effect.onExit(() =>
          Effect.sync(() => {
            // An answer whose body broke off: its prompt was read upstream.
            if (began && used[0] === Usage.zero) used = [Usage.make(promptTokensOf(body), 0), true]
            meter.usage(used[0], used[1])
          })
        )
      )
    }

    const stream = (
      body: ModelCatalog.RelayBody,
      requestId: string,
      meter: ModelCatalog.Meter
    ): Stream.Stream<Uint8Array, AiError.AiError> =>
      Stream.unwrap(Effect.map(routeOf, (route) => streamOn(route, body, requestId, meter)))

    const streamOn = (
      route: Route,
      body: ModelCatalog.RelayBody,
      requestId: string,
      meter: ModelCatalog.Meter
    ): Stream.Stream<Uint8Array, AiError.AiError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const controller = new AbortController()
          const metered = new StreamMeter(body, asksUsage(body))
          // Told once, however the stream ends: the scope of `unwrap` closes with it.
          yield* Effect.addFinalizer(() => Effect.sync(() => meter.usage(...metered.usage())))
          let answer: Dispatcher.ResponseData["body"] | undefined
          // Whatever ends the stream before the answer ended (an interruption, a consumer that
          // stops, a failure) aborts the request: undici destroys the body and its connection.
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              if (answer?.readableEnded !== true) controller.abort()
            })
          )
          const response = yield* Effect.tryPromise({
            try: () => send(route, body, requestId, true, controller.signal),
            catch: (error) => failure(error, "request")
          })
          answer = response.body
          if (!isSuccess(response.statusCode)) {
            return yield* Effect.fail(
              yield* Effect.tryPromise({ try: () => rejection(response), catch: (error) => failure(error, "request") })
            )
          }
          return bytesOf(response.body, metered)
        })
      ).pipe(Stream.catch((failed) => Stream.fromEffect(failWith(streaming, failed, route.secret))))

    return { complete, stream }
  }
}

// ---------------------------------------------------------------------------------------------
// Answers and failures

/** Why a call failed, and whether the answer had begun: a break after it did is a lost connection. */
interface Failure {
  readonly error: unknown
  readonly phase: "request" | "stream"
}

const failure = (error: unknown, phase: Failure["phase"]): Failure => ({ error, phase })

const isSuccess = (status: number): boolean => status >= 200 && status < 300

const utf8 = new TextDecoder()

/**
 * The bytes of a streamed answer as they arrive, each pull taking all that is buffered; a body
 * left unread pauses the upstream. Ending the stream early does not end the body: the caller
 * aborts the request.
 */
const bytesOf = (body: Readable, meter: StreamMeter): Stream.Stream<Uint8Array, Failure> =>
  Stream.fromPull(
    Effect.sync(() => {
      // Opened by every event after which `read()` may answer differently; closed before each read,
      // so an event between the read and the wait is not lost.
      const latch = Latch.makeUnsafe(false)
      const open = () => latch.openUnsafe()
      body.on("readable", open).on("end", open).on("error", open).on("close", open)
      return Effect.suspend(function pull(): Pull.Pull<NonEmptyReadonlyArray<Uint8Array>, Failure> {
        latch.closeUnsafe()
        const chunk: Uint8Array | null = body.read()
        if (chunk !== null) {
          const passed = meter.pass(chunk)
          return passed === undefined ? pull() : Effect.succeed([passed])
        }
        if (body.readableEnded) {
          const rest = meter.flush()
          return rest === undefined ? Cause.done() : Effect.succeed([rest])
        }
        if (body.destroyed) return Effect.fail(failure(body.errored ?? cutShort, "stream"))
        return Effect.flatMap(latch.await, pull)
      })
    })
  )

// A body destroyed without an error, before its end (no undici failure does that).
const cutShort = new Error("the answer's body was destroyed before its end")

/** A non-streamed answer: its bytes and their JSON once they parse, or why the call failed. */
const readAnswer = (answer: Collected): { readonly bytes: Uint8Array; readonly json: unknown } | Failure => {
  if (!isSuccess(answer.status)) return rejectionOf(answer.status, answer.headers, answer.body.toString("utf8"))
  // Parsing once is the cheapest proof that the bytes passed on are JSON (and it gives the usage).
  const parsed = Result.try((): unknown => JSON.parse(utf8.decode(answer.body)))
  return Result.isSuccess(parsed) ? { bytes: answer.body, json: parsed.success } : failure(parsed.failure, "request")
}

/** How much of an error body is read: plenty for any provider's error JSON. */
const errorBodyLimit = 64 * 1024

/** A non-2xx streamed answer as the SDK's `APIError`, its body read up to {@link errorBodyLimit}. */
const rejection = (response: Dispatcher.ResponseData): Promise<Failure> =>
  new Promise<string>((resolve) => {
    const chunks: Array<Buffer> = []
    let size = 0
    response.body
      .on("data", (chunk: Buffer) => {
        chunks.push(chunk)
        size += chunk.length
        if (size > errorBodyLimit) response.body.destroy()
      })
      // A body that breaks off or is cut at the limit still has its status and headers.
      .on("error", constVoid)
      .on("close", () => resolve(Buffer.concat(chunks).toString("utf8")))
  }).then((text) => rejectionOf(response.statusCode, response.headers, text))

/** A non-2xx answer as the SDK's `APIError`, built as the SDK builds it from the same answer. */
const rejectionOf = (status: number, responseHeaders: IncomingHttpHeaders, text: string): Failure => {
  const headers = new Headers()
  for (const [name, value] of Object.entries(responseHeaders)) {
    if (typeof value === "string") headers.append(name, value)
    else for (const item of value ?? []) headers.append(name, item)
  }
  const json = Result.getOrUndefined(Result.try((): unknown => JSON.parse(text)))
  const errorResponse = Predicate.isObjectOrArray(json) ? errorResponseOf(json) : undefined
  const message = errorResponse === undefined ? text : undefined
  return failure(APIError.generate(status, errorResponse, message, headers), "request")
}

// As the SDK's `makeStatusError`: a JSON body without an `error` member is the error itself.
const errorResponseOf = (json: object): object =>
  Predicate.hasProperty(json, "error") && !Predicate.isNullish(json.error) ? json : { error: json }

/** The failure as an `AiError`; the upstream's own words go to the server log only, without the key. */
const failWith = (
  context: Omit<ErrorContext, "now">,
  failed: Failure,
  secret: string
): Effect.Effect<never, AiError.AiError> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const error = toAiError(failed, { ...context, now })
    const upstream = failed.error instanceof Error ? failed.error.message : String(failed.error)
    return Effect.logDebug("upstream error text").pipe(
      Effect.annotateLogs({
        provider: context.provider,
        method: context.method,
        reason: error.reason._tag,
        upstream: scrub(upstream, secret)
      }),
      Effect.andThen(Effect.fail(error))
    )
  })

/**
 * undici's failures in the SDK's terms, so that `mapError` classifies both paths alike: its
 * timeouts, and before the answer began any transport failure (refused, reset, DNS, TLS) as the
 * SDK's connection error. Once the answer began, `mapError` calls such a failure a lost connection.
 */
const toAiError = ({ error, phase }: Failure, context: ErrorContext): AiError.AiError => {
  if (error instanceof APIError) return mapError(error, context, phase)
  const code = Predicate.hasProperty(error, "code") ? error.code : undefined
  switch (code) {
    case "UND_ERR_HEADERS_TIMEOUT":
      return timeoutError(context, "no response")
    case "UND_ERR_BODY_TIMEOUT":
      return timeoutError(context, "no chunk")
    case "UND_ERR_CONNECT_TIMEOUT":
      return timeoutError(context, "no connection")
    case "UND_ERR_ABORTED":
      return mapError(new APIUserAbortError(), context, phase)
  }
  const transport = phase === "request" && error instanceof Error && typeof code === "string" && !misuse.test(code)
  return mapError(transport ? new APIConnectionError({ cause: error }) : error, context, phase)
}

// Codes of a request built wrong (an invalid header value, say): no connection failed, no retry helps.
const misuse = /^(UND_ERR_INVALID|UND_ERR_NOT_SUPPORTED|ERR_INVALID)/
