#!/usr/bin/env node
// Fake LLM provider for benchmarking gateways. Plain node:http, no dependencies.
//
// Endpoints:
//   POST /v1/chat/completions   OpenAI Chat Completions (JSON, or SSE when body.stream === true)
//   POST /v1/messages           Anthropic Messages      (JSON, or SSE when body.stream === true)
//   GET  /healthz               "ok"
//   (also accepted without the /v1 prefix: /chat/completions, /messages)
//
// Config (flag > env > default):
//   --port / PORT                          8100
//   --host / HOST                          127.0.0.1
//   --latency / FAKE_LATENCY_MS            0     fixed delay (ms) before the response headers/first chunk
//   --chunks / FAKE_CHUNKS                 10    content chunks per SSE stream
//   --chunk-interval / FAKE_CHUNK_INTERVAL_MS 0  delay (ms) between SSE chunks
//   --fault / FAKE_FAULT                   ""    default fault for every request (see below)
//
// Per-request overrides (headers):
//   X-Fake-Latency: <ms>         X-Fake-Chunks: <n>         X-Fake-Chunk-Interval: <ms>
//   X-Fake-Fault: 429 | 500 | 503 | hang | drop
//       429/500/503: error body in the provider's format (429 carries retry-after: 1)
//       hang:        accept the request and never answer (socket kept open)
//       drop:        stream mode: send half of the chunks then destroy the socket;
//                    non-stream: send headers + partial body then destroy the socket
//   X-Fake-Tools: 1              answer with a tool call (OpenAI tool_calls / Anthropic tool_use)
//   Tool mode is also triggered when the last message's text contains "TOOL_CALL",
//   or when the request has `tools` and the last message contains "use a tool".
//
// Usage is always reported: OpenAI non-stream `usage`; OpenAI stream: final chunk with `usage`
// (sent always, as if stream_options.include_usage were set); Anthropic: message_start/message_delta usage.

import http from "node:http"

