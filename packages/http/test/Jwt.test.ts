/**
 * The JWT verifier's settings and claims: settings that cannot work fail with the key named;
 * roles and tenants are read as the contract says; a verified token is remembered until its
 * `exp` at the latest (TestClock).
 */
import { assert, describe, it } from "@effect/vitest"
import { AppConfig } from "@polyagent/runtime"
import { Duration, Effect, Option, Redacted } from "effect"
import { TestClock } from "effect/testing"
import * as Jose from "jose"
import { generateKeyPairSync } from "node:crypto"
import * as Jwt from "../src/Jwt.ts"

const base = Effect.map(AppConfig.make(), (config) => config.security.jwt)
const secret = "a-secret-of-at-least-32-characters-long"

describe("Jwt", () => {
  it("reads roles: the highest known wins, unknown ones are ignored, none is user", () => {
    assert.strictEqual(Jwt.roleOf(["user", "admin", "wizard"]), "admin")
    assert.strictEqual(Jwt.roleOf(["builder", 7]), "builder")
    assert.strictEqual(Jwt.roleOf(["wizard"]), "user")
    assert.strictEqual(Jwt.roleOf([]), "user")
    assert.deepStrictEqual(Jwt.principalOf({ sub: "a" }), {
      kind: "jwt",
      tenant: "default",
      subject: "a",
      role: "user",
      keyId: null,
      models: null,
      rateLimit: null
    })
    assert.isString(Jwt.principalOf({ sub: "a", tenant: "a/b" }))
    assert.isString(Jwt.principalOf({ sub: "a", roles: "admin" }))
    assert.isString(Jwt.principalOf({}))
  })

  it.effect("fails on settings that cannot work, naming the key", () =>
    Effect.gen(function* () {
      const settings = yield* base
      const failure = (overrides: Partial<Jwt.Settings>) =>
        Effect.map(Effect.flip(Jwt.make({ ...settings, ...overrides })), (error) => error.message)
      assert.include(yield* failure({ publicKey: Option.some("not a pem") }), "security.jwt.public_key")
      const weak = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" })
      assert.include(yield* failure({ publicKey: Option.some(weak.toString()) }), "2048 bits")
      assert.include(
        yield* failure({ secret: Option.some(Redacted.make(secret)), algorithms: ["RS256"] }),
        "security.jwt.algorithms: RS256 has no key"
      )
      assert.include(yield* failure({ issuer: Option.some("x") }), "security.jwt.issuer")
      const off = yield* Jwt.make(settings)
      assert.isFalse(off.enabled)
    })
  )

  it.effect("remembers a verified token until its exp at the latest", () =>
    Effect.gen(function* () {
      const settings = yield* base
      const verifier = yield* Jwt.make({ ...settings, secret: Option.some(Redacted.make(secret)) })
      // The TestClock starts at the epoch; the token expires 30 s later.
      const token = yield* Effect.promise(() =>
        new Jose.SignJWT({ roles: ["builder"] })
          .setProtectedHeader({ alg: "HS256" })
          .setSubject("alice")
          .setExpirationTime(30)
          .sign(new TextEncoder().encode(secret))
      )
      const principal = yield* verifier.verify(token)
      assert.strictEqual(principal.role, "builder")
      assert.strictEqual(verifier.cached(token, 29_999)?.subject, "alice")
      assert.isUndefined(verifier.cached(token, 30_000))
      yield* TestClock.adjust(Duration.seconds(31 + 30))
      const expired = yield* Effect.flip(verifier.verify(token))
      assert.include(expired.reason, "exp")
    })
  )
})
