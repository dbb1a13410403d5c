/**
 * The chat API end to end: the real server (`npm start`) in a child process, over a real
 * socket, once on the embedded database and once on PostgreSQL (a schema of its own). Turns
 * on one session, streaming, a restart that keeps every message, many concurrent turns on
 * one session and on many sessions, bad input answered with the error envelope, and a start
 * with an invalid configuration.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Session, SessionProtocol, Usage } from "@polyagent/runtime"
import { Schema } from "effect"
import { existsSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  type Answer,
  createPgSchema,
  decode,
  ErrorEnvelope,
  Gateway,
  newAdminKey,
  type PgSchema,
  readSse,
  runUntilExit,
  STACK_FRAME
} from "../src/harness.ts"

/** The local model's answer after `count` user messages, the last one `said`. */
const localAnswer = (count: number, said: string): string =>
  `Local model (offline, not a real LLM) — ${count} user message${count === 1 ? "" : "s"} so far. You said: "${said}"`

const SessionEvent = Schema.Struct({ session_id: Schema.String })
const Delta = Schema.Struct({ content: Schema.String })

/** Asserts `answer` is the error envelope with `status` (and `type`), its request id echoed in the header. */
const assertError = (answer: Answer, status: number, type?: string): ErrorEnvelope => {
  assert.strictEqual(answer.status, status, answer.text)
  const envelope = decode(ErrorEnvelope, answer.json)
  if (type !== undefined) assert.strictEqual(envelope.error.type, type, answer.text)
  const requestId = answer.headers.get("x-request-id")
  assert.isNotNull(requestId)
  assert.isNotEmpty(envelope.error.request_id)
  assert.strictEqual(envelope.error.request_id, requestId)
  assert.notMatch(answer.text, STACK_FRAME, "no stack trace in the body")
  assert.notInclude(answer.text, "Error:", "no error class text in the body")
  return envelope
}

const assertOk = (answer: Answer): void => assert.strictEqual(answer.status, 200, answer.text)

const turn = (answer: Answer): SessionProtocol.TurnResult => {
  assertOk(answer)
  return decode(SessionProtocol.TurnResult, answer.json)
}

const backends = [
  { name: "embedded SQLite", postgres: false },
  { name: "PostgreSQL", postgres: true }
] as const

