/**
 * OpenAI Chat Completions for `FakeUpstream`: handlers that answer `POST …/chat/completions` and
 * `GET …/models` the way OpenAI documents them (and the way GLM answers, with `flavor: "glm"`), as
 * JSON or as SSE (`data: {chunk}` lines ending with `data: [DONE]`).
 *
 * What a request gets is chosen by a marker in its last user message, so one fake serves every
 * test: no marker is a plain text answer; `[[tool]]`, `[[tools]]` and `[[reasoning]]` are tool and
 * thinking answers; the others are faults (see {@link Scenario}). The HTTP errors, with OpenAI's
 * own bodies, are in `openai-faults.ts`.
 */
import type { ServerResponse } from "node:http"
import type { Handler, Received } from "./FakeUpstream.ts"
import * as Faults from "./openai-faults.ts"

/** The markers a test puts in its last user message. */
export const Scenario = {
  /** One call of `get_weather`, its arguments split over four chunks. */
  tool: "[[tool]]",
  /** Text, then `get_weather` and `get_time` in parallel, their fragments interleaved with each other and with text. */
  tools: "[[tools]]",
  /** Thinking (`reasoning_content`) before the answer. */
  reasoning: "[[reasoning]]",
  unauthorized: "[[401]]",
  forbidden: "[[403]]",
  /** 429 with `Retry-After: 7`. */
  rateLimited: "[[429]]",
  /** 429 `insufficient_quota`. */
  quota: "[[quota]]",
  /** 400 `context_length_exceeded`. */
  contextTooLong: "[[context]]",
  serverError: "[[500]]",
  /** 503 "The engine is currently overloaded". */
  overloaded: "[[503]]",
  /** GLM's 429 with business code 1113 (balance exhausted). */
  glmBalance: "[[glm-1113]]",
  /** Never answers (not even headers). */
  hang: "[[hang]]",
  /** Streams two chunks, then destroys the socket (JSON: destroys it at once). */
  drop: "[[drop]]",
  /** Streams one chunk, then one that is not JSON (JSON: a truncated body). */
  malformed: "[[malformed]]",
  /** Streams a chunk, then ends the response cleanly without a finish reason or `[DONE]`. */
  truncated: "[[truncated]]",
  /** Streams a chunk, then an `{"error": …}` event as OpenRouter does mid-stream. */
  streamError: "[[stream-error]]",
  /** Streams 100 text chunks 100 ms apart. */
  slow: "[[slow]]",
  /** Streams a chunk, then goes silent without ending (JSON: the headers and part of the body). */
  stall: "[[stall]]"
} as const

/** How the fake answers. */
export interface WireOptions {
  /**
   * `openai` (default): full chunks, usage in a trailing `choices: []` chunk only when the request
   * has `stream_options.include_usage`. `glm`: GLM's recorded shape: no `object`, no
   * `finish_reason: null`, usage always on the finish chunk, the finish reason repeated.
   */
  readonly flavor?: "openai" | "glm"
  /** The key it accepts; a request with another bearer gets the 401. Default: any key. */
  readonly apiKey?: string
}

/** The text answer without a marker, and the deltas it streams as. */
export const answerText = "Hello! How can I help you today?"

/** The usage every answer reports: 4 of the 19 prompt tokens cached, 2 of the 10 completion tokens reasoning. */
export const usage = {
  prompt_tokens: 19,
  completion_tokens: 10,
  total_tokens: 29,
  prompt_tokens_details: { cached_tokens: 4, audio_tokens: 0 },
  completion_tokens_details: {
    reasoning_tokens: 2,
    audio_tokens: 0,
    accepted_prediction_tokens: 0,
    rejected_prediction_tokens: 0
  }
}

/** The arguments of the tool scenarios, as the model would type them. */
export const weatherArguments = '{"location": "Paris", "unit": "celsius"}'
export const timeArguments = '{"timezone": "Europe/Paris"}'

/** The routes of a fake OpenAI under `prefix` (`/v1` for OpenAI, `/api/paas/v4` for GLM, …). */
export const routes = (prefix = "/v1", options: WireOptions = {}): Record<string, Handler> => ({
  [`POST ${prefix}/chat/completions`]: (request, response) => chatCompletions(request, response, options),
  [`GET ${prefix}/models`]: (request, response) => models(request, response, options),
  [`GET ${prefix}/key`]: (request, response) => models(request, response, options)
})

/** The text of the last user message of a recorded request (for assertions). */
export const lastUserText = (body: unknown): string => {
  const messages = field(body, "messages")
  if (!Array.isArray(messages)) return ""
  const users = messages.filter((message) => field(message, "role") === "user")
  const content = field(users.at(-1), "content")
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return ""
  return content
    .map((part) => field(part, "text"))
    .filter((text) => typeof text === "string")
    .join("\n")
}

