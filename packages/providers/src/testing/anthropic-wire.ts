/**
 * Handlers for `FakeUpstream` that speak Anthropic's Messages API as documented: `POST /v1/messages`
 * answers a JSON `message` or, with `"stream": true`, the server-sent events `message_start`,
 * `content_block_start` / `_delta` / `_stop`, `ping`, `message_delta` and `message_stop` (each with
 * its `event:` name); `GET /v1/models` lists models. What it answers is chosen by a marker in the
 * last user message: a plain text answer by default, tool calls for the `scenarios`, and the
 * failures of `faults` (HTTP errors with Anthropic's error bodies, a hang, a stall, a cut
 * connection, malformed JSON, a streamed `error` event).
 */
import type { ServerResponse } from "node:http"
import { type Handler, type Received, writeSse } from "./FakeUpstream.ts"

/** Markers that make the fake fail; put one in the last user message. */
export const faults = {
  /** 401 `authentication_error`, whose message echoes the Authorization header it received. */
  unauthorized: "[fault:unauthorized]",
  /** 429 `rate_limit_error` with `retry-after: 7`. */
  rateLimited: "[fault:rate-limited]",
  /** 500 `api_error`. */
  serverError: "[fault:server-error]",
  /** 529 `overloaded_error`. */
  overloaded: "[fault:overloaded]",
  /** 400 `invalid_request_error` "prompt is too long". */
  contextTooLong: "[fault:context-too-long]",
  /** 400 `invalid_request_error` about something else. */
  badRequest: "[fault:bad-request]",
  /** Never answers, not even the headers. */
  hang: "[fault:hang]",
  /** Streams `message_start`, then stays silent with the connection open. */
  stall: "[fault:stall]",
  /** Streams part of the answer, then destroys the connection. */
  drop: "[fault:drop]",
  /** Streams an event whose data is not JSON (a JSON answer that is cut off, without streaming). */
  malformed: "[fault:malformed]",
  /** Streams part of the answer, then an `error` event of type `overloaded_error`. */
  errorEvent: "[fault:error-event]"
} as const

/** Markers that choose the answer; put one in the last user message. */
export const scenarios = {
  /** One `tool_use` block: `get_weather` with {@link weatherInput}. */
  tool: "[scenario:tool]",
  /** Some text, then two `tool_use` blocks: `get_weather` and `get_time`. */
  parallelTools: "[scenario:parallel-tools]",
  /** Streams the text only after a long pause of pings, for interruption tests. */
  slow: "[scenario:slow]"
} as const

/** The default answer's text. */
export const answerText = "Hello from the fake Anthropic API."

/** The input of the `get_weather` call. */
export const weatherInput = { city: "Paris", unit: "celsius" }

/** The input of the `get_time` call. */
export const timeInput = { zone: "Europe/Paris" }

/** The usage every answer reports (with a prompt-cache read and write). */
export const usage = {
  input_tokens: 12,
  output_tokens: 9,
  cache_read_input_tokens: 100,
  cache_creation_input_tokens: 20
}

/** The models `GET /v1/models` lists. */
export const models = ["claude-sonnet-4-5", "claude-haiku-4-5"]

/** The routes of the fake Anthropic API, for `FakeUpstream.start`. */
export const routes = (): Record<string, Handler> => ({
  "POST /v1/messages": messages,
  "GET /v1/models": listModels
})

// ---------------------------------------------------------------------------------------------
// Answers

type Block =
  | { readonly type: "text"; readonly text: string }
  | { readonly type: "tool_use"; readonly id: string; readonly name: string; readonly input: object }

interface Answer {
  readonly content: ReadonlyArray<Block>
  readonly stopReason: string
}

const answerFor = (marker: string): Answer => {
  if (marker.includes(scenarios.tool)) {
    return {
      content: [{ type: "tool_use", id: "toolu_01weather", name: "get_weather", input: weatherInput }],
      stopReason: "tool_use"
    }
  }
  if (marker.includes(scenarios.parallelTools)) {
    return {
      content: [
        { type: "text", text: "Let me check both." },
        { type: "tool_use", id: "toolu_01weather", name: "get_weather", input: weatherInput },
        { type: "tool_use", id: "toolu_02time", name: "get_time", input: timeInput }
      ],
      stopReason: "tool_use"
    }
  }
  return { content: [{ type: "text", text: answerText }], stopReason: "end_turn" }
}

const messages: Handler = (request, response) => {
  const body = isRecord(request.body) ? request.body : {}
  const marker = lastUserText(body)
  const model = typeof body["model"] === "string" ? body["model"] : "claude-unknown"
  if (!hasCredentials(request)) return sendError(response, 401, "authentication_error", "missing credentials")
  if (marker.includes(faults.hang)) return
  if (sendFault(request, response, marker)) return
  const answer = answerFor(marker)
  if (body["stream"] === true) return void stream(response, model, answer, marker)
  if (marker.includes(faults.drop)) return void response.socket?.destroy()
  if (marker.includes(faults.malformed)) {
    return void response.writeHead(200, { "content-type": "application/json" }).end('{"type":"message","id":"msg_')
  }
  response.writeHead(200, { "content-type": "application/json", "request-id": "req_fake_01" }).end(
    JSON.stringify({
      type: "message",
      id: "msg_fake_01",
      role: "assistant",
      model,
      content: answer.content,
      stop_reason: answer.stopReason,
      stop_sequence: null,
      stop_details: null,
      container: null,
      diagnostics: null,
      usage: fullUsage()
    })
  )
}

