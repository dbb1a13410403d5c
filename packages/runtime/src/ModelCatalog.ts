/**
 * The models the runtime can call. The runtime sees a model only as effect/ai's
 * `LanguageModel` plus the facts it needs to route, label and bill a turn
 * (`ModelInfo`); which providers back them is decided by the composition in
 * `@polyagent/http`.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { constVoid } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Stream from "effect/Stream"
import type * as AiError from "effect/ai/AiError"
import type * as LanguageModel from "effect/ai/LanguageModel"
import { Price, type Usage } from "./Usage.ts"

/** What a model can do. */
export class Capabilities extends Schema.Class<Capabilities>("@polyagent/runtime/Capabilities")({
  tools: Schema.Boolean,
  vision: Schema.Boolean,
  streaming: Schema.Boolean,
  context_window: Schema.Int
}) {}

/** A model as `GET /v1/models` lists it. */
export class ModelInfo extends Schema.Class<ModelInfo>("@polyagent/runtime/ModelInfo")({
  id: Schema.String,
  provider: Schema.String,
  description: Schema.String,
  /** True for models that run in-process without any network (the `local` development model). */
  offline: Schema.Boolean,
  capabilities: Capabilities,
  cost_per_1k_tokens: Price,
  /** The day `cost_per_1k_tokens` was published by the provider; null for free models. */
  price_date: Schema.NullOr(Schema.String),
  /** How good its answers are, 0–100, when configured: what the `quality` routing strategy ranks by. */
  quality: Schema.optionalKey(Schema.Finite)
}) {}

/** A model ready to be called. */
export interface Model {
  readonly info: ModelInfo
  readonly languageModel: LanguageModel.LanguageModel
  /** Present when the model's provider speaks OpenAI's Chat Completions: see {@link Relay}. */
  readonly relay?: Relay<ModelError> | undefined
}

/**
 * A pass-through for models whose provider speaks OpenAI's Chat Completions (OpenAI, OpenRouter,
 * GLM, OpenAI-compatible servers). The gateway route hands it the client's request body as it
 * came (validated, unknown fields kept); the provider sets the model id, applies its quirks, and
 * answers with the upstream's bytes untouched, skipping effect/ai's conversions both ways. Key,
 * base URL, timeout, `X-Request-Id`, aborting on interruption and error mapping are the
 * provider's, as for `languageModel`.
 */
export interface Relay<E> {
  /**
   * A non-streamed completion: the upstream's JSON answer, checked to parse. `meter` is told
   * what the call used once it ends, however it ends.
   */
  readonly complete: (body: RelayBody, requestId: string, meter: Meter) => Effect.Effect<Uint8Array, E>
  /**
   * A streamed completion: the upstream's SSE bytes as they arrive, `data: [DONE]` included (the
   * event with the usage only when the client asked for it). The request is sent when the stream
   * runs, and interrupting the stream aborts it. `meter` is told what the call used once the
   * stream ends, however it ends (a failure, an interruption: what was used until then).
   */
  readonly stream: (body: RelayBody, requestId: string, meter: Meter) => Stream.Stream<Uint8Array, E>
}

/**
 * Told what a relayed call used: called once per call, when it ends. `estimated` is true when
 * upstream did not report it (a stream that broke, a server without usage): the prompt is then
 * counted from the request and the completion from the text passed on. A call that got no answer
 * (refused, or stopped before one began) reports zero, not estimated.
 *
 * Gotchas: it runs on the relay's hot path, synchronously: do not block in it.
 */
export interface Meter {
  readonly usage: (usage: Usage, estimated: boolean) => void
}

/** A {@link Meter} that ignores what it is told. */
export const noMeter: Meter = { usage: constVoid }

/** A client's Chat Completions request body, as JSON. */
export type RelayBody = Readonly<Record<string, unknown>>

/** The model named by a request does not exist or is not enabled. */
export class ModelNotFound extends Schema.TaggedError<ModelNotFound>()("ModelNotFound", {
  model: Schema.String
}) {
  override get message(): string {
    return `model ${this.model} is not available; GET /v1/models lists the models you can use`
  }
}

/** The enabled models, and the one used when a request names none. */
export class ModelCatalog extends Context.Service<
  ModelCatalog,
  {
    readonly list: ReadonlyArray<ModelInfo>
    readonly resolve: (id: string | undefined) => Effect.Effect<Model, ModelNotFound>
    /** The model `id`, when it is enabled; {@link resolve} without the Effect, for hot paths. */
    readonly find: (id: string) => Model | undefined
    /** Models the configuration knows whose provider is not enabled (no key): routing skips them. */
    readonly disabled: ReadonlyArray<string>
  }
