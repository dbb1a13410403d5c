/**
 * The fast lane is an optimisation, not a second stack: the same requests to a server with the
 * lane and to one without it (`server.fast_lane: false`) get the same statuses, headers (rate
 * limits and CORS included; only `date` and request ids differ) and bodies (but for generated
 * ids and times). The sequence covers a good completion, malformed JSON, a 33-deep body, an
 * unknown model, a missing key (401), a CORS origin, and the rate limit running out (429).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type Answer, Gateway, newAdminKey } from "../src/harness.ts"

const ALLOWED = "https://app.example.com"
const good = { model: "local", messages: [{ role: "user", content: "hi" }] }

const config = (fastLane: boolean) =>
  [
    "server:",
    `  fast_lane: ${fastLane}`,
    "rate_limit:",
    "  enabled: true",
    "  requests_per_minute: 1",
    "  burst: 10",
    "cors:",
    `  origins: ["${ALLOWED}"]`,
    ""
  ].join("\n")

const deep = (): string => {
  let value: unknown = "leaf"
  for (let i = 0; i < 32; i++) value = { a: value }
  return JSON.stringify({ ...good, extra: value })
}

/** The sequence; each step is sent to both servers in turn. */
const steps: ReadonlyArray<readonly [string, (gateway: Gateway) => Promise<Answer>]> = [
  ["good", (g) => g.post("/v1/chat/completions", good)],
  ["good, again", (g) => g.post("/v1/chat/completions", good)],
  ["malformed JSON", (g) => g.post("/v1/chat/completions", '{"model": "local", "messages": [')],
  ["33 deep", (g) => g.post("/v1/chat/completions", deep())],
  ["unknown model", (g) => g.post("/v1/chat/completions", { ...good, model: "no-such-model" })],
  ["no key", (g) => g.post("/v1/chat/completions", good, { token: null })],
  ["a wrong key", (g) => g.post("/v1/chat/completions", good, { token: "pa_wrong_wrong_wrong_wrong" })],
  ["allowed origin", (g) => g.post("/v1/chat/completions", good, { headers: { origin: ALLOWED } })],
  ["other origin", (g) => g.post("/v1/chat/completions", good, { headers: { origin: "https://evil.example.com" } })],
  ["streamed", (g) => g.post("/v1/chat/completions", { ...good, stream: true })],
  ["good", (g) => g.post("/v1/chat/completions", good)],
  ["good", (g) => g.post("/v1/chat/completions", good)],
  ["over the limit", (g) => g.post("/v1/chat/completions", good)],
  [
    "over the limit, from an allowed origin",
    (g) => g.post("/v1/chat/completions", good, { headers: { origin: ALLOWED } })
  ]
]

// Retry-After counts down from each server's own bucket: compared apart, within a second.
const ignoredHeaders = new Set(["date", "x-request-id", "retry-after"])

const headersOf = (answer: Answer) =>
  Object.fromEntries([...answer.headers.entries()].filter(([name]) => !ignoredHeaders.has(name)).sort())

/** The body with what is generated per request (ids, times, request ids) blanked. */
const bodyOf = (answer: Answer): string =>
  answer.text
    .replace(/retry after \d+ s/g, "retry after … s")
    .replace(/"(id|request_id)":"[^"]*"/g, '"$1":"…"')
    .replace(/"created":\d+/g, '"created":0')
    .replace(/req_[A-Za-z0-9]+/g, "req_…")

describe("fast lane parity", () => {
  let lane: Gateway
  let stack: Gateway

  beforeAll(async () => {
    const adminKey = newAdminKey()
    ;[lane, stack] = await Promise.all([
      Gateway.start({ adminKey, config: config(true) }),
      Gateway.start({ adminKey, config: config(false) })
    ])
  }, 60_000)
  afterAll(() => Promise.all([lane?.dispose(), stack?.dispose()]))

  it("gives the same statuses, headers and bodies with and without the lane", async () => {
    const statuses: Array<number> = []
    for (const [name, send] of steps) {
      const a = await send(lane)
      const b = await send(stack)
      assert.strictEqual(a.status, b.status, `${name}: status`)
      assert.deepStrictEqual(headersOf(a), headersOf(b), `${name}: headers`)
      assert.strictEqual(bodyOf(a), bodyOf(b), `${name}: body`)
      const retryA = a.headers.get("retry-after")
      const retryB = b.headers.get("retry-after")
      assert.strictEqual(retryA === null, retryB === null, `${name}: Retry-After on both or neither`)
      if (retryA !== null) assert.isAtMost(Math.abs(Number(retryA) - Number(retryB)), 1, `${name}: Retry-After`)
      statuses.push(a.status)
    }
    // The sequence did reach what it is about: answers, 400s, 404, 401s and the limit.
    assert.deepStrictEqual(statuses, [200, 200, 400, 400, 404, 401, 401, 200, 200, 200, 200, 200, 429, 429])
  })
})
