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

const keyOf = (id: string, key: string) =>
  new Storage.ApiKeyRecord({
    id,
    tenant: "acme",
    name: id,
    role: "user",
    key_hash: Authentication.hashKey(key),
    created_at: "2026-11-25T00:00:00.000Z",
    budget_usd: null
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
        assert.deepStrictEqual(found, Option.some({ tenant: "acme", subject: "key_a", role: "user" as const }))
        assert.isTrue(Option.isNone(yield* keys.lookup(Authentication.hashKey("pa_unknown"))))

        // Revoked in storage only, as another node would: still trusted until the entry expires.
        assert.isTrue(yield* store.revokeApiKey("acme", "key_a", "2026-11-25T00:00:01.000Z"))
        assert.isTrue(Option.isSome(yield* keys.lookup(Authentication.hashKey("pa_a"))))
        yield* TestClock.adjust(Authentication.keyCacheTtl)
        assert.isTrue(Option.isNone(yield* keys.lookup(Authentication.hashKey("pa_a"))))

        // Revoked through this server: forgotten at once.
        assert.isTrue(Option.isSome(yield* keys.lookup(Authentication.hashKey("pa_b"))))
        yield* store.revokeApiKey("acme", "key_b", "2026-11-25T00:00:02.000Z")
        keys.forget("key_b")
        assert.isTrue(Option.isNone(yield* keys.lookup(Authentication.hashKey("pa_b"))))
      })
    )
  })
})
