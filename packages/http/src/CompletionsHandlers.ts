/**
 * `POST /v1/chat/completions`: OpenAI's Chat Completions on any model of the catalogue, or on
 * an agent (`model: "agent:<id>"`: its system prompt, model and parameters), stateless (no
 * session), streamed or not. The client's `tools` are passed to the model and its tool calls
 * returned as OpenAI returns them; PolyAgent runs none of them here.
 *
 * This is the gateway's hot path. A model whose provider speaks Chat Completions itself has a
 * `relay`: the client's body (validated, unknown fields kept) goes upstream with the model id
 * and the provider's quirks applied, and the upstream's bytes come back as they are. Other
 * models (Anthropic, `local`) and agents go through effect/ai's `LanguageModel` and are
 * converted both ways. The body is read and validated here rather than by the HttpApi, which
 * would decode it into a copy without the fields we do not know.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type * as AiError from "effect/ai/AiError"
import type * as LanguageModel from "effect/ai/LanguageModel"
import type * as Response from "effect/ai/Response"
import type * as Toolkit from "effect/ai/Toolkit"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type { ServerResponse } from "node:http"
import { CallOptions, Identifier, ModelCatalog, SessionProtocol, Storage, ToolLoop } from "@polyagent/runtime"
import { ToolExecutor, ToolRegistry } from "@polyagent/tools"
import { Api, type CompletionEvent, Principal } from "./Api.ts"
import * as ApiError from "./ApiError.ts"
import * as ChatCompletions from "./ChatCompletions.ts"
import * as RelayResponse from "./RelayResponse.ts"
import * as RequestLog from "./RequestLog.ts"

const agentPrefix = ChatCompletions.agentPrefix

/** The envelope for a failed model call; a rate limit keeps the provider's `Retry-After`. */
const modelFailed = (error: ModelCatalog.ModelError) =>
  Effect.gen(function* () {
    const { type, retryAfterSeconds } = ApiError.ofModelError(error)
    if (retryAfterSeconds === undefined) return yield* ApiError.fail(type, error.message)
    const requestId = yield* ApiError.RequestId
    return HttpServerResponse.jsonUnsafe(ApiError.envelope(type, error.message, requestId), {
      status: ApiError.statusOf[type],
      headers: { "retry-after": String(retryAfterSeconds) }
    })
  })

const callOptionsOf = (request: ChatCompletions.Request): CallOptions.CallOptions => ({
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

/** What a non-streamed answer needs, whichever way the model was called. */
interface Answer {
  readonly text: string
  readonly content: ReadonlyArray<Response.AnyPart>
  readonly finishReason: Response.FinishReason
  readonly usage: Response.Usage
}

/** The model's answer to a request: with the client's tools when it sent any. */
const generate = (
  languageModel: LanguageModel.LanguageModel,
  request: ChatCompletions.Request
): Effect.Effect<Answer, AiError.AiError> => {
  const prompt = ChatCompletions.toPrompt(request.messages)
  const tools = ChatCompletions.toTools(request.tools)
  if (tools.length === 0 || request.tool_choice === "none") {
    return languageModel.generateText({ prompt })
  }
  return languageModel.generateText({
    prompt,
    toolkit: clientToolkit(tools),
    toolChoice: ChatCompletions.toToolChoice(request.tool_choice),
    disableToolCallResolution: true
  })
}

/** The model's answer to a request as stream parts. */
const streamParts = (
  languageModel: LanguageModel.LanguageModel,
  request: ChatCompletions.Request
): Stream.Stream<Response.AnyPart, AiError.AiError> => {
  const prompt = ChatCompletions.toPrompt(request.messages)
  const tools = ChatCompletions.toTools(request.tools)
  if (tools.length === 0 || request.tool_choice === "none") return languageModel.streamText({ prompt })
  return languageModel.streamText({
    prompt,
    toolkit: clientToolkit(tools),
    toolChoice: ChatCompletions.toToolChoice(request.tool_choice),
    disableToolCallResolution: true
  })
}

const toolCallsOf = (parts: ReadonlyArray<Response.AnyPart>) =>
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

interface Header {
  readonly id: string
  readonly created: number
  readonly model: string
}

/** OpenAI's chunks of one completion. */
const chunkOf =
  (header: Header) =>
  (delta: object, finishReason: string | null = null): CompletionEvent => ({
    event: "message",
    data: JSON.stringify({
      ...header,
      object: "chat.completion.chunk",
      choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }]
    })
  })

const done: CompletionEvent = { event: "message", data: "[DONE]" }

/** The `error` event that ends a failed stream, without the provider's text. */
const errorEvent = (error: ModelCatalog.ModelError) =>
  Effect.map(
    Effect.service(ApiError.RequestId),
    (requestId): CompletionEvent => ({
      event: "error",
      data: JSON.stringify(ApiError.modelErrorEnvelope(error, requestId))
    })
  )

/**
 * An agent's turn with its server-side tools, streamed: the answer's text as OpenAI's chunks;
 * the tool calls stay on the server (the client has nothing to run).
 */
