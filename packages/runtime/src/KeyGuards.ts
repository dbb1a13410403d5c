/**
 * What guards an API key beyond its hash, chosen when the key is created: a signing secret (its
 * requests must then be signed, see the edge's `RequestGuards`) and the addresses it may be used
 * from. Kept in `key_guards`, a table of its own beside `api_keys`: the secret sealed by
 * `SecretBox` (bound to the key's id), the addresses as a JSON array. A key without a row has no
 * guard, which is nearly every key: the answer is remembered like the key itself.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as SqlClient from "effect/sql/SqlClient"
import { failWith, queryOn, type StorageError } from "./internal/storageQuery.ts"
import * as IpAllowList from "./IpAllowList.ts"
import * as SecretBox from "./SecretBox.ts"
import { nowIso } from "./Storage.ts"

/** The guards of one key. */
export interface Guard {
  /** The secret its requests are signed with; undefined: requests need no signature. */
  readonly signingSecret: Redacted.Redacted<string> | undefined
  /** Where its requests may come from; undefined: anywhere. */
  readonly allowedIps: IpAllowList.AllowList | undefined
}

/** What a new key is guarded by. */
export interface NewGuard {
  readonly signingSecret?: Redacted.Redacted<string> | undefined
  readonly allowedIps?: ReadonlyArray<string> | undefined
}

/** How long a key's guards are remembered (as long as the key itself, `Authentication.keyCacheTtl`). */
export const cacheTtl = Duration.seconds(10)
const cacheSize = 10_000

/**
 * The keys' guards.
 *
 * When to use: `create` with the key (`POST /v1/keys`); `get` on every request of a key, before it
 * is served, by the stack and the fast lane alike.
 *
 * Gotchas: a signing secret that does not open fails `get` with `SecretBoxError`: the key's requests
 * are refused rather than let through unsigned.
 */
export class KeyGuards extends Context.Service<
  KeyGuards,
  {
    readonly create: (
      keyId: string,
      tenant: string,
      guard: NewGuard
    ) => Effect.Effect<void, StorageError | SecretBox.SecretBoxError>
    readonly get: (keyId: string) => Effect.Effect<Guard | undefined, StorageError | SecretBox.SecretBoxError>
    /** The allowed addresses of a key, as written (for listings); undefined: anywhere. */
    readonly allowedIpsOf: (keyId: string) => Effect.Effect<ReadonlyArray<string> | undefined, StorageError>
    /** Forgets what is remembered of the key (it was revoked). */
    readonly forget: (keyId: string) => void
  }
>()("@polyagent/runtime/KeyGuards") {}

/** Where a key's secret is sealed: its id. */
const contextOf = (keyId: string) => `key_guards/${keyId}`

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined)

/** The stored list; a list that does not read allows nobody (never everybody). */
const ipsOf = (text: string | undefined): ReadonlyArray<string> | undefined => {
  if (text === undefined) return undefined
  const parsed = Result.try((): unknown => JSON.parse(text))
  const value = Result.getOrUndefined(parsed)
  return Array.isArray(value) ? value.filter((entry): entry is string => typeof entry === "string") : []
}

/** The guards on the `SqlClient` in context, sealing with the `SecretBox` in context. */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const box = yield* SecretBox.SecretBox
  const query = queryOn(sql)
  const ttl = Duration.toMillis(cacheTtl)
  const cache = new Map<string, { readonly until: number; readonly guard: Guard | undefined }>()

  const row = (keyId: string) =>
    query`SELECT signing_secret, allowed_ips FROM key_guards WHERE key_id = ${keyId}`.pipe(
      failWith("keyGuards.get"),
      Effect.map((rows) => rows[0])
    )

  return KeyGuards.of({
    create: (keyId, tenant, guard) =>
      Effect.gen(function* () {
        if (guard.signingSecret === undefined && guard.allowedIps === undefined) return
        const sealed = guard.signingSecret === undefined ? null : yield* box.seal(guard.signingSecret, contextOf(keyId))
        const ips = guard.allowedIps === undefined ? null : JSON.stringify(guard.allowedIps)
        yield* query`INSERT INTO key_guards (key_id, tenant, signing_secret, allowed_ips, created_at)
                     VALUES (${keyId}, ${tenant}, ${sealed}, ${ips}, ${yield* nowIso})`.pipe(
          failWith("keyGuards.create")
        )
        cache.delete(keyId)
      }),
    get: (keyId) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const cached = cache.get(keyId)
        if (cached !== undefined && cached.until > now) return cached.guard
        const found = yield* row(keyId)
        let guard: Guard | undefined
        if (found !== undefined) {
          const sealed = str(found["signing_secret"])
          const ips = ipsOf(str(found["allowed_ips"]))
          guard = {
            signingSecret: sealed === undefined ? undefined : yield* box.open(sealed, contextOf(keyId)),
            allowedIps: ips === undefined ? undefined : IpAllowList.make(ips)
          }
        }
        if (cache.size >= cacheSize) cache.delete(cache.keys().next().value ?? "")
        cache.set(keyId, { until: now + ttl, guard })
        return guard
      }),
    allowedIpsOf: (keyId) => Effect.map(row(keyId), (found) => ipsOf(str(found?.["allowed_ips"]))),
    forget: (keyId) => {
      cache.delete(keyId)
    }
  })
})

/**
 * Re-seals every signing secret sealed by another key than the current one (after a rotation);
 * answers how many were re-sealed and how many could not be opened (left as they are).
 */
export const rotate = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const box = yield* SecretBox.SecretBox
  const query = queryOn(sql)
  if (!box.configured) return { resealed: 0, unreadable: 0 }
  const rows = yield* query`SELECT key_id, signing_secret FROM key_guards WHERE signing_secret IS NOT NULL`.pipe(
    failWith("keyGuards.rotate")
  )
  let resealed = 0
  let unreadable = 0
  for (const found of rows) {
    const keyId = str(found["key_id"]) ?? ""
    const sealed = str(found["signing_secret"]) ?? ""
    if (!box.needsRotation(sealed)) continue
    const opened = yield* Effect.option(box.open(sealed, contextOf(keyId)))
    if (Option.isNone(opened)) {
      unreadable++
      continue
    }
    const again = yield* box.seal(opened.value, contextOf(keyId))
    yield* query`UPDATE key_guards SET signing_secret = ${again} WHERE key_id = ${keyId} AND signing_secret = ${sealed}`.pipe(
      failWith("keyGuards.rotate")
    )
    resealed++
  }
  return { resealed, unreadable }
})

/** {@link make} as a layer. */
export const layer: Layer.Layer<KeyGuards, never, SqlClient.SqlClient | SecretBox.SecretBox> = Layer.effect(
  KeyGuards,
  make
)
