/**
 * Turns end to end, on the embedded database and on PostgreSQL: every JSON string a client sends
 * comes back byte for byte, a retried turn with an `Idempotency-Key` is answered from storage and
 * never stored twice (also after a kill -9), and a stream that cannot start answers with a status.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Session, SessionProtocol } from "@polyagent/runtime"
import { Schema } from "effect"
import { type Answer, createPgSchema, decode, ErrorEnvelope, Gateway, type PgSchema, readSse } from "../src/harness.ts"

const turn = (answer: Answer): SessionProtocol.TurnResult => {
  assert.strictEqual(answer.status, 200, answer.text)
  return decode(SessionProtocol.TurnResult, answer.json)
}

const assertError = (answer: Answer, status: number, type: string): ErrorEnvelope => {
  assert.strictEqual(answer.status, status, answer.text)
  const envelope = decode(ErrorEnvelope, answer.json)
  assert.strictEqual(envelope.error.type, type, answer.text)
  return envelope
}

/** Every C0 control character and DEL, astral characters, and storage's own marker. */
const hardText =
  Array.from({ length: 0x20 }, (_, code) => String.fromCharCode(code)).join("") +
  "\u007f 😀 𝄞 \ufdd0 marker, and at the end an astral one 😀"

const SessionEvent = Schema.Struct({ session_id: Schema.String })
const Delta = Schema.Struct({ content: Schema.String })

const backends = [
  { name: "embedded SQLite", postgres: false },
  { name: "PostgreSQL", postgres: true }
] as const

describe.each(backends)("turns on $name", ({ postgres }) => {
  let gateway: Gateway
  let schema: PgSchema | undefined

  beforeAll(async () => {
    schema = postgres ? await createPgSchema() : undefined
    gateway = await Gateway.start(schema === undefined ? {} : { postgresUrl: schema.url })
  })

  afterAll(async () => {
    await gateway?.dispose()
    await schema?.drop()
  })

  /** A stream's status and, for a failure, its envelope's type. */
  const statusOf = async (body: unknown) => {
    const response = await gateway.stream("/v1/chat/stream", body)
    const text = await response.text()
    return { status: response.status, type: decode(ErrorEnvelope, JSON.parse(text)).error.type }
  }

  it("refuses lone surrogates with 400 (no Unicode string holds them; API.md)", async () => {
    for (const message of ["lone high \ud800 here", "lone low \udc00", "at the end a lone high \ud83d"]) {
      const answer = await gateway.post("/v1/chat", { message })
      assert.strictEqual(answer.status, 400, answer.text)
      assert.strictEqual(decode(ErrorEnvelope, answer.json).error.type, "invalid_request")
    }
  })

  it("stores every JSON string exactly: control characters, U+0000, astral characters", async () => {
    for (const message of [hardText, "\ufdd0", "\u0000", `\ufdd0${JSON.stringify(hardText)}`]) {
      const answered = turn(await gateway.post("/v1/chat", { message }))
      // The local model quotes the message: its answer holds the same characters.
      assert.include(answered.message.content, message.slice(0, 100))
      const read = await gateway.get(`/v1/sessions/${answered.session_id}`)
      assert.strictEqual(read.status, 200, read.text)
      const session = decode(Session.Session, read.json)
      assert.deepStrictEqual(
        session.messages.map((stored) => stored.content),
        [message, answered.message.content]
      )
      // Byte for byte: what the server sends is exactly JSON.stringify of what it means.
      assert.strictEqual(read.text, JSON.stringify(read.json))
    }
  })

  it("answers a retried turn with its stored answer, and stores it once", async () => {
    const first = turn(await gateway.post("/v1/chat", { message: "hello" }, { headers: { "idempotency-key": "k-0" } }))
    const sessionId = first.session_id
    const body = { message: "count this once", session_id: sessionId }
    const key = { headers: { "idempotency-key": "retry-1" } }
    const answered = await gateway.post("/v1/chat", body, key)
    const retried = await gateway.post("/v1/chat", body, key)
    assert.deepStrictEqual(turn(retried), turn(answered))
    assert.strictEqual(retried.text, answered.text)

    // A stream with the key replays the stored answer: session, the whole content, usage, done.
    const events = await readSse(await gateway.stream("/v1/chat/stream", body, key))
    assert.deepStrictEqual(
      events.map((event) => event.event),
      ["session", "delta", "usage", "done"]
    )
    assert.strictEqual(decode(SessionEvent, events[0]?.data).session_id, sessionId)
    assert.strictEqual(decode(Delta, events[1]?.data).content, turn(answered).message.content)
    assert.deepStrictEqual(decode(SessionProtocol.TurnResult, events[3]?.data), turn(answered))

    // The key with another message is a conflict.
    assertError(
      await gateway.post("/v1/chat", { message: "something else", session_id: sessionId }, key),
      409,
      "conflict"
    )

    // The key survives a kill -9: after the restart the retry is still answered from storage.
    await gateway.crashAndRestart()
    assert.deepStrictEqual(turn(await gateway.post("/v1/chat", body, key)), turn(answered))

    const session = decode(Session.Session, (await gateway.get(`/v1/sessions/${sessionId}`)).json)
    assert.deepStrictEqual(
      session.messages.map((message) => message.content),
      ["hello", first.message.content, "count this once", turn(answered).message.content]
    )
    // Without a key nothing changes: the same message is a new turn.
    turn(await gateway.post("/v1/chat", body))
    const after = decode(Session.Session, (await gateway.get(`/v1/sessions/${sessionId}`)).json)
    assert.strictEqual(after.messages.length, 6)
  })

  it("refuses an Idempotency-Key that is empty, too long or not printable ASCII", async () => {
    for (const bad of ["", "k".repeat(256), "clé"]) {
      const envelope = assertError(
        await gateway.post("/v1/chat", { message: "hi" }, { headers: { "idempotency-key": bad } }),
        400,
        "invalid_request"
      )
      assert.include(envelope.error.message.toLowerCase(), "idempotency-key")
      const stream = await gateway.stream("/v1/chat/stream", { message: "hi" }, { headers: { "idempotency-key": bad } })
      assert.strictEqual(stream.status, 400)
      await stream.body?.cancel()
    }
    turn(await gateway.post("/v1/chat", { message: "hi" }, { headers: { "idempotency-key": "k".repeat(255) } }))
  })

  it("answers a stream that cannot start with its status, before any event", async () => {
    assert.deepStrictEqual(await statusOf({ message: "hi", session_id: "sess_doesnotexist0000000000" }), {
      status: 404,
      type: "not_found"
    })
    assert.deepStrictEqual(await statusOf({ message: "hi", model: "no-such-model" }), {
      status: 404,
      type: "not_found"
    })
    assert.deepStrictEqual(await statusOf({ message: "hi", agent_id: "agent_doesnotexist" }), {
      status: 404,
      type: "not_found"
    })
  })
})
