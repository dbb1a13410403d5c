/**
 * `POST /v1/chat/completions`: OpenAI's Chat Completions on any model, route or experiment
 * (`ModelCompletion.ts`, shared with the fast lane), or on an agent (`model: "agent:<id>"`: the
 * runtime's stateless agent turn — its system prompt and memory, its tools and `remember`, its
 * model), stateless (no session), streamed or not. The body is read and validated here rather than
 * by the HttpApi, which would decode it into a copy without the fields we do not know (a relay
 * sends them on).
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type { ServerResponse } from "node:http"
import {
  Identifier,
  type ModelRouter,
  type Safety,
  type SessionProtocol,
  StatelessTurn,
  type Storage
} from "@polyagent/runtime"
import { Api, type CompletionEvent, Principal } from "./Api.ts"
import * as ApiError from "./ApiError.ts"
import * as Authentication from "./Authentication.ts"
import * as ChatCompletions from "./ChatCompletions.ts"
import * as ModelCompletion from "./ModelCompletion.ts"
import * as RequestLog from "./RequestLog.ts"

/** The request's body as JSON and as OpenAI's request; 400 for anything else. */
const readRequest = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function* () {
    if (!(request.headers["content-type"] ?? "").includes("json")) {
      return yield* ApiError.fail("invalid_request", "the body must be JSON (Content-Type: application/json)")
    }
    // A body over the limit is a defect the edge answers with 413.
    const text = yield* Effect.orDie(request.text)
    const parsed = ChatCompletions.parseRequest(text)
    return Result.isSuccess(parsed)
      ? { parsed: parsed.success, bodyLength: Buffer.byteLength(text) }
      : yield* ApiError.fail("invalid_request", parsed.failure)
  })

const message = (data: string): CompletionEvent => ({ event: "message", data })

/** The `safety` event of a stream: `{action, category}`. */
const safetyEvent = (decision: Safety.Decision): CompletionEvent => ({
  event: "safety",
  data: JSON.stringify({ action: decision.action, category: decision.category })
})

/**
 * An agent's streamed turn as OpenAI's chunks; its tool calls stay on the server. A safety
 * decision is a `safety` event; a turn a safety policy stopped ends with it, then `error`.
 */
const streamAgentTurn = (
  run: (
    delta: (content: string) => Effect.Effect<void>,
    decided: (decision: Safety.Decision) => Effect.Effect<void>
  ) => Effect.Effect<unknown, SessionProtocol.TurnError>,
  header: ChatCompletions.Header
): Stream.Stream<CompletionEvent> =>
  Stream.callback<CompletionEvent>((queue) =>
    run(
      (content) => Effect.asVoid(Queue.offer(queue, message(ChatCompletions.chunk(header, { content })))),
      (decision) => Effect.asVoid(Queue.offer(queue, safetyEvent(decision)))
    ).pipe(
      Effect.andThen(
        Queue.offerAll(queue, [message(ChatCompletions.chunk(header, {}, "stop")), message(ChatCompletions.done)])
      ),
      Effect.catch((error) =>
        Effect.flatMap(Effect.all([ApiError.ofTurnError(error), Effect.service(ApiError.RequestId)]), ([answer, id]) =>
          Queue.offerAll(queue, [
            ...(error._tag === "SafetyStop" ? [safetyEvent(error)] : []),
            { event: "error", data: JSON.stringify(ApiError.envelope(answer.type, answer.message, id)) }
          ])
        )
      ),
      Effect.andThen(Queue.end(queue))
    )
  ).pipe(Stream.prepend([message(ChatCompletions.chunk(header, { role: "assistant", content: "" }))]))

export const layer = HttpApiBuilder.group(
  Api,
  "openai",
  Effect.fn(function* (handlers) {
    // The handlers run with the server's services: the router's and the agent turn's.
    const context = yield* Effect.context<ModelRouter.ModelRouter | Storage.Storage | SessionProtocol.SessionSettings>()

    /** An agent's turn: the runtime's, converted to OpenAI's answer. */
    const agentTurn = Effect.fnUntraced(function* (
      { parsed: { request } }: { readonly parsed: ChatCompletions.Parsed },
      caller: ModelRouter.Caller
    ) {
      const agentId = request.model.slice(ChatCompletions.agentPrefix.length)
      if ((request.tools ?? []).length > 0) {
        const hasTools = yield* StatelessTurn.hasTools(caller.payer.tenant, agentId).pipe(
          Effect.catch(ApiError.storageFailed)
        )
        if (hasTools)
          return yield* ApiError.fail("invalid_request", "an agent with server-side tools takes no client tools")
      }
      const header: ChatCompletions.Header = {
        id: `chatcmpl-${Identifier.randomBase62(24)}`,
        created: Math.floor((yield* Clock.currentTimeMillis) / 1000),
        // An agent's answers carry the id the client asked for.
        model: request.model
      }
      const input = (
        delta?: (content: string) => Effect.Effect<void>,
        decided?: (decision: Safety.Decision) => Effect.Effect<void>
      ): StatelessTurn.Input => ({
        caller,
        agentId,
        messages: ChatCompletions.toPrompt(request.messages),
        callOptions: ModelCompletion.callOptionsOf(request),
        userId: request.user ?? null,
        delta,
        decided
      })
      if (request.stream === true) {
        return streamAgentTurn(
          (delta, decided) => StatelessTurn.run(input(delta, decided)).pipe(Effect.provide(context)),
          header
        )
      }
      const outcome = yield* StatelessTurn.run(input()).pipe(Effect.provide(context), Effect.catch(ApiError.failTurn))
      yield* RequestLog.recordModel(outcome.model)
      return ChatCompletions.completion(header, outcome.text, [], "stop", outcome.usage)
    })

    return handlers.handleRaw("completions", ({ request }) =>
      Effect.gen(function* () {
        const read = yield* readRequest(request)
        const principal = yield* Principal
        const caller: ModelRouter.Caller = {
          payer: Authentication.payerOf(principal),
          requestId: yield* ApiError.RequestId,
          sessionId: null,
          models: principal.models
        }
        if (read.parsed.request.model.startsWith(ChatCompletions.agentPrefix)) return yield* agentTurn(read, caller)
        // The server is `node:http`'s (see `FastLane.ts`), so the response is HTTP/1's; the answer
        // is written to it as the fast lane writes it.
        const response = NodeHttpServerRequest.toServerResponse(request) as ServerResponse
        response.setHeader("x-request-id", caller.requestId)
        const status = yield* ModelCompletion.serve(response, {
          ...read,
          caller,
          stickyKey: read.parsed.request.user ?? principal.subject
        }).pipe(Effect.provide(context))
        // Written already: the stack sends nothing more, and the edge logs the status that was sent.
        return HttpServerResponse.empty({ status })
      })
    )
  })
)