describe.each(backends)("chat on $name", ({ postgres }) => {
  let gateway: Gateway
  let schema: PgSchema | undefined
  let sessionId = ""

  beforeAll(async () => {
    schema = postgres ? await createPgSchema() : undefined
    gateway = await Gateway.start(schema === undefined ? {} : { postgresUrl: schema.url })
  })

  afterAll(async () => {
    await gateway?.dispose()
    await schema?.drop()
  })

  it("keeps its data where it was told to: the data directory, or the schema of the URL's search_path", async () => {
    const tables = schema === undefined ? [] : await schema.tables()
    // POLYAGENT_DATA_DIR is ignored when POSTGRES_URL is set.
    assert.strictEqual(existsSync(join(gateway.dataDir, "polyagent.db")), !postgres)
    assert.includeMembers([...tables], postgres ? ["api_keys", "messages", "sessions"] : [])
  })

  it("answers two turns on one session with the whole conversation", async () => {
    const first = turn(await gateway.post("/v1/chat", { message: "hello there" }))
    sessionId = first.session_id
    assert.match(sessionId, /^[A-Za-z0-9_-]{1,128}$/)
    assert.strictEqual(first.message.content, localAnswer(1, "hello there"))

    const second = turn(await gateway.post("/v1/chat", { message: "what is 2+2?", session_id: sessionId }))
    assert.strictEqual(second.session_id, sessionId)
    assert.strictEqual(second.message.role, "assistant")
    assert.include(second.message.content, "2 user messages")
    assert.include(second.message.content, 'You said: "what is 2+2?"')
    assert.strictEqual(second.message.content, localAnswer(2, "what is 2+2?"))
    assert.strictEqual(second.model, "local")
    assert.strictEqual(second.provider, "local")
    assert.deepStrictEqual(second.tool_calls, [])
    assert.isAbove(second.usage.prompt_tokens, first.usage.prompt_tokens, "the prompt holds the whole conversation")
    assert.isAbove(second.usage.completion_tokens, 0)
    assert.strictEqual(second.usage.total_tokens, second.usage.prompt_tokens + second.usage.completion_tokens)
    assert.strictEqual(second.cost_usd, 0)
  })

  it("streams a turn on the same session: session, deltas, usage, done", async () => {
    const response = await gateway.stream("/v1/chat/stream", { message: "stream please", session_id: sessionId })
    assert.strictEqual(response.status, 200)
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/)
    assert.isNotNull(response.headers.get("x-request-id"))
    const events = await readSse(response)
    const names = events.map((event) => event.event)

    assert.strictEqual(names[0], "session")
    const deltaCount = names.filter((name) => name === "delta").length
    assert.isAtLeast(deltaCount, 3)
    assert.deepStrictEqual(names, ["session", ...Array<string>(deltaCount).fill("delta"), "usage", "done"])

    assert.strictEqual(decode(SessionEvent, events[0]?.data).session_id, sessionId)
    const deltas = events.filter((event) => event.event === "delta").map((event) => decode(Delta, event.data).content)
    const usage = decode(Usage.Usage, events.at(-2)?.data)
    const done = decode(SessionProtocol.TurnResult, events.at(-1)?.data)
    assert.strictEqual(deltas.join(""), done.message.content)
    assert.strictEqual(done.message.content, localAnswer(3, "stream please"))
    assert.strictEqual(done.session_id, sessionId)
    assert.deepStrictEqual(usage, done.usage)
    assert.strictEqual(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens)
  })

  it("keeps every message across a restart and continues the conversation", async () => {
    const exited = await gateway.restart()
    // It ends by itself (not SIGKILLed after 10 s), and a signalled shutdown is a clean one.
    assert.isNull(exited?.signal, `SIGTERM should end the server by itself:\n${exited?.stderr}`)
    assert.strictEqual(exited?.code, 0)
    assert.notMatch(exited?.stderr ?? "", STACK_FRAME)

    const answer = await gateway.get(`/v1/sessions/${sessionId}`)
    assertOk(answer)
    const session = decode(Session.Session, answer.json)
    assert.strictEqual(session.id, sessionId)
    assert.deepStrictEqual(
      session.messages.map((message) => [message.seq, message.role, message.content]),
      [
        [1, "user", "hello there"],
        [2, "assistant", localAnswer(1, "hello there")],
        [3, "user", "what is 2+2?"],
        [4, "assistant", localAnswer(2, "what is 2+2?")],
        [5, "user", "stream please"],
        [6, "assistant", localAnswer(3, "stream please")]
      ]
    )
    for (const message of session.messages) {
      assert.strictEqual(message.model, message.role === "assistant" ? "local" : null)
      assert.strictEqual(message.provider, message.role === "assistant" ? "local" : null)
    }

    const fourth = turn(await gateway.post("/v1/chat", { message: "still there?", session_id: sessionId }))
    assert.include(fourth.message.content, "4 user messages")
    assert.strictEqual(fourth.message.content, localAnswer(4, "still there?"))
  })

  it("runs 50 concurrent turns on one session one after another, and 200 new sessions at once", async () => {
    const seed = turn(await gateway.post("/v1/chat", { message: "seed" }))
    const shared = seed.session_id
    const sharedMessages = Array.from({ length: 50 }, (_, i) => `concurrent #${i}`)
    const soloMessages = Array.from({ length: 200 }, (_, i) => `solo #${i}`)

    const [sharedAnswers, soloAnswers] = await Promise.all([
      Promise.all(sharedMessages.map((message) => gateway.post("/v1/chat", { message, session_id: shared }))),
      Promise.all(soloMessages.map((message) => gateway.post("/v1/chat", { message })))
    ])

    const failed = [...sharedAnswers, ...soloAnswers].filter((answer) => answer.status !== 200)
    assert.deepStrictEqual(
      failed.map((answer) => `${answer.status} ${answer.text}`).slice(0, 5),
      [],
      `${failed.length} of 250 turns failed`
    )

    const solo = soloAnswers.map(turn)
    assert.deepStrictEqual(
      solo.map((result) => result.message.content),
      soloMessages.map((message) => localAnswer(1, message))
    )
    assert.strictEqual(new Set(solo.map((result) => result.session_id)).size, 200)

    const answer = await gateway.get(`/v1/sessions/${shared}`)
    assertOk(answer)
    const messages = decode(Session.Session, answer.json).messages
    assert.strictEqual(messages.length, 102)
    assert.deepStrictEqual(
      messages.map((message) => message.seq),
      Array.from({ length: 102 }, (_, i) => i + 1)
    )
    // Stored one turn after another: user, assistant, user, assistant…; the k-th assistant saw k user messages.
    for (let i = 0; i < messages.length; i += 2) {
      const user = messages[i]
      const assistant = messages[i + 1]
      assert.strictEqual(user?.role, "user", `message ${i + 1}`)
      assert.strictEqual(assistant?.role, "assistant", `message ${i + 2}`)
      assert.strictEqual(assistant?.content, localAnswer(i / 2 + 1, user?.content ?? ""), `turn ${i / 2 + 1}`)
    }
    const asked = messages.slice(2).flatMap((message) => (message.role === "user" ? [message.content] : []))
    assert.sameMembers(asked, sharedMessages, "every concurrent message is stored exactly once")
    assert.strictEqual(asked.length, 50)
    // Each caller got the answer to its own message.
    sharedAnswers.forEach((answered, i) => {
      assert.include(turn(answered).message.content, `You said: "${sharedMessages[i]}"`)
    })
  })

  it("answers bad input with the error envelope, status and request id, and stays healthy", async () => {
    const chat = (body: unknown, options?: Parameters<Gateway["post"]>[2]) => gateway.post("/v1/chat", body, options)

    assertError(await chat("{not json"), 400, "invalid_request")
    const wrongType = assertError(await chat({ message: 5 }), 400, "invalid_request")
    assert.include(wrongType.error.message, "message")
    const missing = assertError(await chat({}), 400, "invalid_request")
    assert.include(missing.error.message, "message")
    assertError(await chat({ message: "" }), 400, "invalid_request")
    assertError(await gateway.get("/v1/no-such-route"), 404, "not_found")

    const wrongMethod = await gateway.request("PUT", "/v1/chat", "{}", {
      headers: { "content-type": "application/json" }
    })
    assertError(wrongMethod, 405)
    assert.strictEqual(wrongMethod.headers.get("allow"), "POST")

    const overLimit = JSON.stringify({ message: "x".repeat(1_100_000) })
    assertError(await chat(overLimit), 413, "payload_too_large")
    const chunks = new TextEncoder().encode(overLimit)
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let offset = 0; offset < chunks.length; offset += 64 * 1024) {
          controller.enqueue(chunks.slice(offset, offset + 64 * 1024))
        }
        controller.close()
      }
    })
    assertError(
      await gateway.request("POST", "/v1/chat", chunked, { headers: { "content-type": "application/json" } }),
      413,
      "payload_too_large"
    )

    assertError(await chat({ message: "hi", session_id: "sess_doesnotexist0000000000" }), 404, "not_found")
    assertError(await chat({ message: "hi", model: "no-such-model" }), 404, "not_found")
    assertError(await chat({ message: "hi" }, { token: null }), 401, "unauthenticated")
    assertError(await chat({ message: "hi" }, { token: newAdminKey() }), 401, "unauthenticated")
    assertError(await gateway.get("/v1/sessions/does-not-exist"), 404, "not_found")

    const echoedOk = await gateway.get("/v1/models", { headers: { "x-request-id": "my-id-123" } })
    assertOk(echoedOk)
    assert.strictEqual(echoedOk.headers.get("x-request-id"), "my-id-123")
    const echoedError = assertError(
      await chat({ message: 5 }, { headers: { "x-request-id": "my-id-123" } }),
      400,
      "invalid_request"
    )
    assert.strictEqual(echoedError.error.request_id, "my-id-123")
    // Also where the edge and the authentication answer, before any handler runs.
    const sent = { headers: { "x-request-id": "my-id-123" } }
    for (const answer of [
      await gateway.get("/v1/no-such-route", sent),
      await gateway.get("/v1/models", { ...sent, token: null }),
      await chat(overLimit, sent)
    ]) {
      assert.strictEqual(assertError(answer, answer.status).error.request_id, "my-id-123", answer.text)
    }

    assertError(
      await gateway.request("POST", "/v1/chat", JSON.stringify({ message: "hi" }), {
        headers: { "content-type": "text/plain" }
      }),
      400,
      "invalid_request"
    )

    assertOk(await gateway.get("/v1/health", { token: null }))
  })

  it("refuses to start with an invalid configuration, naming the setting, without a stack", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "polyagent-e2e-bad-"))
    try {
      const exited = await runUntilExit({
        GATEWAY_PORT: "abc",
        POLYAGENT_DATA_DIR: dataDir,
        ...(schema === undefined ? {} : { POSTGRES_URL: schema.url })
      })
      assert.notStrictEqual(exited.code, 0)
      assert.isNull(exited.signal)
      assert.include(exited.stderr, "GATEWAY_PORT")
      assert.notMatch(exited.stdout + exited.stderr, STACK_FRAME)
    } finally {
      await rm(dataDir, { recursive: true, force: true })
    }
  })
})
