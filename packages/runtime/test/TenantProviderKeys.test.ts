/**
 * Tenants' provider keys and keys' guards on both databases: stored sealed, opened for their own
 * row only, listed without keys, removed, and re-sealed under the current key after a rotation.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as KeyGuards from "../src/KeyGuards.ts"
import * as SecretBox from "../src/SecretBox.ts"
import * as TenantProviderKeys from "../src/TenantProviderKeys.ts"
import { databases } from "./support/databases.ts"

const ring = (text: string) => {
  const parsed = SecretBox.parseKeys(text)
  if ("error" in parsed) throw new Error(parsed.error)
  return parsed.keys
}
const k1 = SecretBox.generateKeyText("k1")
const k2 = SecretBox.generateKeyText("k2")
const boxOf = (text: string) => Layer.succeed(SecretBox.SecretBox, SecretBox.make(ring(text)))

const canary = "sk-tenant-canary-0123456789"

/** Every text of `table`, joined, to search for plain text. */
const dump = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<Record<string, unknown>>(`SELECT * FROM ${table}`)).pipe(
    Effect.map((rows) => JSON.stringify(rows))
  )

describe.each(databases("tenant_keys"))("TenantProviderKeys and KeyGuards (%s)", (_name, database) => {
  it.effect("seals keys, opens each for its own row only, lists without keys, removes", () =>
    Effect.gen(function* () {
      const store = yield* TenantProviderKeys.make
      yield* store.put("acme", "openai", { apiKey: Redacted.make(canary), baseUrl: null })
      yield* store.put("acme", "anthropic", { apiKey: Redacted.make(`${canary}-ant`), baseUrl: "http://127.0.0.1:1" })
      const text = yield* dump("tenant_provider_keys")
      assert.notInclude(text, canary)
      assert.include(text, "v1:k1:")
      const credentials = yield* store.credentials("acme")
      assert.strictEqual(Redacted.value(credentials.get("openai")?.apiKey ?? Redacted.make("")), canary)
      assert.strictEqual(credentials.get("anthropic")?.baseUrl, "http://127.0.0.1:1")
      assert.strictEqual((yield* store.credentials("other")).size, 0)
      const listed = yield* store.list("acme")
      assert.deepStrictEqual(
        listed.map((entry) => entry.provider),
        ["anthropic", "openai"]
      )
      assert.notInclude(JSON.stringify(listed), canary)
      // A sealed key copied into another tenant's row does not open there: it is left out.
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO tenant_provider_keys (tenant, provider, api_key, base_url, updated_at)
                 SELECT 'thief', provider, api_key, base_url, updated_at FROM tenant_provider_keys
                 WHERE tenant = 'acme' AND provider = 'openai'`
      assert.strictEqual((yield* store.credentials("thief")).size, 0)
      assert.isTrue(yield* store.remove("acme", "openai"))
      assert.isFalse(yield* store.remove("acme", "openai"))
      assert.isFalse((yield* store.credentials("acme")).has("openai"))
    }).pipe(Effect.provide(Layer.merge(database, boxOf(k1)).pipe(Layer.orDie)))
  )

  it.effect("re-seals keys and signing secrets of an older key when the ring rotates", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const before = Layer.succeed(SqlClient.SqlClient, sql)
      yield* Effect.gen(function* () {
        const store = yield* TenantProviderKeys.make
        yield* store.put("acme", "openai", { apiKey: Redacted.make(canary), baseUrl: null })
        const guards = yield* KeyGuards.make
        yield* guards.create("key_1", "acme", {
          signingSecret: Redacted.make("pas_canary"),
          allowedIps: ["10.0.0.0/8"]
        })
      }).pipe(Effect.provide(Layer.merge(before, boxOf(k1))))
      const rotated = yield* Effect.all([TenantProviderKeys.rotate, KeyGuards.rotate]).pipe(
        Effect.provide(Layer.merge(before, boxOf(`${k2},${k1}`)))
      )
      assert.deepStrictEqual(rotated, [
        { resealed: 1, unreadable: 0 },
        { resealed: 1, unreadable: 0 }
      ])
      const text = (yield* dump("tenant_provider_keys")) + (yield* dump("key_guards"))
      assert.notInclude(text, "v1:k1:")
      assert.include(text, "v1:k2:")
      // Now k1 can go: the current key alone opens everything.
      yield* Effect.gen(function* () {
        const store = yield* TenantProviderKeys.make
        const credentials = yield* store.credentials("acme")
        assert.strictEqual(Redacted.value(credentials.get("openai")?.apiKey ?? Redacted.make("")), canary)
        const guard = yield* (yield* KeyGuards.make).get("key_1")
        assert.strictEqual(Redacted.value(guard?.signingSecret ?? Redacted.make("")), "pas_canary")
        assert.deepStrictEqual(guard?.allowedIps?.entries, ["10.0.0.0/8"])
      }).pipe(Effect.provide(Layer.merge(before, boxOf(k2))))
      // A ring without the old key cannot open what it sealed: counted, left as it is.
      const lost = yield* TenantProviderKeys.rotate.pipe(
        Effect.provide(Layer.merge(before, boxOf(SecretBox.generateKeyText("k3"))))
      )
      assert.deepStrictEqual(lost, { resealed: 0, unreadable: 1 })
    }).pipe(Effect.provide(database.pipe(Layer.orDie)))
  )

  it.effect("without a key, stores nothing and reads nothing, as typed errors", () =>
    Effect.gen(function* () {
      const store = yield* TenantProviderKeys.make
      const error = yield* Effect.flip(store.put("acme", "openai", { apiKey: Redacted.make(canary), baseUrl: null }))
      assert.strictEqual(error._tag, "SecretBoxError")
      assert.strictEqual((yield* store.credentials("acme")).size, 0)
    }).pipe(
      Effect.provide(Layer.merge(database, Layer.succeed(SecretBox.SecretBox, SecretBox.make([]))).pipe(Layer.orDie))
    )
  )
})
