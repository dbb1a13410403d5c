/**
 * `POST /v1/chat/completions` on a model (not an agent), written straight to Node's response: the
 * one implementation the fast lane and the stack share. The request's `model` is routed like any
 * other (`ModelRouter`: a model, a route, an experiment, `auto`), within the caller's budgets, and
 * each candidate is called its own way: a model whose provider speaks Chat Completions through its
 * relay (the client's body goes upstream, the upstream's bytes come back untouched), any other
 * (Anthropic, `local`) through effect/ai's `LanguageModel`, converted both ways. Failover is the
 * router's; a stream that moves to another model mid-answer simply continues.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type * as AiError from "effect/ai/AiError"
import type * as LanguageModel from "effect/ai/LanguageModel"
import type * as Response from "effect/ai/Response"
import type * as Toolkit from "effect/ai/Toolkit"
import { CallOptions, Identifier, ModelCatalog, ModelRouter, Safety, StatelessTurn, Usage } from "@polyagent/runtime"
import type { ServerResponse } from "node:http"
import * as ChatCompletions from "./ChatCompletions.ts"
import * as CompletionSafety from "./CompletionSafety.ts"
import { modelHeader } from "./Edge.ts"
import * as RelayResponse from "./RelayResponse.ts"
import * as RequestLog from "./RequestLog.ts"

/** The sampling settings of a request, for the models called through effect/ai. */
export const callOptionsOf = (request: ChatCompletions.Request): CallOptions.CallOptions => ({
  temperature: request.temperature ?? undefined,
  topP: request.top_p ?? undefined,
  maxTokens: request.max_completion_tokens ?? request.max_tokens ?? undefined,
  stop: request.stop === undefined || request.stop === null ? undefined : [request.stop].flat(),
  user: request.user
})

/**
 * The client's functions as a toolkit whose handler is never called: tool-call resolution is
 * disabled, so calls go back to the client, which runs them.
 */
const clientToolkit = (
  tools: ReadonlyArray<ChatCompletions.ClientTool>
): Toolkit.WithHandler<Record<string, ChatCompletions.ClientTool>> => ({
  tools: Object.fromEntries(tools.map((tool) => [tool.name, tool])),
  handle: () => Effect.die(new Error("client tools are run by the client"))
})

/** What a non-streamed answer needs, with the client's tools or without. */
interface Generated {
  readonly text: string
  readonly content: ReadonlyArray<Response.AnyPart>
  readonly finishReason: Response.FinishReason
  readonly usage: Response.Usage
}

/** The model's answer to a request: with the client's tools when it sent any. */
const generate = (
  languageModel: LanguageModel.LanguageModel,
  request: ChatCompletions.Request
): Effect.Effect<Generated, AiError.AiError> => {
  const prompt = ChatCompletions.toPrompt(request.messages)
  const tools = ChatCompletions.toTools(request.tools)
  if (tools.length === 0 || request.tool_choice === "none") return languageModel.generateText({ prompt })
  return languageModel.generateText({
    prompt,
    toolkit: clientToolkit(tools),
    toolChoice: ChatCompletions.toToolChoice(request.tool_choice),
    disableToolCallResolution: true
  })
}

/** The model's answer to a request's `messages` as stream parts. */
const streamParts = (
  languageModel: LanguageModel.LanguageModel,
  request: ChatCompletions.Request,
  messages: ReadonlyArray<ChatCompletions.Message>
): Stream.Stream<Response.AnyPart, AiError.AiError> => {
  const prompt = ChatCompletions.toPrompt(messages)
  const tools = ChatCompletions.toTools(request.tools)
  if (tools.length === 0 || request.tool_choice === "none") return languageModel.streamText({ prompt })
  return languageModel.streamText({
    prompt,
    toolkit: clientToolkit(tools),
    toolChoice: ChatCompletions.toToolChoice(request.tool_choice),
    disableToolCallResolution: true
  })
}

const toolCallsOf = (parts: ReadonlyArray<Response.AnyPart>): Array<ChatCompletions.ToolCallType> =>
  parts.flatMap((part) =>
    part.type === "tool-call"
      ? [
          {
            id: part.id,
            type: "function" as const,
            function: { name: part.name, arguments: JSON.stringify(part.params) }
          }
        ]
      : []
  )

const encoder = new TextEncoder()
const sse = (data: string) => encoder.encode(`data: ${data}\n\n`)