>()("@polyagent/runtime/ModelCatalog") {}

/**
 * A catalogue over a fixed set of models; `defaultId` must name one of them. How each model is
 * doing is `ModelHealth`'s.
 */
export const make = (
  models: ReadonlyArray<Model>,
  defaultId: string,
  disabled: ReadonlyArray<string> = []
): ModelCatalog["Service"] => {
  const byId = new Map(models.map((model) => [model.info.id, model]))
  return ModelCatalog.of({
    list: models.map((model) => model.info),
    resolve: (id) => {
      const model = byId.get(id ?? defaultId)
      return model === undefined ? Effect.fail(new ModelNotFound({ model: id ?? defaultId })) : Effect.succeed(model)
    },
    find: (id) => byId.get(id),
    disabled
  })
}

/** A layer of {@link make}. */
export const layer = (models: ReadonlyArray<Model>, defaultId: string): Layer.Layer<ModelCatalog> =>
  Layer.succeed(ModelCatalog, make(models, defaultId))

/** Why a model call failed, in the terms the edge and the router act on. */
export const ModelErrorReason = Schema.Literals([
  "rate_limited",
  "unauthorized",
  "bad_request",
  "context_too_long",
  "overloaded",
  "timeout",
  "network",
  "content_filtered",
  "invalid_response",
  "circuit_open",
  "unknown"
])
export type ModelErrorReason = typeof ModelErrorReason.Type

/**
 * A model call failed. The message is ours, never the provider's text (which may echo
 * prompts or keys); `retryable` tells a router whether another attempt may succeed.
 */
export class ModelError extends Schema.TaggedError<ModelError>()("ModelError", {
  model: Schema.String,
  provider: Schema.String,
  reason: ModelErrorReason,
  retryable: Schema.Boolean,
  /** How long the provider asked us to wait (rate limits), when it said. */
  retry_after_ms: Schema.NullOr(Schema.Number)
}) {
  override get message(): string {
    return `model ${this.model} (${this.provider}) failed: ${this.reason.replaceAll("_", " ")}`
  }
}

const reasonOfAiError: Record<AiError.AiErrorReason["_tag"], ModelErrorReason> = {
  NetworkError: "network",
  RateLimitError: "rate_limited",
  QuotaExhaustedError: "rate_limited",
  AuthenticationError: "unauthorized",
  ContentPolicyError: "content_filtered",
  InvalidRequestError: "bad_request",
  InternalProviderError: "overloaded",
  InvalidResponseError: "invalid_response",
  InvalidOutputError: "invalid_response",
  StructuredOutputError: "invalid_response",
  UnsupportedSchemaError: "bad_request",
  UnknownError: "unknown",
  ToolNotFoundError: "invalid_response",
  ToolParameterValidationError: "invalid_response",
  InvalidToolResultError: "invalid_response",
  ToolResultEncodingError: "invalid_response",
  ToolConfigurationError: "bad_request",
  ToolkitRequiredError: "bad_request",
  InvalidUserInputError: "bad_request"
}

/**
 * effect/ai has no reason for a prompt over the context window or for a timed-out request, so
 * adapters mark them: an `InvalidRequestError` whose `constraint` is this, and a `NetworkError`
 * whose `description` starts with {@link timeoutPrefix}.
 */
export const contextTooLongConstraint = "context_too_long"
/** See {@link contextTooLongConstraint}. */
export const timeoutPrefix = "Timeout"

const reasonOf = (reason: AiError.AiErrorReason): ModelErrorReason => {
  if (reason._tag === "InvalidRequestError" && reason.constraint === contextTooLongConstraint) return "context_too_long"
  if (reason._tag === "NetworkError" && reason.description?.startsWith(timeoutPrefix) === true) return "timeout"
  return reasonOfAiError[reason._tag]
}

/** Maps effect/ai's error of a call to `info`'s model onto a {@link ModelError}. */
export const fromAiError = (info: ModelInfo, error: AiError.AiError): ModelError =>
  new ModelError({
    model: info.id,
    provider: info.provider,
    reason: reasonOf(error.reason),
    retryable: error.isRetryable,
    retry_after_ms: error.retryAfter === undefined ? null : Duration.toMillis(error.retryAfter)
  })
