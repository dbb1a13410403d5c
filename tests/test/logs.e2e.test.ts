/**
 * The server's logs as an operator reads them, from the real server (`npm start`) with a fake
 * OpenAI upstream: with `LOG_FORMAT=json` every stdout line is one JSON object; each request —
 * the stack's routes and answers (401, 404, 405, 413, streams, a client that goes away) and the
 * fast lane's relays — has exactly one line with its route pattern, status, duration, request id,
 * caller and model; a failed upstream call has one line with its provider, model and status,
 * without the upstream's text; the start-up summary and the shutdown lines are there; no line
 * holds a key or a body. `LOG_LEVEL=warn` keeps only warnings (in the text format), and an invalid
 * `LOG_FORMAT` stops start-up naming `log.format`.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { FakeUpstream, OpenAiWire } from "@polyagent/providers/testing"
import { Gateway, runUntilExit, withoutResilience } from "../src/harness.ts"

const OPENAI_KEY = "sk-logs-test-key-0123456789"
/** Put in every request body: it must never show up in a log line. */
const BODY_MARKER = "body-marker-6f1c2d"
/** The fake's own words in its 500 and 429 answers (`openai-faults.ts`). */
const UPSTREAM_TEXTS = ["The server had an error while processing your request", "Rate limit reached for gpt-4o"]

type Line = Readonly<Record<string, unknown>>

const jsonLines = (stdout: string): Array<Line> =>
  stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const parsed: unknown = JSON.parse(line)
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new Error(`not a JSON object: ${line}`)
      }
      return parsed as Line
    })

/** The lines matching `where`, once there are `count` of them (the server writes its logs as it goes). */
const waitForLines = async (gateway: Gateway, where: (line: Line) => boolean, count = 1): Promise<Array<Line>> => {
  const deadline = Date.now() + 5_000
  for (;;) {
    const found = jsonLines(gateway.output.stdout).filter(where)
    if (found.length >= count || Date.now() > deadline) return found
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** The one request line of the request `id`; fails when there is none or more than one. */
const requestLine = async (gateway: Gateway, id: string): Promise<Line> => {
  const lines = await waitForLines(gateway, (line) => line["message"] === "request" && line["request_id"] === id)
  // Anything logged twice would show up by now.
  await new Promise((resolve) => setTimeout(resolve, 50))
  const again = jsonLines(gateway.output.stdout).filter(
    (line) => line["message"] === "request" && line["request_id"] === id
  )
  assert.strictEqual(again.length, 1, `one request line for ${id}, got ${JSON.stringify(again)}`)
  return lines[0] as Line
}

const chatBody = (content: string, extra: object = {}) => ({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: `${content} ${BODY_MARKER}` }],
  ...extra
})

const withId = (id: string, headers: Record<string, string> = {}) => ({ headers: { "x-request-id": id, ...headers } })

