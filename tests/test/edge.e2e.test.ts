/**
 * The edge's hardening over a real socket: CORS preflights and headers from `cors.origins`, a
 * 64 KB header answered 431 with the envelope and a request id (not a reset socket), a slow
 * client cut with 408, and JSON bodies refused before parsing — invalid UTF-8, nesting deeper
 * than 32, a lone surrogate — on the stack's `/v1/chat` and on the fast lane's
 * `/v1/chat/completions` alike (32 levels still pass on both).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { connect } from "node:net"
import { decode, ErrorEnvelope, Gateway } from "../src/harness.ts"

const ALLOWED = "https://app.example.com"

/** Writes `request` on a new connection; answers everything the server sent until it closed (or `timeoutMs`). */
const raw = (port: number, request: string | Buffer, timeoutMs = 5000) =>
  new Promise<string>((resolve, reject) => {
    const socket = connect(port, "127.0.0.1")
    let received = ""
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => {
      received += chunk
    })
    socket.on("error", reject)
    socket.on("close", () => resolve(received))
    socket.setTimeout(timeoutMs, () => socket.destroy())
    socket.write(request)
  })

/** The status, headers and JSON body of a raw HTTP/1.1 answer. */
const parseRaw = (text: string) => {
  const [head = "", body = ""] = text.split("\r\n\r\n", 2)
  const [statusLine = "", ...lines] = head.split("\r\n")
  const headers = new Map(
    lines.map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()])
  )
  return { status: Number(statusLine.split(" ")[1]), headers, json: JSON.parse(body) as unknown }
}

/** A JSON value nested `depth` levels deep (objects and arrays count; the value itself is depth 1). */
const nested = (depth: number): unknown => {
  let value: unknown = "leaf"
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { a: value } : [value]
  return value
}

