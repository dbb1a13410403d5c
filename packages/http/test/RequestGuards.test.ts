/**
 * RequestGuards: request signatures (a good one passes; unsigned, bad, stale, future and replayed
 * ones are refused, on the TestClock) and IP allow-lists (per key and per tenant, through a trusted
 * proxy only, refusals audited at most once a minute per key and address).
 */
import { assert, describe, it } from "@effect/vitest"
import { Audit, AppConfig, IpAllowList, KeyGuards, SeenSignatures } from "@polyagent/runtime"
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import { TestClock } from "effect/testing"
import * as ApiError from "../src/ApiError.ts"
import * as RequestGuards from "../src/RequestGuards.ts"

const secret = "pas_test_secret"
const guardsOf: Record<string, KeyGuards.Guard> = {
  signed: { signingSecret: Redacted.make(secret), allowedIps: undefined },
  walled: { signingSecret: undefined, allowedIps: IpAllowList.make(["10.0.0.0/8", "2001:db8::/32"]) }
}
const keyGuards = Layer.succeed(
  KeyGuards.KeyGuards,
  KeyGuards.KeyGuards.of({
    create: () => Effect.void,
    get: (keyId) => Effect.succeed(guardsOf[keyId]),
    allowedIpsOf: () => Effect.succeed(undefined),
    forget: () => undefined
  })
)

const settings = Effect.map(
  AppConfig.make({
    server: { trustedProxies: ["127.0.0.1"] },
    security: { tenants: { fenced: { allowedIps: ["192.0.2.0/24"] } } }
  }),
  (config) => ({ security: config.security, trustedProxies: config.server.trustedProxies })
)

const layer = Layer.unwrap(Effect.map(Effect.orDie(settings), RequestGuards.layer)).pipe(
  Layer.provideMerge(Layer.mergeAll(keyGuards, SeenSignatures.layerMemory(), Audit.layerMemory()))
)

const request = (overrides: Partial<RequestGuards.Request> & { readonly text?: string }): RequestGuards.Request => ({
  tenant: "default",
  keyId: "signed",
  headers: {},
  remoteAddress: "127.0.0.1",
  body: Effect.succeed(new TextEncoder().encode(overrides.text ?? "{}")),
  ...overrides
})

const signedHeaders = (timestamp: number, body = "{}") => ({
  "x-polyagent-timestamp": String(timestamp),
  "x-polyagent-signature": RequestGuards.sign(secret, String(timestamp), body)
})

/** How `check` answers: "ok" or the error type and message. */
const outcome = (input: RequestGuards.Request) =>
  Effect.flatMap(RequestGuards.RequestGuards, (guards) => guards.check(input)).pipe(
    Effect.as("ok"),
    Effect.catch((error) => Effect.succeed(`${error.error.type}: ${error.error.message}`)),
    Effect.provideService(ApiError.RequestId, "req_test")
  )

const seconds = Effect.map(
  Effect.clockWith((clock) => Effect.succeed(clock.currentTimeMillisUnsafe())),
  (ms) => Math.floor(ms / 1000)
)