const streamAgentTurn = <E>(options: ToolLoop.Options<E>, header: Header): Stream.Stream<CompletionEvent> => {
  const chunk = chunkOf(header)
  return Stream.callback<CompletionEvent>((queue) =>
    ToolLoop.run({
      ...options,
      hooks: { ...options.hooks, delta: (content) => Effect.asVoid(Queue.offer(queue, chunk({ content }))) }
    }).pipe(
      Effect.andThen(Queue.offerAll(queue, [chunk({}, "stop"), done])),
      Effect.catch((error) =>
        error instanceof ModelCatalog.ModelError
          ? Effect.flatMap(errorEvent(error), (event) => Queue.offer(queue, event))
          : Effect.void
      ),
      Effect.andThen(Queue.end(queue))
    )
  ).pipe(Stream.prepend([chunk({ role: "assistant", content: "" })]))
}

/** A whole completion. */
const completionOf = (
  header: Header,
  text: string,
  toolCalls: ReadonlyArray<ChatCompletions.ToolCallType>,
  finishReason: string,
  usage: { readonly prompt_tokens: number; readonly completion_tokens: number }
): ChatCompletions.Completion => ({
  ...header,
  object: "chat.completion",
  choices: [
    {
      index: 0,
      message: {
        role: "assistant",
        content: text === "" && toolCalls.length > 0 ? null : text,
        refusal: null,
        ...(toolCalls.length === 0 ? {} : { tool_calls: toolCalls })
      },
      finish_reason: finishReason,
      logprobs: null
    }
  ],
  usage: {
    prompt_tokens: usage.prompt_tokens,
    completion_tokens: usage.completion_tokens,
    total_tokens: usage.prompt_tokens + usage.completion_tokens
  }
})

/** Streams a completion as OpenAI's chunks. */
const streamCompletion = (
  { info, languageModel }: ModelCatalog.Model,
  request: ChatCompletions.Request,
  header: Header
): Stream.Stream<CompletionEvent> => {
  const chunk = chunkOf(header)
  const toolIndex = new Map<string, number>()
  const includeUsage = request.stream_options?.include_usage === true
  const parts = streamParts(languageModel, request).pipe(
    Stream.flatMap((part): Stream.Stream<CompletionEvent> => {
      switch (part.type) {
        case "text-delta":
          return Stream.make(chunk({ content: part.delta }))
        case "tool-params-start": {
          const index = toolIndex.size
          toolIndex.set(part.id, index)
          return Stream.make(
            chunk({
              tool_calls: [{ index, id: part.id, type: "function", function: { name: part.name, arguments: "" } }]
            })
          )
        }
        case "tool-params-delta":
          return Stream.make(
            chunk({ tool_calls: [{ index: toolIndex.get(part.id) ?? 0, function: { arguments: part.delta } }] })
          )
        case "tool-call": {
          // Providers that stream arguments have sent them already; others send the call whole.
          if (toolIndex.has(part.id)) return Stream.empty
          const index = toolIndex.size
          toolIndex.set(part.id, index)
          const call = { name: part.name, arguments: JSON.stringify(part.params) }
          return Stream.make(chunk({ tool_calls: [{ index, id: part.id, type: "function", function: call }] }))
        }
        case "finish": {
          const finish = chunk({}, ChatCompletions.finishReason(part.reason))
          if (!includeUsage) return Stream.make(finish)
          const usage = ChatCompletions.usageOf(part.usage)
          return Stream.make(finish, {
            event: "message",
            data: JSON.stringify({ ...header, object: "chat.completion.chunk", choices: [], usage })
          })
        }
        default:
          return Stream.empty
      }
    })
  )
  return Stream.concat(Stream.make(chunk({ role: "assistant", content: "" })), parts).pipe(
    Stream.concat(Stream.make(done)),
    Stream.catch((error) => Stream.fromEffect(errorEvent(ModelCatalog.fromAiError(info, error))))
  )
}

/** The request's body as JSON and as OpenAI's request; 400 for anything else. */
const readRequest = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function* () {
    if (!(request.headers["content-type"] ?? "").includes("json")) {
      return yield* ApiError.fail("invalid_request", "the body must be JSON (Content-Type: application/json)")
    }
    // A body over the limit is a defect the edge answers with 413.
    const parsed = ChatCompletions.parseRequest(yield* Effect.orDie(request.text))
    return Result.isSuccess(parsed) ? parsed.success : yield* ApiError.fail("invalid_request", parsed.failure)
  })

/**
 * A completion through the model's relay: the upstream's answer, byte for byte. A stream is
 * written to Node's response directly, as the fast lane writes it, so that a failure before its
 * first byte keeps its HTTP status.
 */
