/**
 * HTTPS and HTTP/2 with `server.tls`, over real sockets and a self-signed certificate made here
 * with openssl: health and completions over HTTPS/1.1 (the fast lane's protocol), a completion
 * over HTTP/2 negotiated by ALPN (the stack's), with the same body shape and `X-Request-Id`;
 * Node's client errors (431) answered with the envelope over TLS; 503 over HTTP/2 and HTTPS/1.1
 * while storage is unreachable (before the stack attaches); plain HTTP to the TLS port fails; a certificate path that does not exist stops start-up
 * naming `server.tls.cert`.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { connect as connectHttp2 } from "node:http2"
import { request as httpsRequest } from "node:https"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort, Gateway, newAdminKey, runUntilExit } from "../src/harness.ts"

interface Reply {
  readonly status: number
  readonly requestId: string | undefined
  readonly json: unknown
  readonly protocol: string
}

const completion = JSON.stringify({ model: "local", messages: [{ role: "user", content: "hi" }] })

/** A request over HTTPS/1.1 trusting `ca`. */
const overHttps1 = (
  url: string,
  ca: string,
  method: string,
  token: string,
  body?: string,
  extra: Record<string, string> = {}
) =>
  new Promise<Reply>((resolve, reject) => {
    const request = httpsRequest(
      url,
      {
        method,
        ca,
        headers: {
          authorization: `Bearer ${token}`,
          ...extra,
          ...(body === undefined
            ? {}
            : { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
        }
      },
      (response) => {
        let text = ""
        response.setEncoding("utf8").on("data", (chunk: string) => (text += chunk))
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            requestId: [response.headers["x-request-id"]].flat()[0],
            json: JSON.parse(text),
            protocol: `HTTP/${response.httpVersion}`
          })
        )
      }
    )
    request.on("error", reject)
    request.end(body)
  })

/** A request over HTTP/2 (ALPN `h2`) trusting `ca`; a POST when there is a body. */
const overHttp2 = (url: string, ca: string, path: string, token: string, body?: string) =>
  new Promise<Reply>((resolve, reject) => {
    const session = connectHttp2(url, { ca })
    session.on("error", reject)
    // A stream nobody answers fails the test here rather than at the test's timeout.
    session.setTimeout(10_000, () => session.destroy(new Error("no answer within 10 s")))
    const stream = session.request({
      ":method": body === undefined ? "GET" : "POST",
      ":path": path,
      authorization: `Bearer ${token}`,
      "content-type": "application/json"
    })
    let text = ""
    let status = 0
    let requestId: string | undefined
    stream.on("response", (headers) => {
      status = Number(headers[":status"])
      requestId = [headers["x-request-id"]].flat()[0]
    })
    stream.setEncoding("utf8").on("data", (chunk: string) => (text += chunk))
    stream.on("end", () => {
      session.close()
      resolve({
        status,
        requestId,
        json: JSON.parse(text),
        protocol: `HTTP/${session.alpnProtocol === "h2" ? "2" : "?"}`
      })
    })
    stream.on("error", reject)
    stream.end(body)
  })

/** The top-level keys of a completion, to compare shapes. */
const shape = (json: unknown) => Object.keys(json as object).sort()

