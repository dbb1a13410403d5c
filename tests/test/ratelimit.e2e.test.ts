/**
 * Rate limits over a real socket: 150 parallel completions against a burst of 30 let exactly the
 * burst through (plus what refills while they run), with the buckets in this process and in
 * Redis; two processes on one Redis share one limit; Redis lost mid-test (a TCP proxy in front of
 * it refuses) gives the configured behaviour — open: requests pass, closed: 503 — never a 500,
 * and the outage is logged once.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import { type Answer, createPgSchema, decode, ErrorEnvelope, Gateway, newAdminKey } from "../src/harness.ts"
import { TcpProxy } from "../src/TcpProxy.ts"

const REDIS = { host: "127.0.0.1", port: 6379 }
const completion = { model: "local", messages: [{ role: "user", content: "hi" }] }

const config = (extra = "") =>
  `rate_limit:\n  enabled: true\n  requests_per_minute: 30\n  burst: 30\n  redis_prefix: "test:rl:${randomBytes(6).toString("hex")}:"\n${extra}`

/** Sends `n` completions at once; answers them and how long the burst took (ms). */
const burst = async (targets: ReadonlyArray<Gateway>, n: number) => {
  const started = performance.now()
  const answers = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      (targets[i % targets.length] as Gateway).post("/v1/chat/completions", completion)
    )
  )
  return { answers, elapsedMs: performance.now() - started }
}

/** At most this many tokens refill in `elapsedMs` at 30 a minute (one every 2 s), plus one for a partial token. */
const refillBound = (elapsedMs: number) => Math.floor((elapsedMs * 30) / 60_000) + 1

const checkBurst = ({ answers, elapsedMs }: { answers: ReadonlyArray<Answer>; elapsedMs: number }) => {
  const passed = answers.filter((a) => a.status === 200)
  const refused = answers.filter((a) => a.status === 429)
  assert.strictEqual(passed.length + refused.length, answers.length, "only 200s and 429s")
  assert.isAtLeast(passed.length, 30)
  assert.isAtMost(passed.length, 30 + refillBound(elapsedMs), `${passed.length} passed in ${elapsedMs} ms`)
  for (const answer of refused) {
    assert.strictEqual(decode(ErrorEnvelope, answer.json).error.type, "rate_limited")
    assert.isAtLeast(Number(answer.headers.get("retry-after")), 1)
    assert.strictEqual(answer.headers.get("x-ratelimit-limit"), "30")
    assert.strictEqual(answer.headers.get("x-ratelimit-remaining"), "0")
  }
  for (const answer of passed) {
    assert.strictEqual(answer.headers.get("x-ratelimit-limit"), "30")
    assert.match(answer.headers.get("x-ratelimit-remaining") ?? "", /^\d+$/)
  }
  // The remaining counts of the passes go down to 0, each once (a single bucket).
  const remaining = passed.map((a) => Number(a.headers.get("x-ratelimit-remaining"))).sort((a, b) => a - b)
  assert.strictEqual(remaining[0], 0)
}

describe("rate limits", () => {
  for (const store of ["in process", "in Redis"] as const) {
    describe(`buckets ${store}`, () => {
      let gateway: Gateway
      beforeAll(async () => {
        gateway = await Gateway.start({
          config: config(),
          env: store === "in Redis" ? { REDIS_URL: `redis://${REDIS.host}:${REDIS.port}` } : {}
        })
      }, 60_000)
      afterAll(() => gateway?.dispose())

      it("150 parallel requests against a burst of 30: the burst passes, the rest get 429", async () => {
        checkBurst(await burst([gateway], 150))
        // Other routes take from the same principal's bucket; health takes nothing.
        const models = await gateway.get("/v1/models")
        assert.strictEqual(models.status, 429)
        const health = await gateway.get("/v1/health")
        assert.strictEqual(health.status, 200)
        assert.isNull(health.headers.get("x-ratelimit-limit"))
        // A request without a valid key is 401, and counts for no principal.
        const anonymous = await gateway.post("/v1/chat/completions", completion, { token: "pa_wrong" })
        assert.strictEqual(anonymous.status, 401)
      }, 60_000)
    })
  }

  it("two processes on one Redis share one limit", async () => {
    const schema = await createPgSchema()
    const adminKey = newAdminKey()
    const shared = config()
    const env = { REDIS_URL: `redis://${REDIS.host}:${REDIS.port}` }
    const nodes = await Promise.all(
      [0, 1].map(() => Gateway.start({ postgresUrl: schema.url, adminKey, config: shared, env }))
    )
    try {
      const result = await burst(nodes, 150)
      checkBurst(result)
      // Both processes took from the one bucket: its remaining counts repeat only after a refill.
      const remaining = result.answers
        .filter((a) => a.status === 200)
        .map((a) => a.headers.get("x-ratelimit-remaining"))
      assert.isAtLeast(new Set(remaining).size, remaining.length - refillBound(result.elapsedMs))
    } finally {
      await Promise.all(nodes.map((node) => node.dispose()))
      await schema.drop()
    }
  }, 120_000)

  for (const policy of ["open", "closed"] as const) {
    it(`Redis lost mid-test, on_redis_error: ${policy}`, async () => {
      const proxy = await TcpProxy.start(REDIS)
      const gateway = await Gateway.start({
        config: config(`  on_redis_error: ${policy}\n`),
        env: { REDIS_URL: `redis://127.0.0.1:${proxy.port}` }
      })
      try {
        const before = await gateway.post("/v1/chat/completions", completion)
        assert.strictEqual(before.status, 200)
        assert.strictEqual(before.headers.get("x-ratelimit-remaining"), "29")
        await proxy.set("refuse")
        const during = await Promise.all(
          Array.from({ length: 40 }, () => gateway.post("/v1/chat/completions", completion))
        )
        const statuses = new Set(during.map((a) => a.status))
        if (policy === "open") {
          // More than the burst passes: nothing is counted while Redis is away.
          assert.deepStrictEqual([...statuses], [200])
          assert.isNull(during[0]?.headers.get("x-ratelimit-remaining"))
        } else {
          assert.deepStrictEqual([...statuses], [503])
          assert.strictEqual(decode(ErrorEnvelope, during[0]?.json).error.type, "unavailable")
          assert.strictEqual(during[0]?.headers.get("retry-after"), "1")
        }
        const outage = gateway.output.stdout.split("\n").filter((line) => line.includes("Redis is unavailable"))
        assert.strictEqual(outage.length, 1, "one log line for the outage")
        assert.include(outage[0], `on_redis_error=${policy}`)
        // Back: counted again (the bucket kept its state in Redis).
        await proxy.set("pass")
        let after: Answer | undefined
        const deadline = Date.now() + 10_000
        while (Date.now() < deadline) {
          after = await gateway.post("/v1/chat/completions", completion)
          if (after.headers.get("x-ratelimit-remaining") !== null) break
          await new Promise((resolve) => setTimeout(resolve, 200))
        }
        assert.strictEqual(after?.status, 200)
        assert.match(after?.headers.get("x-ratelimit-remaining") ?? "", /^\d+$/)
        assert.include(gateway.output.stdout, "Redis is available again")
      } finally {
        await gateway.dispose()
        await proxy.close()
      }
    }, 60_000)
  }
})