const relayed = (
  request: HttpServerRequest.HttpServerRequest,
  relay: ModelCatalog.Relay<ModelCatalog.ModelError>,
  body: ModelCatalog.RelayBody,
  stream: boolean
) =>
  Effect.gen(function* () {
    const requestId = yield* ApiError.RequestId
    if (!stream) {
      return HttpServerResponse.uint8Array(yield* relay.complete(body, requestId, ModelCatalog.noMeter), {
        contentType: "application/json"
      })
    }
    // The server is `node:http`'s (see `FastLane.ts`), so the response is HTTP/1's.
    const response = NodeHttpServerRequest.toServerResponse(request) as ServerResponse
    response.setHeader("x-request-id", requestId)
    const status = yield* RelayResponse.stream(response, relay.stream(body, requestId, ModelCatalog.noMeter), requestId)
    // Written already: the stack sends nothing more, and the edge logs the status that was sent.
    return HttpServerResponse.empty({ status })
  })

export const layer = HttpApiBuilder.group(
  Api,
  "openai",
  Effect.fn(function* (handlers) {
    const catalog = yield* ModelCatalog.ModelCatalog
    const storage = yield* Storage.Storage
    const settings = yield* SessionProtocol.SessionSettings
    const registry = yield* Effect.serviceOption(ToolRegistry.ToolRegistry)
    const executor = yield* Effect.serviceOption(ToolExecutor.ToolExecutor)
    const resolveModel = (id: string | undefined) =>
      catalog.resolve(id).pipe(Effect.catch((error) => ApiError.fail("not_found", error.message)))

    /**
     * What a request runs: the model it names, or for `agent:<id>` that agent's model, with its
     * system prompt first and its parameters where the request sets none.
     */
    const target = Effect.fnUntraced(function* (request: ChatCompletions.Request) {
      if (!request.model.startsWith(agentPrefix)) {
        return {
          model: yield* resolveModel(request.model),
          request,
          options: callOptionsOf(request),
          toolkit: undefined
        }
      }
      const id = request.model.slice(agentPrefix.length)
      const { tenant } = yield* Principal
      const found = yield* storage.getAgent(tenant, id).pipe(Effect.catch(ApiError.storageFailed))
      if (Option.isNone(found)) return yield* ApiError.fail("not_found", `agent ${id} not found`)
      const agent = found.value
      const system: ReadonlyArray<ChatCompletions.Message> =
        agent.system_prompt === "" ? [] : [{ role: "system", content: agent.system_prompt }]
      const own = callOptionsOf(request)
      const toolkit = ToolLoop.toolkitFor(registry, agent)
      if (toolkit !== undefined && (request.tools ?? []).length > 0) {
        return yield* ApiError.fail("invalid_request", "an agent with server-side tools takes no client tools")
      }
      return {
        toolkit,
        model: yield* resolveModel(agent.model ?? undefined),
        request: { ...request, messages: [...system, ...request.messages] },
        options: {
          ...own,
          temperature: own.temperature ?? agent.parameters.temperature,
          topP: own.topP ?? agent.parameters.top_p,
          maxTokens: own.maxTokens ?? agent.parameters.max_tokens
        }
      }
    })

    return handlers.handleRaw("completions", ({ request }) =>
      Effect.gen(function* () {
        const { body, request: asked } = yield* readRequest(request)
        const { model, request: payload, options, toolkit } = yield* target(asked)
        yield* RequestLog.recordModel(model.info.id)
        if (model.relay !== undefined && !asked.model.startsWith(agentPrefix)) {
          return yield* relayed(request, model.relay, body, asked.stream === true)
        }
        const header = {
          id: `chatcmpl-${Identifier.randomBase62(24)}`,
          created: Math.floor((yield* Clock.currentTimeMillis) / 1000),
          // An agent's answers carry the id the client asked for.
          model: asked.model.startsWith(agentPrefix) ? asked.model : model.info.id
        }
        if (toolkit !== undefined) {
          const loop: ToolLoop.Options<never> = {
            model,
            prompt: ChatCompletions.toPrompt(payload.messages),
            toolkit,
            callOptions: options,
            requestId: yield* ApiError.RequestId,
            maxSteps: settings.maxToolSteps,
            executor,
            hooks: { asked: () => Effect.void, answered: () => Effect.void }
          }
          if (payload.stream === true) return streamAgentTurn(loop, header)
          const outcome = yield* ToolLoop.run(loop)
          return completionOf(header, outcome.text, [], "stop", outcome.usage)
        }
        if (payload.stream === true) {
          return streamCompletion(model, payload, header).pipe(Stream.provideService(CallOptions.CallOptions, options))
        }
        const response = yield* generate(model.languageModel, payload).pipe(
          Effect.provideService(CallOptions.CallOptions, options),
          Effect.mapError((error) => ModelCatalog.fromAiError(model.info, error))
        )
        const toolCalls = toolCallsOf(response.content)
        return completionOf(
          header,
          response.text,
          toolCalls,
          ChatCompletions.finishReason(response.finishReason),
          ChatCompletions.usageOf(response.usage)
        )
      }).pipe(Effect.catchTag("ModelError", modelFailed))
    )
  })
)
