/**
 * The key cache behind authentication: a verified key costs no storage lookup for a while, a
 * key revoked through this server is forgotten at once, and one revoked elsewhere (another node
 * of a cluster) stops working when its entry expires.
 */
import { assert, describe, it } from "@effect/vitest"
import { Database, Storage } from "@polyagent/runtime"
import { Effect, Layer, Option } from "effect"
import { TestClock } from "effect/testing"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Authentication from "../src/Authentication.ts"

const storage = Storage.layerSql.pipe(
  Layer.provide(
    Layer.unwrap(
      Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "polyagent-auth-"))),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      ).pipe(Effect.map((dir) => Database.layerSqlite(dir)))
    )
  )
)

const keyOf = (id: string, key: string, expiresAt: string | null = null) =>
  new Storage.ApiKeyRecord({
    id,
    tenant: "acme",
    name: id,
    role: "user",
    key_hash: Authentication.hashKey(key),
    created_at: "2026-11-25T00:00:00.000Z",
    budget_usd: null,
    prefix: key.slice(0, 11),
    expires_at: expiresAt,
    last_used_at: null,
    models: null,
    rate_limit_rpm: null,
    rate_limit_burst: null
  })

describe("Authentication.KeyCache", () => {
  it.layer(Layer.provideMerge(Authentication.layerKeyCache, storage))((it) => {
    it.effect("trusts a found key until its entry expires, and forgets a key revoked here at once", () =>
      Effect.gen(function* () {
        const store = yield* Storage.Storage
        const keys = yield* Authentication.KeyCache
        yield* store.insertApiKey(keyOf("key_a", "pa_a"))
        yield* store.insertApiKey(keyOf("key_b", "pa_b"))

        const found = yield* keys.lookup(Authentication.hashKey("pa_a"))
        assert.deepStrictEqual(found, {
          kind: "key",
          tenant: "acme",
          subject: "key_a",
          role: "user",
          keyId: "key_a",
          models: null,
          rateLimit: null
        })
        assert.strictEqual(yield* keys.lookup(Authentication.hashKey("pa_unknown")), "unknown or revoked key")

        // Revoked in storage only, as another node would: still trusted until the entry expires.
        assert.deepStrictEqual(
          yield* store.revokeApiKey("acme", "key_a", "2026-11-25T00:00:01.000Z"),
          Option.some("acme")
        )
        assert.strictEqual(typeof (yield* keys.lookup(Authentication.hashKey("pa_a"))), "object")
        yield* TestClock.adjust(Authentication.keyCacheTtl)
        assert.strictEqual(yield* keys.lookup(Authentication.hashKey("pa_a")), "unknown or revoked key")

        // Revoked through this server: forgotten at once.
        assert.strictEqual(typeof (yield* keys.lookup(Authentication.hashKey("pa_b"))), "object")
        yield* store.revokeApiKey("acme", "key_b", "2026-11-25T00:00:02.000Z")
        keys.forget("key_b")
        assert.strictEqual(yield* keys.lookup(Authentication.hashKey("pa_b")), "unknown or revoked key")
      })
    )
  })
})

describe("Authentication.KeyCache expiry", () => {
  it.layer(Layer.provideMerge(Authentication.layerKeyCache, storage))((it) => {
    it.effect("trusts a key until it expires, not past it, even within the cache's TTL", () =>
      Effect.gen(function* () {
        const store = yield* Storage.Storage
        const keys = yield* Authentication.KeyCache
        // The TestClock starts at the epoch: this key expires 5 s later.
        yield* store.insertApiKey(keyOf("key_e", "pa_e", "1970-01-01T00:00:05.000Z"))
        const hash = Authentication.hashKey("pa_e")
        assert.strictEqual(typeof (yield* keys.lookup(hash)), "object")
        assert.isDefined(keys.cached(hash, 4_999))
        assert.isUndefined(keys.cached(hash, 5_000))
        yield* TestClock.adjust("5 seconds")
        assert.strictEqual(yield* keys.lookup(hash), "expired key")
      })
    )
  })
})