/** A streamed answer of effect/ai's parts as Chat Completions chunks, `[DONE]` last. */
const chunks = (
  parts: Stream.Stream<Response.AnyPart, AiError.AiError>,
  header: ChatCompletions.Header,
  includeUsage: boolean,
  meter: ModelCatalog.Meter
): Stream.Stream<Uint8Array, AiError.AiError> => {
  const toolIndex = new Map<string, number>()
  const chunk = (delta: object, finish: string | null = null) => sse(ChatCompletions.chunk(header, delta, finish))
  const toolCall = (id: string, name: string, args: string) => {
    const index = toolIndex.size
    toolIndex.set(id, index)
    return chunk({ tool_calls: [{ index, id, type: "function", function: { name, arguments: args } }] })
  }
  const encoded = Stream.flatMap(parts, (part): Stream.Stream<Uint8Array> => {
    switch (part.type) {
      case "text-delta":
        return Stream.make(chunk({ content: part.delta }))
      case "tool-params-start":
        return Stream.make(toolCall(part.id, part.name, ""))
      case "tool-params-delta":
        return Stream.make(
          chunk({ tool_calls: [{ index: toolIndex.get(part.id) ?? 0, function: { arguments: part.delta } }] })
        )
      case "tool-call":
        // Providers that stream arguments have sent them already; others send the call whole.
        return toolIndex.has(part.id)
          ? Stream.empty
          : Stream.make(toolCall(part.id, part.name, JSON.stringify(part.params)))
      case "finish": {
        const finish = chunk({}, ChatCompletions.finishReason(part.reason))
        const usage = ChatCompletions.usageOf(part.usage)
        meter.usage(Usage.fromResponse(part.usage), false)
        return includeUsage ? Stream.make(finish, sse(ChatCompletions.usageChunk(header, usage))) : Stream.make(finish)
      }
      default:
        return Stream.empty
    }
  })
  return Stream.concat(Stream.make(chunk({ role: "assistant", content: "" })), encoded).pipe(
    Stream.concat(Stream.make(sse(ChatCompletions.done)))
  )
}

/** What one model's attempt answers: the bytes for the client and the usage to charge. */
interface Answer {
  readonly bytes: Uint8Array
  readonly usage: Usage.Usage
}

/** A request's needs, for routing: tools when it offers any, vision when it sends images. */
const needsOf = (request: ChatCompletions.Request, promptTokens: number): ModelRouter.Needs => ({
  tools: (request.tools ?? []).length > 0 && request.tool_choice !== "none",
  vision: request.messages.some(
    (message) =>
      message.role === "user" &&
      typeof message.content !== "string" &&
      message.content.some((p) => p.type === "image_url")
  ),
  promptTokens,
  reserveTokens: request.max_completion_tokens ?? request.max_tokens ?? 0
})

/** A completion to serve. */
export interface Options {
  readonly parsed: ChatCompletions.Parsed
  /** The body's length in bytes: an estimate of the prompt's tokens good enough for routing and budgets. */
  readonly bodyLength: number
  readonly caller: ModelRouter.Caller
  /** Who the caller is for experiments (the request's `user`, else the key). */
  readonly stickyKey: string
}

/** Characters (here, bytes of JSON) per token, for a prompt's estimate. */
const bytesPerToken = 4

/**
 * Serves the completion `options.parsed` asks for on `response`; answers the HTTP status it wrote
 * (for the request's log line).
 */
