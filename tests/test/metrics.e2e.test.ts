/**
 * `GET /metrics` over a real socket: Prometheus text counting the requests the server answered
 * (the fast lane's and the stack's alike), behind a bearer token unless `metrics.public: true`.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { decode, ErrorEnvelope, Gateway } from "../src/harness.ts"

/** The value of the sample of `name` whose labels include every one of `labels`, if any. */
const sample = (text: string, name: string, labels: Readonly<Record<string, string>>): number | undefined => {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue
    const wanted = Object.entries(labels).every(([label, value]) => line.includes(`${label}="${value}"`))
    if (wanted) return Number(line.slice(line.lastIndexOf(" ") + 1))
  }
  return undefined
}

describe("metrics", () => {
  let gateway: Gateway
  beforeAll(async () => {
    gateway = await Gateway.start()
  }, 60_000)
  afterAll(() => gateway?.dispose())

  it("needs a token, and counts the requests of the lane and of the stack by route and status", async () => {
    const refused = await gateway.get("/metrics", { token: null })
    assert.strictEqual(refused.status, 401)
    assert.strictEqual(decode(ErrorEnvelope, refused.json).error.type, "unauthenticated")
    assert.strictEqual((await gateway.get("/metrics", { token: "pa_not_a_key_of_this_server_000000" })).status, 401)

    for (let i = 0; i < 3; i++) {
      assert.strictEqual((await gateway.post("/v1/chat", { message: "hello" })).status, 200)
      const completion = { model: "local", messages: [{ role: "user", content: "hi" }] }
      assert.strictEqual((await gateway.post("/v1/chat/completions", completion)).status, 200)
    }
    assert.strictEqual((await gateway.get("/v1/sessions/sess_missing")).status, 404)

    const scraped = await gateway.get("/metrics")
    assert.strictEqual(scraped.status, 200)
    assert.match(scraped.headers.get("content-type") ?? "", /^text\/plain/)
    const text = scraped.text
    const chats = sample(text, "polyagent_http_requests_total", { route: "/v1/chat", status: "200" })
    assert.strictEqual(chats, 3)
    const completions = sample(text, "polyagent_http_requests_total", { route: "/v1/chat/completions", status: "200" })
    assert.strictEqual(completions, 3)
    assert.strictEqual(sample(text, "polyagent_http_requests_total", { route: "/v1/sessions/:id", status: "404" }), 1)
    assert.isAtLeast(sample(text, "polyagent_http_request_duration_seconds_count", { route: "/v1/chat" }) ?? 0, 3)
    assert.isAbove(sample(text, "polyagent_tokens_total", { model: "local", type: "completion" }) ?? 0, 0)
    // One series per route, never a tenant, a key or a request id.
    assert.notInclude(text, "req_")
    assert.notInclude(text, gateway.adminKey)
    assert.notInclude(text, 'tenant="')
  })

  it("is open to anyone with metrics.public", async () => {
    const open = await Gateway.start({ config: "metrics:\n  public: true\n" })
    try {
      const scraped = await open.get("/metrics", { token: null })
      assert.strictEqual(scraped.status, 200)
      assert.include(scraped.text, "# TYPE")
    } finally {
      await open.dispose()
    }
  }, 60_000)
})