// ---------------------------------------------------------------------------------------------
// Routes

const chatCompletions = (request: Received, response: ServerResponse, options: WireOptions): void => {
  const text = lastUserText(request.body)
  const model = String(field(request.body, "model") ?? "gpt-4o")
  const stream = field(request.body, "stream") === true
  const includeUsage = field(field(request.body, "stream_options"), "include_usage") === true
  if (!authorized(request, options)) return Faults.unauthorized(request, response)
  const marker = Object.values(Scenario).find((value) => text.includes(value))
  switch (marker) {
    case Scenario.unauthorized:
      return Faults.unauthorized(request, response)
    case Scenario.forbidden:
      return Faults.forbidden(response)
    case Scenario.rateLimited:
      return Faults.rateLimited(response)
    case Scenario.quota:
      return Faults.quota(response)
    case Scenario.contextTooLong:
      return Faults.contextTooLong(response)
    case Scenario.serverError:
      return Faults.serverError(response)
    case Scenario.overloaded:
      return Faults.overloaded(response)
    case Scenario.glmBalance:
      return Faults.glmBalance(response)
    case Scenario.hang:
      return
  }
  const answer = answerOf(marker)
  if (!stream) {
    if (marker === Scenario.drop) return void response.socket?.destroy()
    if (marker === Scenario.malformed) {
      response
        .writeHead(200, { "content-type": "application/json" })
        .end('{"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "choi')
      return
    }
    if (marker === Scenario.stall) {
      response
        .writeHead(200, { "content-type": "application/json" })
        .write('{"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", ')
      return
    }
    response.writeHead(200, { "content-type": "application/json", "x-request-id": "req_fake" })
    response.end(JSON.stringify(completion(model, answer, options)))
    return
  }
  response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "x-request-id": "req_fake" })
  const chunks = streamChunks(model, marker, answer, options, includeUsage)
  void writeEvents(response, chunks, marker === Scenario.slow ? 100 : 0)
}

const models = (request: Received, response: ServerResponse, options: WireOptions): void => {
  if (!authorized(request, options)) return Faults.unauthorized(request, response)
  response.writeHead(200, { "content-type": "application/json" })
  response.end(
    JSON.stringify({
      object: "list",
      data: [
        { id: "gpt-4o", object: "model", created: 1715367049, owned_by: "system" },
        { id: "gpt-4o-mini", object: "model", created: 1721172741, owned_by: "system" }
      ]
    })
  )
}

const authorized = (request: Received, options: WireOptions): boolean =>
  options.apiKey === undefined || request.headers.authorization === `Bearer ${options.apiKey}`

// ---------------------------------------------------------------------------------------------
// Answers

interface Answer {
  readonly reasoning: ReadonlyArray<string>
  readonly text: ReadonlyArray<string>
  readonly calls: ReadonlyArray<{
    readonly id: string
    readonly name: string
    readonly fragments: ReadonlyArray<string>
  }>
}

const words = (text: string): Array<string> => text.split(/(?<=\s)(?=\S)/u)

const answerOf = (marker: string | undefined): Answer => {
  switch (marker) {
    case Scenario.tool:
      return {
        reasoning: [],
        text: [],
        calls: [
          {
            id: "call_weather_1",
            name: "get_weather",
            fragments: ['{"loc', 'ation": "Pa', 'ris", "unit": "cel', 'sius"}']
          }
        ]
      }
    case Scenario.tools:
      return {
        reasoning: [],
        text: ["Checking", " both."],
        calls: [
          {
            id: "call_weather_2",
            name: "get_weather",
            fragments: ['{"location"', ': "Paris", ', '"unit": "celsius"}']
          },
          { id: "call_time_2", name: "get_time", fragments: ['{"timez', 'one": "Europe/Paris"}'] }
        ]
      }
    case Scenario.reasoning:
      return { reasoning: ["The user", " greets me."], text: words(answerText), calls: [] }
    case Scenario.slow:
      return { reasoning: [], text: Array.from({ length: 100 }, (_, i) => `word${i} `), calls: [] }
    default:
      return { reasoning: [], text: words(answerText), calls: [] }
  }
}

const base = (model: string, options: WireOptions) =>
  options.flavor === "glm"
    ? { id: "20250926190620c633be90e4bb4b9f", created: 1758884780, model }
    : {
        id: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        object: "chat.completion.chunk",
        created: 1741570283,
        model,
        service_tier: "default",
        system_fingerprint: "fp_44709d6fcb"
      }

const glmUsage = {
  prompt_tokens: 19,
  completion_tokens: 10,
  total_tokens: 29,
  prompt_tokens_details: { cached_tokens: 4 }
}