describe("TLS", () => {
  let dir = ""
  let ca = ""
  let gateway: Gateway

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "polyagent-tls-"))
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-days",
        "1",
        "-subj",
        "/CN=localhost"
      ],
      { cwd: dir, stdio: "ignore" }
    )
    ca = readFileSync(join(dir, "cert.pem"), "utf8")
    gateway = await Gateway.start({
      ca,
      config: `server:\n  tls:\n    cert: ${join(dir, "cert.pem")}\n    key: ${join(dir, "key.pem")}\n`
    })
  })

  afterAll(async () => {
    await gateway.dispose()
    await rm(dir, { recursive: true, force: true })
  })

  it("serves health and completions over HTTPS/1.1, and completions over HTTP/2", async () => {
    assert.match(gateway.url, /^https:/)
    const health = await overHttps1(`${gateway.url}/v1/health`, ca, "GET", gateway.adminKey)
    assert.strictEqual(health.status, 200)
    assert.strictEqual(health.protocol, "HTTP/1.1")

    // The first one verifies the key on the stack; the second one takes the fast lane.
    const replies: Array<Reply> = []
    for (let i = 0; i < 2; i++) {
      replies.push(await overHttps1(`${gateway.url}/v1/chat/completions`, ca, "POST", gateway.adminKey, completion))
    }
    for (const reply of replies) {
      assert.strictEqual(reply.status, 200)
      assert.strictEqual(reply.protocol, "HTTP/1.1")
      assert.match(reply.requestId ?? "", /^req_/)
    }

    const h2 = await overHttp2(gateway.url, ca, "/v1/chat/completions", gateway.adminKey, completion)
    assert.strictEqual(h2.status, 200)
    assert.strictEqual(h2.protocol, "HTTP/2")
    assert.match(h2.requestId ?? "", /^req_/)
    assert.deepStrictEqual(shape(h2.json), shape(replies[1]?.json))
    assert.strictEqual((h2.json as { object?: unknown }).object, "chat.completion")
  })

  it("logs listen=https:// in the start-up summary", () => {
    assert.match(gateway.output.stdout, /listen=https:\/\/127\.0\.0\.1:\d+/)
  })

  it("refuses plain HTTP on the TLS port", async () => {
    const plain = gateway.url.replace(/^https:/, "http:")
    const outcome = await fetch(`${plain}/v1/health`, { signal: AbortSignal.timeout(5_000) }).then(
      (response) => response.status,
      () => "failed"
    )
    assert.strictEqual(outcome, "failed")
  })

  it("answers a head over server.max_header_size 431 with the envelope over HTTPS/1.1", async () => {
    const big = await overHttps1(`${gateway.url}/v1/health`, ca, "GET", gateway.adminKey, undefined, {
      "x-filler": "a".repeat(64 * 1024)
    })
    assert.strictEqual(big.status, 431)
    assert.strictEqual((big.json as { error?: { type?: unknown } }).error?.type, "invalid_request")
    assert.match(big.requestId ?? "", /^req_/)
  })

  it("answers 503 over HTTP/2 and HTTPS/1.1 while storage is unreachable", async () => {
    const down = await Gateway.start({
      ca,
      until: "listening",
      postgresUrl: `postgres://postgres@127.0.0.1:${await freePort()}/test`,
      config: `server:\n  tls:\n    cert: ${join(dir, "cert.pem")}\n    key: ${join(dir, "key.pem")}\n`
    })
    try {
      const health = await overHttp2(down.url, ca, "/v1/health", down.adminKey)
      assert.strictEqual(health.status, 503)
      assert.strictEqual(health.protocol, "HTTP/2")
      assert.strictEqual((health.json as { status?: unknown }).status, "down")
      const h2 = await overHttp2(down.url, ca, "/v1/chat/completions", down.adminKey, completion)
      assert.strictEqual(h2.status, 503)
      assert.strictEqual((h2.json as { error?: { type?: unknown } }).error?.type, "unavailable")
      assert.match(h2.requestId ?? "", /^req_/)
      const h1 = await overHttps1(`${down.url}/v1/chat/completions`, ca, "POST", down.adminKey, completion)
      assert.strictEqual(h1.status, 503)
      assert.strictEqual(h1.protocol, "HTTP/1.1")
    } finally {
      await down.dispose()
    }
  })

  it("stops start-up naming server.tls.cert when the certificate cannot be read", async () => {
    const configDir = await mkdtemp(join(tmpdir(), "polyagent-tls-bad-"))
    try {
      const configPath = join(configDir, "polyagent.yaml")
      execFileSync("sh", [
        "-c",
        `printf 'server:\\n  tls:\\n    cert: ${join(dir, "missing.pem")}\\n    key: ${join(dir, "key.pem")}\\n' > ${configPath}`
      ])
      const exited = await runUntilExit({
        POLYAGENT_CONFIG: configPath,
        POLYAGENT_DATA_DIR: configDir,
        POLYAGENT_ADMIN_KEY: newAdminKey(),
        GATEWAY_PORT: "0"
      })
      assert.strictEqual(exited.code, 1)
      assert.match(exited.stderr, /server\.tls\.cert: cannot read .*missing\.pem/)
    } finally {
      await rm(configDir, { recursive: true, force: true })
    }
  })

  it("stops on SIGTERM with exit 0 after serving HTTP/2 and HTTPS/1.1", async () => {
    await overHttp2(gateway.url, ca, "/v1/health", gateway.adminKey)
    const exited = await gateway.stop()
    assert.strictEqual(exited?.code, 0)
    assert.match(exited?.stdout ?? "", /PolyAgent stopped/)
  })
})