describe("logs of the real server (LOG_FORMAT=json)", () => {
  let fake: FakeUpstream.FakeUpstream
  let gateway: Gateway
  let keyId = ""

  beforeAll(async () => {
    fake = await FakeUpstream.start(OpenAiWire.routes("/v1"))
    gateway = await Gateway.start({
      config: withoutResilience,
      env: { LOG_FORMAT: "json", OPENAI_API_KEY: OPENAI_KEY, OPENAI_BASE_URL: `${fake.url}/v1` }
    })
  })

  afterAll(async () => {
    await gateway?.dispose()
    await fake?.close()
  })

  it("prints a start-up summary once it listens", async () => {
    const [summary] = await waitForLines(gateway, (line) => line["message"] === "PolyAgent started")
    assert.isDefined(summary)
    assert.strictEqual(summary?.["level"], "info")
    assert.strictEqual(summary?.["listen"], gateway.url)
    assert.strictEqual(summary?.["storage"], `sqlite ${gateway.dataDir}`)
    assert.strictEqual(summary?.["cluster"], "single")
    assert.strictEqual(summary?.["runner"], "embedded")
    assert.deepStrictEqual(summary?.["providers"], ["local", "openai"])
    assert.isAbove(Number(summary?.["models"]), 1)
    assert.strictEqual(summary?.["default_model"], "local")
    assert.deepStrictEqual(summary?.["plugins"], [])
    assert.deepStrictEqual(summary?.["tools"], [])
  })

  it("logs a chat turn with its route, status, duration, caller and model", async () => {
    const answer = await gateway.post("/v1/chat", { message: `hello ${BODY_MARKER}` }, withId("log-chat"))
    assert.strictEqual(answer.status, 200, answer.text)
    const line = await requestLine(gateway, "log-chat")
    assert.strictEqual(line["level"], "info")
    assert.match(String(line["timestamp"]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    assert.strictEqual(line["method"], "POST")
    assert.strictEqual(line["route"], "/v1/chat")
    assert.strictEqual(line["status"], 200)
    assert.isAtLeast(Number(line["duration_ms"]), 0)
    assert.strictEqual(line["tenant"], "default")
    assert.match(String(line["key_id"]), /^key_/)
    assert.strictEqual(line["model"], "local")
    keyId = String(line["key_id"])
  })

  it("names a route by its pattern, and logs the edge's own answers (401, 404, 405, 413)", async () => {
    const cases: ReadonlyArray<{
      readonly id: string
      readonly send: (id: string) => Promise<{ readonly status: number }>
      readonly status: number
      readonly route: string
    }> = [
      {
        id: "log-session",
        send: (id) => gateway.get("/v1/sessions/sess_nope", withId(id)),
        status: 404,
        route: "/v1/sessions/:id"
      },
      {
        id: "log-401",
        send: (id) => gateway.get("/v1/models", { ...withId(id), token: "pa_wrong_key_123456789012345" }),
        status: 401,
        route: "/v1/models"
      },
      {
        id: "log-404",
        send: (id) => gateway.get("/v1/nothing/here?x=1", withId(id)),
        status: 404,
        route: "/v1/nothing/here"
      },
      {
        id: "log-405",
        send: (id) => gateway.request("PUT", "/v1/chat", undefined, withId(id)),
        status: 405,
        route: "/v1/chat"
      },
      {
        id: "log-413",
        send: (id) => gateway.post("/v1/chat", { message: "x".repeat(1_100_000) }, withId(id)),
        status: 413,
        route: "/v1/chat"
      }
    ]
    for (const { id, send, status, route } of cases) {
      assert.strictEqual((await send(id)).status, status, id)
      const line = await requestLine(gateway, id)
      assert.strictEqual(line["status"], status, id)
      assert.strictEqual(line["route"], route, id)
      assert.notProperty(line, "model", id)
    }
    const unauthenticated = await requestLine(gateway, "log-401")
    assert.notProperty(unauthenticated, "tenant")
    assert.notProperty(unauthenticated, "key_id")
    assert.strictEqual((await requestLine(gateway, "log-session"))["key_id"], keyId)
  })

  it("logs a stream when it ends, with its whole duration", async () => {
    const response = await gateway.stream("/v1/chat/stream", { message: `stream ${BODY_MARKER}` }, withId("log-sse"))
    assert.strictEqual(response.status, 200)
    await response.text()
    const line = await requestLine(gateway, "log-sse")
    assert.strictEqual(line["route"], "/v1/chat/stream")
    assert.strictEqual(line["status"], 200)
    assert.strictEqual(line["model"], "local")
  })

  it("logs relayed completions, the fast lane's included, streamed or not", async () => {
    // The first request of a key is verified by the stack; the next ones take the fast lane.
    for (const id of ["log-relay-1", "log-relay-2", "log-relay-3"]) {
      const answer = await gateway.post("/v1/chat/completions", chatBody("hi"), withId(id))
      assert.strictEqual(answer.status, 200, answer.text)
    }
    const response = await gateway.stream(
      "/v1/chat/completions",
      chatBody("hi", { stream: true }),
      withId("log-relay-sse")
    )
    assert.strictEqual(response.status, 200)
    await response.text()
    for (const id of ["log-relay-1", "log-relay-2", "log-relay-3", "log-relay-sse"]) {
      const line = await requestLine(gateway, id)
      assert.strictEqual(line["method"], "POST", id)
      assert.strictEqual(line["route"], "/v1/chat/completions", id)
      assert.strictEqual(line["status"], 200, id)
      assert.strictEqual(line["model"], "gpt-4o-mini", id)
      assert.strictEqual(line["tenant"], "default", id)
      assert.strictEqual(line["key_id"], keyId, id)
    }
  })

  /** A new key of tenant `default`: its first request is verified by the stack, not the fast lane. */
  const newKey = async (): Promise<string> => {
    const created = await gateway.post("/v1/keys", { role: "user" })
    assert.strictEqual(created.status, 201, created.text)
    return String((created.json as { key: string }).key)
  }

  it("logs a client that goes away with status 499, when it went, by the stack and the fast lane", async () => {
    // A new key's first request takes the stack; the admin key's, verified long ago, the lane.
    for (const [id, token] of [
      ["log-gone-stack", await newKey()],
      ["log-gone-lane", gateway.adminKey]
    ] as const) {
      const controller = new AbortController()
      const response = await gateway.stream(
        "/v1/chat/completions",
        chatBody(`${OpenAiWire.Scenario.slow} please`, { stream: true }),
        { ...withId(id), token, signal: controller.signal }
      )
      assert.strictEqual(response.status, 200, id)
      const reader = response.body?.getReader()
      await reader?.read()
      // The fake streams a chunk every 100 ms: the stream is well under way when the client goes.
      await new Promise((resolve) => setTimeout(resolve, 400))
      controller.abort()
      await reader?.cancel().catch(() => undefined)
      const line = await requestLine(gateway, id)
      assert.strictEqual(line["status"], 499, id)
      assert.strictEqual(line["route"], "/v1/chat/completions", id)
      assert.isAtLeast(Number(line["duration_ms"]), 400, id)
    }
  })

  it("logs the status a relayed stream was answered with, by the stack too", async () => {
    for (const [id, marker, status] of [
      ["log-stack-sse", "hi", 200],
      ["log-stack-sse-429", OpenAiWire.Scenario.rateLimited, 429]
    ] as const) {
      const response = await gateway.stream("/v1/chat/completions", chatBody(marker, { stream: true }), {
        ...withId(id),
        token: await newKey()
      })
      assert.strictEqual(response.status, status, id)
      await response.text()
      assert.strictEqual((await requestLine(gateway, id))["status"], status, id)
    }
  })

  it("logs each failed upstream call once: provider, model, status, reason, request id, no upstream text", async () => {
    const cases = [
      {
        id: "log-up-500",
        path: "/v1/chat/completions",
        body: chatBody(OpenAiWire.Scenario.serverError),
        status: 500,
        method: "complete"
      },
      {
        id: "log-up-429",
        path: "/v1/chat/completions",
        body: chatBody(OpenAiWire.Scenario.rateLimited),
        status: 429,
        method: "complete"
      },
      {
        id: "log-up-stream",
        path: "/v1/chat/completions",
        body: chatBody(OpenAiWire.Scenario.serverError, { stream: true }),
        status: 500,
        method: "stream"
      },
      {
        id: "log-up-chat",
        path: "/v1/chat",
        body: { message: `${OpenAiWire.Scenario.serverError} ${BODY_MARKER}`, model: "gpt-4o-mini" },
        status: 500,
        method: "generateText"
      }
    ]
    for (const { id, path, body, status, method } of cases) {
      const answer = await gateway.post(path, body, withId(id))
      assert.oneOf(answer.status, [429, 502], `${id}: ${answer.text}`)
      const [failure, ...more] = await waitForLines(
        gateway,
        (line) => line["message"] === "upstream call failed" && line["request_id"] === id
      )
      assert.isDefined(failure, id)
      assert.lengthOf(more, 0, id)
      assert.strictEqual(failure?.["level"], "warn", id)
      assert.strictEqual(failure?.["provider"], "openai", id)
      assert.strictEqual(failure?.["model"], "gpt-4o-mini", id)
      assert.strictEqual(failure?.["method"], method, id)
      assert.strictEqual(failure?.["status"], status, id)
      assert.strictEqual(failure?.["reason"], status === 429 ? "rate_limited" : "overloaded", id)
      const request = await requestLine(gateway, id)
      assert.strictEqual(request["status"], answer.status, id)
      assert.strictEqual(request["level"], answer.status >= 500 ? "warn" : "info", id)
    }
    const rateLimited = await waitForLines(gateway, (line) => line["request_id"] === "log-up-429" && "reason" in line)
    assert.strictEqual(rateLimited[0]?.["retry_after_ms"], 7000)
    for (const text of UPSTREAM_TEXTS) assert.notInclude(gateway.output.stdout + gateway.output.stderr, text)
  })

  it("writes only JSON lines, and never a key or a body", () => {
    const { stdout, stderr } = gateway.output
    const lines = jsonLines(stdout)
    assert.isAbove(lines.length, 10)
    for (const line of lines) {
      assert.oneOf(line["level"], ["debug", "info", "warn", "error"])
      assert.isString(line["timestamp"])
      assert.isString(line["message"])
    }
    for (const secret of [gateway.adminKey, OPENAI_KEY, BODY_MARKER, "pa_wrong_key"]) {
      assert.notInclude(stdout + stderr, secret)
    }
  })

  it("logs the stop signal and the end of the shutdown", async () => {
    const exited = await gateway.stop()
    assert.strictEqual(exited?.code, 0, exited?.stderr)
    const lines = jsonLines(exited?.stdout ?? "")
    const stopping = lines.find((line) => line["message"] === "PolyAgent stopping")
    const stopped = lines.find((line) => line["message"] === "PolyAgent stopped")
    assert.strictEqual(stopping?.["signal"], "SIGTERM")
    assert.strictEqual(stopping?.["grace_ms"], 10_000)
    assert.strictEqual(stopped?.["exit_code"], 0)
    assert.isAtLeast(Number(stopped?.["shutdown_ms"]), 0)
    assert.isBelow(lines.indexOf(stopping ?? {}), lines.indexOf(stopped ?? {}))
  })
})

describe("LOG_LEVEL=warn, LOG_FORMAT=text", () => {
  let fake: FakeUpstream.FakeUpstream
  let gateway: Gateway

  beforeAll(async () => {
    fake = await FakeUpstream.start(OpenAiWire.routes("/v1"))
    gateway = await Gateway.start({
      config: withoutResilience,
      env: { LOG_LEVEL: "warn", LOG_FORMAT: "text", OPENAI_API_KEY: OPENAI_KEY, OPENAI_BASE_URL: `${fake.url}/v1` }
    })
  })

  afterAll(async () => {
    await gateway?.dispose()
    await fake?.close()
  })

  it("hides info lines and keeps warnings, one readable line each", async () => {
    assert.strictEqual((await gateway.post("/v1/chat", { message: "hi" })).status, 200)
    const failed = await gateway.post("/v1/chat/completions", chatBody(OpenAiWire.Scenario.serverError), {
      headers: { "x-request-id": "log-text-500" }
    })
    assert.strictEqual(failed.status, 502)
    const deadline = Date.now() + 5_000
    while (!gateway.output.stdout.includes("status=502") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    const lines = gateway.output.stdout.split("\n").filter((line) => line !== "")
    assert.lengthOf(lines, 2, gateway.output.stdout)
    assert.match(
      lines[0] ?? "",
      /^\d{4}-\d\d-\d\dT[\d:.]+Z WARN upstream call failed provider=openai model=gpt-4o-mini method=complete status=500 reason=overloaded detail="[^"]+" request_id=log-text-500$/
    )
    assert.match(
      lines[1] ?? "",
      /^\S+ WARN request method=POST route=\/v1\/chat\/completions status=502 duration_ms=[\d.]+ request_id=log-text-500 tenant=default key_id=key_\w+ model=gpt-4o-mini$/
    )
  })
})

describe("an invalid LOG_FORMAT", () => {
  it("stops start-up with a message naming log.format", async () => {
    const exited = await runUntilExit({ LOG_FORMAT: "xml", GATEWAY_PORT: "0" })
    assert.strictEqual(exited.code, 1)
    assert.include(exited.stderr, "log.format")
    assert.include(exited.stderr, "LOG_FORMAT")
  })
})
