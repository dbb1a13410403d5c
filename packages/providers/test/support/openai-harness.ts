/**
 * Test plumbing for the OpenAI-family providers: a `FakeUpstream` owned by the test's scope, the
 * tools the fake's tool scenarios call, and helpers to run a model and look at what it produced or
 * how it failed.
 */
import { Duration, Effect, Exit, Option, Predicate, Redacted, Schema, type Scope, Stream } from "effect"
import { type AiError, Tool, Toolkit } from "effect/ai"
import * as OpenAiProvider from "../../src/openai/OpenAiProvider.ts"
import * as FakeUpstream from "../../src/testing/FakeUpstream.ts"
import { Scenario } from "../../src/testing/openai-wire.ts"

/** The key the tests' providers send and their fakes expect. */
export const apiKey = "sk-test-Zq8vN3xR5tY7uI9oP1aS2dF4gH6jK8lL"

/** OpenAI itself, pointed at a fake at `url`. */
export const openAi = (url: string, timeout: Duration.Input = "5 seconds") =>
  OpenAiProvider.make({
    apiKey: Redacted.make(apiKey),
    baseUrl: `${url}/v1`,
    timeout: Duration.fromInputUnsafe(timeout)
  })

/** A request header's (first) value. */
export const header = (value: string | ReadonlyArray<string> | undefined): string | undefined =>
  typeof value === "string" ? value : value?.[0]

/** `value[key]` of a JSON value, if it is an object that has it. */
export const field = (value: unknown, key: string): unknown =>
  Predicate.isObject(value) && key in value ? Reflect.get(value, key) : undefined

/** A fake started for the test and closed when its scope ends. */
export const fake = (
  routes: Readonly<Record<string, FakeUpstream.Handler>>
): Effect.Effect<FakeUpstream.FakeUpstream, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => FakeUpstream.start(routes)),
    (upstream) => Effect.promise(() => upstream.close())
  )

/** The fake's `get_weather`. */
export const GetWeather = Tool.make("get_weather", {
  description: "The current weather in a city",
  parameters: Schema.Struct({
    location: Schema.String.annotate({ description: "A city, e.g. Paris" }),
    unit: Schema.Literals(["celsius", "fahrenheit"])
  }),
  success: Schema.String
})

/** The fake's `get_time`. */
export const GetTime = Tool.make("get_time", {
  description: "The current time in a time zone",
  parameters: Schema.Struct({ timezone: Schema.String }),
  success: Schema.String
})

/** Both tools; calls are returned, not run (`disableToolCallResolution`). */
export const toolkit = Toolkit.make(GetWeather, GetTime)

/** Every part of `stream`, or the failure that ended it and the parts before it. */
export const streamAll = <P>(
  stream: Stream.Stream<P, AiError.AiError>
): Effect.Effect<{ readonly parts: ReadonlyArray<P>; readonly failure: AiError.AiError | undefined }> =>
  Effect.gen(function* () {
    const parts: Array<P> = []
    const exit = yield* Effect.exit(Stream.runForEach(stream, (part) => Effect.sync(() => parts.push(part))))
    return { parts, failure: Option.getOrUndefined(Exit.findErrorOption(exit)) }
  })

/** The text of the `text-delta` parts. */
export const textOf = (parts: ReadonlyArray<{ readonly type: string }>): string =>
  parts
    .flatMap((part) =>
      part.type === "text-delta" && "delta" in part && typeof part.delta === "string" ? [part.delta] : []
    )
    .join("")

/** The HTTP faults of the fake's OpenAI wire and what each must become. */
export const httpFaults: ReadonlyArray<{
  readonly scenario: string
  readonly reason: AiError.AiErrorReason["_tag"]
  readonly retryable: boolean
  readonly status: number
}> = [
  { scenario: Scenario.unauthorized, reason: "AuthenticationError", retryable: false, status: 401 },
  { scenario: Scenario.forbidden, reason: "AuthenticationError", retryable: false, status: 403 },
  { scenario: Scenario.rateLimited, reason: "RateLimitError", retryable: true, status: 429 },
  { scenario: Scenario.quota, reason: "QuotaExhaustedError", retryable: false, status: 429 },
  { scenario: Scenario.contextTooLong, reason: "InvalidRequestError", retryable: false, status: 400 },
  { scenario: Scenario.serverError, reason: "InternalProviderError", retryable: true, status: 500 },
  { scenario: Scenario.overloaded, reason: "InternalProviderError", retryable: true, status: 503 }
]