const completion = (model: string, answer: Answer, options: WireOptions): unknown => {
  const calls = answer.calls.map((call) => ({
    id: call.id,
    type: "function",
    function: { name: call.name, arguments: call.fragments.join("") }
  }))
  const reasoning = answer.reasoning.join("")
  return {
    ...base(model, options),
    object: "chat.completion",
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: answer.text.length === 0 ? null : answer.text.join(""),
          refusal: null,
          annotations: [],
          ...(reasoning === "" ? {} : { reasoning_content: reasoning }),
          ...(calls.length === 0 ? {} : { tool_calls: calls })
        },
        logprobs: null,
        finish_reason: calls.length === 0 ? "stop" : "tool_calls"
      }
    ],
    usage: options.flavor === "glm" ? glmUsage : usage
  }
}

type Event = { readonly data: string } | { readonly action: "destroy" | "end" | "stall" }

const streamChunks = (
  model: string,
  marker: string | undefined,
  answer: Answer,
  options: WireOptions,
  includeUsage: boolean
): Array<Event> => {
  const glm = options.flavor === "glm"
  const chunk = (
    delta: Record<string, unknown>,
    finish: string | null = null,
    extra: Record<string, unknown> = {}
  ) => ({
    data: JSON.stringify({
      ...base(model, options),
      choices: [
        glm
          ? { index: 0, ...(finish === null ? {} : { finish_reason: finish }), delta: { role: "assistant", ...delta } }
          : { index: 0, delta, logprobs: null, finish_reason: finish }
      ],
      ...(glm ? {} : { usage: null }),
      ...extra
    })
  })
  const events: Array<Event> = [chunk({ role: "assistant", content: "", refusal: null })]
  if (marker === Scenario.drop) return [...events, chunk({ content: "Hel" }), { action: "destroy" }]
  if (marker === Scenario.truncated) return [...events, chunk({ content: "Hel" }), { action: "end" }]
  if (marker === Scenario.stall) return [...events, chunk({ content: "Hel" }), { action: "stall" }]
  if (marker === Scenario.malformed) {
    return [
      ...events,
      chunk({ content: "Hel" }),
      { data: '{"id": "chatcmpl-B9MHD", "choices": [{"delta": {"content": "lo' }
    ]
  }
  if (marker === Scenario.streamError) {
    return [
      ...events,
      chunk({ content: "Hel" }),
      {
        data: JSON.stringify({
          error: { message: "Provider returned error", code: 502, metadata: { raw: "upstream timeout" } }
        })
      }
    ]
  }
  for (const delta of answer.reasoning) events.push(chunk({ reasoning_content: delta }))
  const [firstText, ...restText] = answer.text
  if (firstText !== undefined) events.push(chunk({ content: firstText }))
  // Tool calls: each call's first fragment names it; then the fragments of all calls interleave,
  // with the rest of the text in between (OpenAI sends calls one after the other; others do not).
  const starts = answer.calls.map((call, index) =>
    chunk({ tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] })
  )
  events.push(...starts)
  const longest = Math.max(0, ...answer.calls.map((call) => call.fragments.length))
  const text = [...restText]
  for (let step = 0; step < longest; step++) {
    for (const [index, call] of answer.calls.entries()) {
      const fragment = call.fragments[step]
      if (fragment !== undefined) events.push(chunk({ tool_calls: [{ index, function: { arguments: fragment } }] }))
    }
    const between = text.shift()
    if (between !== undefined) events.push(chunk({ content: between }))
  }
  for (const rest of text) events.push(chunk({ content: rest }))
  const finish = answer.calls.length === 0 ? "stop" : "tool_calls"
  if (glm) {
    // GLM repeats the finish reason and puts usage on the last chunk, asked or not.
    events.push(chunk({ content: "" }, finish, { usage: glmUsage }))
  } else {
    events.push(chunk({}, finish))
    if (includeUsage) {
      events.push({ data: JSON.stringify({ ...base(model, options), choices: [], usage }) })
    }
  }
  events.push({ data: "[DONE]" })
  return events
}

const writeEvents = async (response: ServerResponse, events: ReadonlyArray<Event>, delayMs: number): Promise<void> => {
  for (const [i, event] of events.entries()) {
    if (response.destroyed) return
    if (i > 0 && delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs))
    if ("data" in event) {
      response.write(`data: ${event.data}\n\n`)
    } else if (event.action === "destroy") {
      // Let the chunks already written reach the client before the connection dies.
      await new Promise((resolve) => setTimeout(resolve, 20))
      response.socket?.destroy()
      return
    } else if (event.action === "end") {
      response.end()
      return
    } else {
      return
    }
  }
  response.end()
}

const field = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null && key in value ? Reflect.get(value, key) : undefined