export const serve = (
  response: ServerResponse,
  options: Options
): Effect.Effect<number, never, ModelRouter.ModelRouter> =>
  Effect.gen(function* () {
    const router = yield* ModelRouter.ModelRouter
    const { body, request } = options.parsed
    const { caller, stickyKey } = options
    const { requestId } = caller
    const created = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const id = `chatcmpl-${Identifier.randomBase62(24)}`
    const streamed = request.stream === true

    // Safety: off (the default), this is one flag read and nothing else.
    const safety = yield* Effect.serviceOption(Safety.Safety)
    const policy = Option.isSome(safety) ? safety.value.policy(caller.payer.tenant) : undefined
    let screening: Safety.Screening | undefined
    if (Option.isSome(safety) && policy !== undefined && policy.input) {
      const subject: Safety.Subject = { caller, target: requestId }
      const text = StatelessTurn.lastUserText(ChatCompletions.toPrompt(request.messages))
      const screened = yield* Effect.result(safety.value.screen(policy, text, subject))
      if (Result.isFailure(screened)) {
        // Streamed: the `safety` event then `error`; else the envelope with status 400.
        return yield* streamed
          ? RelayResponse.stream(response, Stream.fail(screened.failure), requestId)
          : RelayResponse.fail(response, screened.failure, requestId)
      }
      screening = screened.success
      const replyText = screening.reply
      if (replyText !== undefined) {
        yield* RequestLog.recordModel("safety")
        response.setHeader(modelHeader, "safety")
        const header = { id, created, model: request.model }
        const answer = CompletionSafety.reply(header, screening.decision, replyText, streamed)
        return yield* answer instanceof Uint8Array
          ? RelayResponse.complete(response, Effect.succeed(answer), requestId)
          : RelayResponse.stream(response, answer, requestId)
      }
    }
    /** The output check of this completion's answer, when the policy has one. */
    const guard = <A>() =>
      Option.isSome(safety) && policy !== undefined && policy.output
        ? safety.value.guard<A>(policy, { caller, target: requestId })
        : undefined
    const disclaimer = screening?.disclaimer

    const promptTokens = Math.ceil(options.bodyLength / bytesPerToken)
    const planned = yield* Effect.result(
      router.plan({
        model: request.model,
        needs: needsOf(request, promptTokens),
        text: () => StatelessTurn.lastUserText(ChatCompletions.toPrompt(request.messages.slice(-1))),
        stickyKey,
        tenant: caller.payer.tenant,
        allowed: caller.models
      })
    )
    if (Result.isFailure(planned)) return yield* RelayResponse.fail(response, planned.failure, requestId)
    const plan = planned.success
    const callOptions = callOptionsOf(request)
    const includeUsage = request.stream_options?.include_usage === true
    /** The header names the model whose bytes come first (a stream's headers go out with them). */
    const answering = (model: ModelCatalog.Model) =>
      Effect.map(RequestLog.recordModel(model.info.id), () => {
        if (!response.headersSent) response.setHeader(modelHeader, model.info.id)
      })

    if (request.stream !== true) {
      const attempt = (model: ModelCatalog.Model): Effect.Effect<Answer, ModelCatalog.ModelError> => {
        const relay = model.relay
        const call: Effect.Effect<Answer, ModelCatalog.ModelError> =
          relay !== undefined
            ? Effect.suspend(() => {
                // The relay reports the call's usage (read from the answer, or estimated).
                let usage = Usage.make(promptTokens, 0)
                const meter: ModelCatalog.Meter = { usage: (reported) => (usage = reported) }
                return Effect.map(relay.complete(body, requestId, meter), (bytes) => ({ bytes, usage }))
              })
            : generate(model.languageModel, request).pipe(
                Effect.mapError((error) => ModelCatalog.fromAiError(model.info, error)),
                Effect.map((answer) => {
                  const usage = ChatCompletions.usageOf(answer.usage)
                  const header = { id, created, model: model.info.id }
                  const toolCalls = toolCallsOf(answer.content)
                  const finish = ChatCompletions.finishReason(answer.finishReason)
                  const json = ChatCompletions.completion(header, answer.text, toolCalls, finish, usage)
                  return { bytes: encoder.encode(JSON.stringify(json)), usage: Usage.fromResponse(answer.usage) }
                }),
                Effect.provideService(CallOptions.CallOptions, callOptions)
              )
        return Effect.andThen(answering(model), call)
      }
      const answer = router.run(
        caller,
        plan,
        (turn) =>
          Effect.map(
            router.call(turn, plan, attempt, (a) => a.usage),
            ({ value }) => value.bytes
          ),
        callOptions.maxTokens
      )
      const checked = guard<never>()
      return yield* RelayResponse.complete(
        response,
        // A disclaimer comes with the medical check, which is an output check: `checked` is set.
        checked === undefined
          ? answer
          : Effect.flatMap(answer, (bytes) => CompletionSafety.checkCompletion(bytes, checked, disclaimer)),
        requestId
      )
    }

    // The body's own messages (unknown fields kept), then the continuation of a broken-off answer.
    const continued = (partial: string) => [
      ...(Array.isArray(body["messages"]) ? body["messages"] : []),
      ...ChatCompletions.continuation(partial)
    ]
    // The usage the current attempt reported: the relay's meter, or the converted answer's last part.
    let reported: Usage.Usage | undefined
    const meter: ModelCatalog.Meter = { usage: (usage) => (reported = usage) }
    const attempt = (
      model: ModelCatalog.Model,
      partial: string
    ): Stream.Stream<Uint8Array, ModelCatalog.ModelError> => {
      reported = undefined
      const relay = model.relay
      const bytes: Stream.Stream<Uint8Array, ModelCatalog.ModelError> =
        relay !== undefined
          ? relay.stream(partial === "" ? body : { ...body, messages: continued(partial) }, requestId, meter)
          : chunks(
              streamParts(model.languageModel, request, [
                ...request.messages,
                ...ChatCompletions.continuation(partial)
              ]),
              { id, created, model: model.info.id },
              includeUsage,
              meter
            ).pipe(
              Stream.mapError((error) => ModelCatalog.fromAiError(model.info, error)),
              Stream.provideService(CallOptions.CallOptions, callOptions)
            )
      return Stream.concat(Stream.fromEffectDrain(answering(model)), bytes)
    }
    const answer = router.runStream(
      caller,
      plan,
      (turn) =>
        router
          .stream(turn, plan, {
            attempt,
            usage: () => reported,
            text: ChatCompletions.streamText,
            promptTokens
          })
          .pipe(Stream.filter((part): part is Uint8Array => part instanceof Uint8Array)),
      callOptions.maxTokens
    )
    const checked = guard<CompletionSafety.Piece>()
    return yield* RelayResponse.stream(
      response,
      checked === undefined ? answer : CompletionSafety.guardStream(answer, checked, screening?.decision, disclaimer),
      requestId
    )
  })