function arg(name, envName, def) {
  const i = process.argv.indexOf(`--${name}`)
  if (i !== -1 && i + 1 < process.argv.length) return process.argv[i + 1]
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`))
  if (eq) return eq.slice(name.length + 3)
  if (process.env[envName] !== undefined) return process.env[envName]
  return def
}

const PORT = Number(arg("port", "PORT", 8100))
const HOST = arg("host", "HOST", "127.0.0.1")
const LATENCY = Number(arg("latency", "FAKE_LATENCY_MS", 0))
const CHUNKS = Number(arg("chunks", "FAKE_CHUNKS", 10))
const CHUNK_INTERVAL = Number(arg("chunk-interval", "FAKE_CHUNK_INTERVAL_MS", 0))
const FAULT = String(arg("fault", "FAKE_FAULT", ""))

const hangs = new Set() // keep references to hung responses
let reqCount = 0

// let already-written bytes reach the client, then kill the socket (simulated mid-stream drop)
const dropNow = (res) => setTimeout(() => res.destroy(), 20)
const sleep = (ms) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve())

function lastMessageText(body) {
  const msgs = Array.isArray(body?.messages) ? body.messages : []
  const last = msgs[msgs.length - 1]
  if (!last) return ""
  const c = last.content
  if (typeof c === "string") return c
  if (Array.isArray(c)) return c.map((p) => (typeof p === "string" ? p : (p?.text ?? ""))).join(" ")
  return ""
}

function wantsTools(req, body) {
  const h = req.headers["x-fake-tools"]
  if (h === "1" || h === "true") return true
  const t = lastMessageText(body)
  if (t.includes("TOOL_CALL")) return true
  if (Array.isArray(body?.tools) && body.tools.length && /use a tool/i.test(t)) return true
  return false
}

function toolName(body) {
  const t = Array.isArray(body?.tools) ? body.tools[0] : null
  return t?.function?.name || t?.name || "get_weather"
}

const WORDS = ["Hello", " from", " the", " fake", " upstream", ".", " This", " is", " chunk", " text"]
function word(i) {
  return WORDS[i % WORDS.length]
}

function numHeader(req, name, def) {
  const v = req.headers[name]
  if (v === undefined) return def
  const n = Number(v)
  return Number.isFinite(n) ? n : def
}

function sendJSON(res, status, obj, extra) {
  const s = JSON.stringify(obj)
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(s), ...extra })
  res.end(s)
}

function errorBody(kind, status) {
  const msg = status === 429 ? "Rate limit exceeded (fake)" : `Upstream error ${status} (fake)`
  if (kind === "anthropic") {
    const type = status === 429 ? "rate_limit_error" : status === 529 ? "overloaded_error" : "api_error"
    return { type: "error", error: { type, message: msg } }
  }
  return {
    error: {
      message: msg,
      type: status === 429 ? "rate_limit_error" : "server_error",
      param: null,
      code: String(status)
    }
  }
}

// ---------- OpenAI ----------
function openaiJSON(body, tools) {
  const created = Math.floor(Date.now() / 1000)
  const n = CHUNKS
  let content = ""
  for (let i = 0; i < n; i++) content += word(i)
  const message = tools
    ? {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_fake_1", type: "function", function: { name: toolName(body), arguments: '{"location":"Paris"}' } }
        ]
      }
    : { role: "assistant", content }
  return {
    id: `chatcmpl-fake-${++reqCount}`,
    object: "chat.completion",
    created,
    model: body?.model || "fake-model",
    choices: [{ index: 0, message, logprobs: null, finish_reason: tools ? "tool_calls" : "stop" }],
    usage: { prompt_tokens: 10, completion_tokens: n, total_tokens: 10 + n }
  }
}

async function openaiStream(req, res, body, tools, drop) {
  const n = numHeader(req, "x-fake-chunks", CHUNKS)
  const iv = numHeader(req, "x-fake-chunk-interval", CHUNK_INTERVAL)
  const id = `chatcmpl-fake-${++reqCount}`
  const created = Math.floor(Date.now() / 1000)
  const model = body?.model || "fake-model"
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" })
  const chunk = (delta, finish, extra) =>
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...extra })}\n\n`
  let closed = false
  res.on("close", () => {
    closed = true
  })
  if (tools) {
    res.write(
      chunk(
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { index: 0, id: "call_fake_1", type: "function", function: { name: toolName(body), arguments: "" } }
          ]
        },
        null
      )
    )
    const parts = ['{"loc', 'ation":', '"Paris"}']
    for (let i = 0; i < parts.length; i++) {
      if (drop && i === 1) return dropNow(res)
      await sleep(iv)
      if (closed) return
      res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: parts[i] } }] }, null))
    }
    res.write(chunk({}, "tool_calls"))
  } else {
    for (let i = 0; i < n; i++) {
      if (drop && i === Math.floor(n / 2)) return dropNow(res)
      if (i > 0) {
        await sleep(iv)
        if (closed) return
      }
      res.write(chunk(i === 0 ? { role: "assistant", content: word(i) } : { content: word(i) }, null))
    }
    res.write(chunk({}, "stop"))
  }
  res.write(
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [], usage: { prompt_tokens: 10, completion_tokens: n, total_tokens: 10 + n } })}\n\n`
  )
  res.end("data: [DONE]\n\n")
}

// ---------- Anthropic ----------
function anthropicJSON(body, tools) {
  const n = CHUNKS
  let text = ""
  for (let i = 0; i < n; i++) text += word(i)
  const content = tools
    ? [{ type: "tool_use", id: "toolu_fake_1", name: toolName(body), input: { location: "Paris" } }]
    : [{ type: "text", text }]
  return {
    id: `msg_fake_${++reqCount}`,
    type: "message",
    role: "assistant",
    model: body?.model || "fake-model",
    content,
    stop_reason: tools ? "tool_use" : "end_turn",
    stop_sequence: null,
    usage: { input_tokens: 10, output_tokens: n }
  }
}

const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`