describe("RequestGuards", () => {
  it.effect("serves a good signature once, and refuses its replay", () =>
    Effect.gen(function* () {
      yield* TestClock.adjust(Duration.hours(1))
      const now = yield* seconds
      const signed = request({ headers: signedHeaders(now) })
      assert.strictEqual(yield* outcome(signed), "ok")
      assert.match(yield* outcome(signed), /^unauthenticated: .*already received/)
      // Another body, signed: a new signature.
      assert.strictEqual(yield* outcome(request({ text: "[1]", headers: signedHeaders(now, "[1]") })), "ok")
    }).pipe(Effect.provide(layer))
  )

  it.effect("refuses unsigned, badly signed, stale and future requests", () =>
    Effect.gen(function* () {
      yield* TestClock.adjust(Duration.hours(1))
      const now = yield* seconds
      assert.match(yield* outcome(request({})), /^unauthenticated: .*must be signed/)
      assert.match(yield* outcome(request({ text: "{ }", headers: signedHeaders(now) })), /does not match/)
      assert.match(
        yield* outcome(request({ headers: { ...signedHeaders(now), "x-polyagent-signature": "v1=zz" } })),
        /does not match/
      )
      // The default window is 300 s either way.
      assert.match(yield* outcome(request({ headers: signedHeaders(now - 301) })), /replay window/)
      assert.match(yield* outcome(request({ headers: signedHeaders(now + 301) })), /replay window/)
      assert.strictEqual(yield* outcome(request({ headers: signedHeaders(now - 299) })), "ok")
      assert.match(
        yield* outcome(request({ headers: { ...signedHeaders(now), "x-polyagent-timestamp": "soon" } })),
        /replay window/
      )
    }).pipe(Effect.provide(layer))
  )

  it.effect("a signature stays a replay until twice the window has passed", () =>
    Effect.gen(function* () {
      yield* TestClock.adjust(Duration.hours(1))
      const now = yield* seconds
      // Signed 250 s ahead (within the window): served, then replayed 500 s later, still in the window.
      const ahead = request({ headers: signedHeaders(now + 250) })
      assert.strictEqual(yield* outcome(ahead), "ok")
      yield* TestClock.adjust(Duration.seconds(500))
      assert.match(yield* outcome(ahead), /already received/)
    }).pipe(Effect.provide(layer))
  )

  it.effect("refuses addresses outside a key's or a tenant's list, IPv4 and IPv6, trusting only proxies", () =>
    Effect.gen(function* () {
      const walled = (remoteAddress: string, headers: RequestGuards.Request["headers"] = {}) =>
        outcome(request({ keyId: "walled", remoteAddress, headers }))
      assert.strictEqual(yield* walled("10.2.3.4"), "ok")
      assert.strictEqual(yield* walled("::ffff:10.2.3.4"), "ok")
      assert.strictEqual(yield* walled("2001:db8::7"), "ok")
      assert.strictEqual(yield* walled("11.0.0.1"), "forbidden: requests are not allowed from this address")
      assert.strictEqual(yield* walled("2001:db9::7"), "forbidden: requests are not allowed from this address")
      // X-Forwarded-For counts from a trusted proxy only (127.0.0.1), and only its right-most untrusted hop.
      assert.strictEqual(yield* walled("127.0.0.1", { "x-forwarded-for": "10.9.9.9" }), "ok")
      assert.match(yield* walled("127.0.0.1", { "x-forwarded-for": "10.9.9.9, 11.0.0.1" }), /^forbidden/)
      assert.match(yield* walled("11.0.0.1", { "x-forwarded-for": "10.9.9.9" }), /^forbidden/)
      // The tenant's own list applies to every key of the tenant.
      const fenced = (remoteAddress: string) => outcome(request({ tenant: "fenced", keyId: "none", remoteAddress }))
      assert.match(yield* fenced("10.2.3.4"), /^forbidden/)
      assert.strictEqual(yield* fenced("192.0.2.9"), "ok")
      assert.strictEqual(yield* outcome(request({ keyId: "none", remoteAddress: "203.0.113.1" })), "ok")
    }).pipe(Effect.provide(layer))
  )

  it.effect("audits refused addresses at most once a minute per key and address", () =>
    Effect.gen(function* () {
      const audit = yield* Audit.Audit
      const refuse = outcome(request({ keyId: "walled", remoteAddress: "11.0.0.1" }))
      for (let i = 0; i < 50; i++) yield* refuse
      yield* outcome(request({ keyId: "walled", remoteAddress: "11.0.0.2" }))
      let entries = yield* audit.list("default", 100)
      assert.deepStrictEqual(
        entries.map((entry) => [entry.action, entry.target, entry.outcome]),
        [
          ["request.ip_refused", "11.0.0.2", "denied"],
          ["request.ip_refused", "11.0.0.1", "denied"]
        ]
      )
      yield* TestClock.adjust(Duration.minutes(1))
      yield* refuse
      entries = yield* audit.list("default", 100)
      assert.lengthOf(entries, 3)
    }).pipe(Effect.provide(layer))
  )
})

describe("IpAllowList", () => {
  it("validates entries and matches ranges", () => {
    assert.deepStrictEqual(IpAllowList.invalidEntries(["10.0.0.0/8", "::1", "10.0.0.300", "fe80::/200", "x"]), [
      "10.0.0.300",
      "fe80::/200",
      "x"
    ])
    const list = IpAllowList.make(["192.168.1.0/24", "::ffff:10.0.0.0/104"])
    assert.isTrue(IpAllowList.allows(list, IpAllowList.parseAddress("192.168.1.200")))
    assert.isTrue(IpAllowList.allows(list, IpAllowList.parseAddress("10.200.0.1")))
    assert.isFalse(IpAllowList.allows(list, IpAllowList.parseAddress("192.168.2.1")))
    assert.isFalse(IpAllowList.allows(list, undefined))
    assert.isTrue(Option.isNone(Option.fromNullishOr(IpAllowList.parseAddress("not an address"))))
  })
})