// Answers the HTTP faults; false when the marker asks for none of them.
const sendFault = (request: Received, response: ServerResponse, marker: string): boolean => {
  if (marker.includes(faults.unauthorized)) {
    sendError(response, 401, "authentication_error", `invalid x-api-key: ${request.headers.authorization ?? ""}`)
  } else if (marker.includes(faults.rateLimited)) {
    sendError(response, 429, "rate_limit_error", "Number of request tokens has exceeded your rate limit", {
      "retry-after": "7"
    })
  } else if (marker.includes(faults.serverError)) {
    sendError(response, 500, "api_error", "Internal server error")
  } else if (marker.includes(faults.overloaded) || (marker.includes(faults.errorEvent) && !isStreaming(request))) {
    sendError(response, 529, "overloaded_error", "Overloaded")
  } else if (marker.includes(faults.contextTooLong)) {
    sendError(response, 400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")
  } else if (marker.includes(faults.badRequest)) {
    sendError(response, 400, "invalid_request_error", "messages.0.content: Input should be a valid list")
  } else {
    return false
  }
  return true
}

const sendError = (
  response: ServerResponse,
  status: number,
  type: string,
  message: string,
  headers: Record<string, string> = {}
): void => {
  response
    .writeHead(status, { "content-type": "application/json", "request-id": "req_fake_err", ...headers })
    .end(JSON.stringify({ type: "error", error: { type, message }, request_id: "req_fake_err" }))
}

// ---------------------------------------------------------------------------------------------
// Streaming

const stream = async (response: ServerResponse, model: string, answer: Answer, marker: string): Promise<void> => {
  response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
  const send = (type: string, data: object): void => writeSse(response, JSON.stringify({ type, ...data }), type)
  send("message_start", {
    message: {
      id: "msg_fake_01",
      type: "message",
      role: "assistant",
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { ...fullUsage(), output_tokens: 1 }
    }
  })
  if (marker.includes(faults.stall)) return
  if (marker.includes(faults.malformed)) {
    writeSse(response, '{"type":"content_block_delta","index":0,"delta":{"type":"text_', "content_block_delta")
    return void response.end()
  }
  send("ping", {})
  if (marker.includes(scenarios.slow)) {
    for (let i = 0; i < 50 && !response.destroyed; i++) {
      await pause(100)
      send("ping", {})
    }
  }
  for (const [index, block] of answer.content.entries()) {
    if (block.type === "text") {
      send("content_block_start", { index, content_block: { type: "text", text: "" } })
      for (const piece of split(block.text, 3)) {
        send("content_block_delta", { index, delta: { type: "text_delta", text: piece } })
        await pause(1)
      }
      if (marker.includes(faults.drop)) return void response.socket?.destroy()
      if (marker.includes(faults.errorEvent)) {
        send("error", { error: { type: "overloaded_error", message: "Overloaded" } })
        return void response.end()
      }
    } else {
      send("content_block_start", {
        index,
        content_block: { type: "tool_use", id: block.id, name: block.name, input: {} }
      })
      send("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: "" } })
      // Fragments cut anywhere, even inside a key or a string, as Anthropic's are.
      for (const piece of split(JSON.stringify(block.input), 4)) {
        send("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: piece } })
        await pause(1)
      }
    }
    send("content_block_stop", { index })
  }
  send("message_delta", {
    delta: { stop_reason: answer.stopReason, stop_sequence: null },
    usage: { output_tokens: usage.output_tokens }
  })
  send("message_stop", {})
  response.end()
}

// Splits `text` into `count` pieces of nearly equal length (fewer when it is shorter).
const split = (text: string, count: number): Array<string> => {
  const size = Math.max(1, Math.ceil(text.length / count))
  const pieces: Array<string> = []
  for (let start = 0; start < text.length; start += size) pieces.push(text.slice(start, start + size))
  return pieces
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------
// Models

const listModels: Handler = (request, response) => {
  if (!hasCredentials(request)) return sendError(response, 401, "authentication_error", "missing credentials")
  const data = models.map((id) => ({
    type: "model",
    id,
    display_name: id,
    created_at: "2026-01-01T00:00:00Z"
  }))
  response
    .writeHead(200, { "content-type": "application/json" })
    .end(JSON.stringify({ data, has_more: false, first_id: models[0], last_id: models.at(-1) }))
}

// ---------------------------------------------------------------------------------------------
// Request helpers

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const isStreaming = (request: Received): boolean => isRecord(request.body) && request.body["stream"] === true

const hasCredentials = (request: Received): boolean =>
  request.headers.authorization !== undefined || request.headers["x-api-key"] !== undefined

const fullUsage = () => ({
  ...usage,
  cache_creation: null,
  inference_geo: null,
  output_tokens_details: null,
  server_tool_use: null,
  service_tier: "standard",
  speed: null
})

// The text of the last user message (string content or its text blocks).
const lastUserText = (body: Record<string, unknown>): string => {
  const messages = Array.isArray(body["messages"]) ? body["messages"] : []
  const last = messages.filter((message) => isRecord(message) && message["role"] === "user").at(-1)
  if (!isRecord(last)) return ""
  const content = last["content"]
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return ""
  return content
    .map((block) =>
      isRecord(block) && block["type"] === "text" && typeof block["text"] === "string" ? block["text"] : ""
    )
    .join("\n")
}