async function anthropicStream(req, res, body, tools, drop) {
  const n = numHeader(req, "x-fake-chunks", CHUNKS)
  const iv = numHeader(req, "x-fake-chunk-interval", CHUNK_INTERVAL)
  const model = body?.model || "fake-model"
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" })
  let closed = false
  res.on("close", () => {
    closed = true
  })
  res.write(
    ev("message_start", {
      message: {
        id: `msg_fake_${++reqCount}`,
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 10, output_tokens: 1 }
      }
    })
  )
  if (tools) {
    res.write(
      ev("content_block_start", {
        index: 0,
        content_block: { type: "tool_use", id: "toolu_fake_1", name: toolName(body), input: {} }
      })
    )
    const parts = ['{"loc', 'ation":', '"Paris"}']
    for (let i = 0; i < parts.length; i++) {
      if (drop && i === 1) return dropNow(res)
      await sleep(iv)
      if (closed) return
      res.write(ev("content_block_delta", { index: 0, delta: { type: "input_json_delta", partial_json: parts[i] } }))
    }
  } else {
    res.write(ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }))
    for (let i = 0; i < n; i++) {
      if (drop && i === Math.floor(n / 2)) return dropNow(res)
      if (i > 0) {
        await sleep(iv)
        if (closed) return
      }
      res.write(ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: word(i) } }))
    }
  }
  res.write(ev("content_block_stop", { index: 0 }))
  res.write(
    ev("message_delta", {
      delta: { stop_reason: tools ? "tool_use" : "end_turn", stop_sequence: null },
      usage: { output_tokens: n }
    })
  )
  res.end(ev("message_stop", {}))
}

async function handle(req, res, raw) {
  const url = req.url.split("?")[0]
  let kind
  if (url === "/v1/chat/completions" || url === "/chat/completions") kind = "openai"
  else if (url === "/v1/messages" || url === "/messages") kind = "anthropic"
  else if (url === "/healthz" || url === "/health") {
    res.writeHead(200, { "content-type": "text/plain" })
    return res.end("ok")
  } else return sendJSON(res, 404, { error: { message: `not found: ${req.method} ${url}` } })
  if (req.method !== "POST") return sendJSON(res, 405, { error: { message: "method not allowed" } })

  let body
  try {
    body = raw.length ? JSON.parse(raw) : {}
  } catch {
    return sendJSON(res, 400, errorBody(kind, 400))
  }

  const fault = String(req.headers["x-fake-fault"] ?? FAULT).toLowerCase()
  await sleep(numHeader(req, "x-fake-latency", LATENCY))

  if (fault === "hang") {
    hangs.add(res)
    res.on("close", () => hangs.delete(res))
    return
  }
  if (/^[45]\d\d$/.test(fault)) {
    const st = Number(fault)
    return sendJSON(res, st, errorBody(kind, st), st === 429 ? { "retry-after": "1" } : undefined)
  }
  const drop = fault === "drop"
  const tools = wantsTools(req, body)
  const stream = body?.stream === true

  if (kind === "openai") {
    if (stream) return openaiStream(req, res, body, tools, drop)
    if (drop) {
      res.writeHead(200, { "content-type": "application/json", "content-length": 1000 })
      res.write('{"id":"chatcmpl-fake-dro')
      return dropNow(res)
    }
    return sendJSON(res, 200, openaiJSON(body, tools))
  }
  if (stream) return anthropicStream(req, res, body, tools, drop)
  if (drop) {
    res.writeHead(200, { "content-type": "application/json", "content-length": 1000 })
    res.write('{"id":"msg_fake_dro')
    return dropNow(res)
  }
  return sendJSON(res, 200, anthropicJSON(body, tools))
}

const server = http.createServer(
  { keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 },
  (req, res) => {
    const parts = []
    req.on("data", (c) => parts.push(c))
    req.on("end", () => {
      handle(req, res, parts.length === 1 ? parts[0].toString() : Buffer.concat(parts).toString()).catch((e) => {
        if (!res.headersSent) sendJSON(res, 500, { error: { message: String(e) } })
        else res.destroy()
      })
    })
  }
)
server.maxConnections = Infinity
server.listen({ port: PORT, host: HOST, backlog: 16384 }, () => {
  console.error(
    `fake-upstream listening on http://${HOST}:${PORT} latency=${LATENCY}ms chunks=${CHUNKS} interval=${CHUNK_INTERVAL}ms fault=${FAULT || "none"} pid=${process.pid}`
  )
})
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0))