describe("edge hardening", () => {
  let gateway: Gateway
  let port = 0

  beforeAll(async () => {
    gateway = await Gateway.start({
      config: `cors:\n  origins: ["${ALLOWED}"]\nserver:\n  headers_timeout: 1s\n  receive_timeout: 2s\n`
    })
    port = Number(new URL(gateway.url).port)
    // The key is verified once by the stack; from now on completions take the fast lane.
    const warm = await gateway.post("/v1/chat/completions", {
      model: "local",
      messages: [{ role: "user", content: "hi" }]
    })
    assert.strictEqual(warm.status, 200)
  }, 60_000)
  afterAll(() => gateway?.dispose())

  it("answers a CORS preflight from an allowed origin, and refuses another", async () => {
    const preflight = (origin: string) =>
      gateway.request("OPTIONS", "/v1/chat/completions", undefined, {
        token: null,
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type"
        }
      })
    const allowed = await preflight(ALLOWED)
    assert.strictEqual(allowed.status, 204)
    assert.strictEqual(allowed.headers.get("access-control-allow-origin"), ALLOWED)
    assert.include(allowed.headers.get("access-control-allow-methods") ?? "", "POST")
    assert.strictEqual(allowed.headers.get("access-control-allow-headers"), "authorization, content-type")
    assert.strictEqual(allowed.headers.get("access-control-max-age"), "600")
    const other = await preflight("https://evil.example.com")
    assert.strictEqual(other.status, 403)
    assert.strictEqual(decode(ErrorEnvelope, other.json).error.type, "forbidden")
    assert.isNull(other.headers.get("access-control-allow-origin"))
    // Not a preflight: OPTIONS stays a wrong method.
    assert.strictEqual((await gateway.request("OPTIONS", "/v1/models")).status, 405)
  })

  it("adds CORS headers to actual answers for an allowed origin only, on the stack and on the lane", async () => {
    for (const send of [
      (origin: string) => gateway.get("/v1/models", { headers: { origin } }),
      (origin: string) =>
        gateway.post(
          "/v1/chat/completions",
          { model: "local", messages: [{ role: "user", content: "hi" }] },
          { headers: { origin } }
        )
    ]) {
      const allowed = await send(ALLOWED)
      assert.strictEqual(allowed.status, 200)
      assert.strictEqual(allowed.headers.get("access-control-allow-origin"), ALLOWED)
      assert.strictEqual(allowed.headers.get("vary"), "Origin")
      assert.include(allowed.headers.get("access-control-expose-headers") ?? "", "X-Request-Id")
      assert.include(allowed.headers.get("access-control-expose-headers") ?? "", "X-RateLimit-Remaining")
      const other = await send("https://evil.example.com")
      assert.strictEqual(other.status, 200)
      assert.isNull(other.headers.get("access-control-allow-origin"))
    }
  })

  it("answers a 64 KB header with 431, the envelope and a request id", async () => {
    const answer = parseRaw(
      await raw(port, `GET /v1/models HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(64 * 1024)}\r\n\r\n`)
    )
    assert.strictEqual(answer.status, 431)
    const envelope = decode(ErrorEnvelope, answer.json)
    assert.strictEqual(envelope.error.type, "invalid_request")
    assert.match(answer.headers.get("x-request-id") ?? "", /^req_/)
    assert.strictEqual(envelope.error.request_id, answer.headers.get("x-request-id"))
    // The server is fine afterwards.
    assert.strictEqual((await gateway.get("/v1/health")).status, 200)
  })

  it("cuts a client whose headers do not arrive in time with 408 and the envelope", async () => {
    const started = Date.now()
    const answer = parseRaw(await raw(port, "GET /v1/models HTTP/1.1\r\nhost: x\r\nx-slow: 1", 10_000))
    assert.strictEqual(answer.status, 408)
    assert.strictEqual(decode(ErrorEnvelope, answer.json).error.type, "invalid_request")
    assert.isBelow(Date.now() - started, 4000)
  })

  const bad: ReadonlyArray<readonly [string, (route: string) => Uint8Array | string, RegExp]> = [
    [
      "invalid UTF-8",
      (route) => {
        const text =
          route === "/v1/chat"
            ? '{"message":"caf\u0000"}'
            : '{"model":"local","messages":[{"role":"user","content":"caf\u0000"}]}'
        const bytes = Buffer.from(text)
        bytes[bytes.indexOf(0)] = 0xe9 // Latin-1 é: not UTF-8
        return bytes
      },
      /UTF-8/
    ],
    [
      "a 33-deep body",
      (route) =>
        JSON.stringify(
          route === "/v1/chat"
            ? { message: "hi", metadata: nested(32) }
            : { model: "local", messages: [{ role: "user", content: "hi" }], extra: nested(32) }
        ),
      /deeper than 32/
    ],
    [
      "a lone surrogate",
      (route) =>
        route === "/v1/chat"
          ? '{"message":"a\\ud800b"}'
          : '{"model":"local","messages":[{"role":"user","content":"a\\ud800b"}]}',
      /lone surrogate/
    ]
  ]

  for (const route of ["/v1/chat", "/v1/chat/completions"]) {
    for (const [name, body, message] of bad) {
      it(`refuses ${name} on ${route} with 400`, async () => {
        const answer = await gateway.request("POST", route, body(route), {
          headers: { "content-type": "application/json" }
        })
        assert.strictEqual(answer.status, 400)
        const envelope = decode(ErrorEnvelope, answer.json)
        assert.strictEqual(envelope.error.type, "invalid_request")
        assert.match(envelope.error.message, message)
        assert.strictEqual(envelope.error.request_id, answer.headers.get("x-request-id"))
      })
    }

    it(`accepts 32 levels and a surrogate pair on ${route}`, async () => {
      const body =
        route === "/v1/chat"
          ? { message: "hi \ud83d\ude00", metadata: nested(31) }
          : { model: "local", messages: [{ role: "user", content: "hi \ud83d\ude00" }], extra: nested(31) }
      // JSON.stringify keeps the pair as characters: escape it as clients may.
      const text = JSON.stringify(body).replace("\ud83d\ude00", "\\ud83d\\ude00")
      const answer = await gateway.post(route, text)
      assert.strictEqual(answer.status, 200, answer.text)
    })
  }
})
