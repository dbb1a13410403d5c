/**
 * API-key authentication: a bearer token `pa_…` is hashed and looked up in storage; only
 * hashes are ever stored. A key found stays trusted for {@link keyCacheTtl}, so a request
 * costs no storage lookup; revoking a key through this server forgets it at once (another
 * node of a cluster notices within the TTL). At start-up the bootstrap admin key of tenant
 * `default` is ensured: `POLYAGENT_ADMIN_KEY` when set, otherwise a new key printed once
 * when the tenant has none yet.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { type Budgets, Identifier, Storage } from "@polyagent/runtime"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { createHash } from "node:crypto"
import { Authentication, Principal } from "./Api.ts"
import * as ApiError from "./ApiError.ts"
import * as Edge from "./Edge.ts"
import * as RateLimit from "./RateLimit.ts"
import * as RequestGuards from "./RequestGuards.ts"
import * as RequestLog from "./RequestLog.ts"

/** The tenant of the bootstrap admin key. */
export const DEFAULT_TENANT = "default"

/** The stored form of a key: SHA-256, enough for 130-bit random keys (no password stretching needed). */
export const hashKey = (key: string): string => createHash("sha256").update(key).digest("hex")

/** A new API key: `pa_` and 40 base62 characters. */
export const newKey = Effect.sync(() => `pa_${Identifier.randomBase62(40)}`)

/** The caller, when its role includes `role`; `action` says what needs it (for the 403's message). */
export const requireRole = (
  role: Storage.Role,
  action: string
): Effect.Effect<Principal["Service"], ApiError.Forbidden, Principal> =>
  Effect.gen(function* () {
    const principal = yield* Principal
    if (Storage.roleRank[principal.role] < Storage.roleRank[role]) {
      return yield* ApiError.fail("forbidden", `${action} needs the ${role} role`)
    }
    return principal
  })

/**
 * Who pays for the calls of `principal`: its tenant, and its API key (a principal's `subject` is
 * the id of the key it authenticated with).
 *
 * When to use: for `Budgets.reserve` and the ledger, around every model call of a request.
 */
export const payerOf = (principal: Principal["Service"]): Budgets.Payer => ({
  tenant: principal.tenant,
  keyId: principal.subject
})

/** How long a key found in storage is trusted without asking again. */
export const keyCacheTtl = Duration.seconds(10)
/** At most this many keys are remembered; the oldest is forgotten first. */
const keyCacheSize = 10_000

/** The callers of the API keys recently verified, by key hash. */
export class KeyCache extends Context.Service<
  KeyCache,
  {
    /** The caller of the key with this hash; none for an unknown or revoked key. */
    readonly lookup: (hash: string) => Effect.Effect<Option.Option<Principal["Service"]>, Storage.StorageError>
    /** The caller of a key found less than {@link keyCacheTtl} before `now` (epoch ms), without asking storage. */
    readonly cached: (hash: string, now: number) => Principal["Service"] | undefined
    /** Forgets the key `id` (it was revoked). */
    readonly forget: (id: string) => void
  }
>()("@polyagent/http/KeyCache") {}

export const layerKeyCache = Layer.effect(
  KeyCache,
  Effect.gen(function* () {
    const storage = yield* Storage.Storage
    const ttl = Duration.toMillis(keyCacheTtl)
    // Insertion order is age: the first entry is the oldest.
    const known = new Map<string, { readonly principal: Principal["Service"]; readonly until: number }>()
    const cached = (hash: string, now: number) => {
      const entry = known.get(hash)
      if (entry !== undefined && entry.until > now) return entry.principal
      known.delete(hash)
      return undefined
    }
    return KeyCache.of({
      cached,
      lookup: (hash) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const principal = cached(hash, now)
          if (principal !== undefined) return Option.some(principal)
          const found = yield* storage.findApiKeyByHash(hash)
          if (Option.isNone(found)) return Option.none()
          const { id, tenant, role } = found.value
          const verified = { tenant, subject: id, role }
          if (known.size >= keyCacheSize) known.delete(known.keys().next().value ?? "")
          known.set(hash, { principal: verified, until: now + ttl })
          return Option.some(verified)
        }),
      forget: (id) => {
        for (const [hash, { principal }] of known) if (principal.subject === id) known.delete(hash)
      }
    })
  })
)

/**
 * The middleware that turns a bearer token into a {@link Principal}, then takes its request's
 * rate-limit tokens (`RateLimit.ts`): its headers go on the response, a refusal answers 429 or 503.
 */
export const layer = Layer.effect(
  Authentication,
  Effect.gen(function* () {
    const keys = yield* KeyCache
    const guards = yield* RequestGuards.RequestGuards
    const limits = yield* RateLimit.RateLimits
    const unauthenticated = ApiError.fail("unauthenticated", "a valid API key is required: Authorization: Bearer pa_…")
    return Authentication.of({
      bearer: (httpEffect, { credential, endpoint }) =>
        Effect.gen(function* () {
          const token = Redacted.value(credential)
          if (!token.startsWith("pa_")) return yield* unauthenticated
          const found = yield* keys.lookup(hashKey(token)).pipe(
            // A key that cannot be looked up is no bad key: 503, never 401.
            Effect.catchTag("StorageError", (error) =>
              Effect.logError("authentication lookup failed", error).pipe(
                Effect.andThen(ApiError.fail("unavailable", "authentication is unavailable; try again shortly"))
              )
            )
          )
          if (Option.isNone(found)) return yield* unauthenticated
          yield* RequestLog.recordCaller(found.value)
          const outcome = yield* limits.check(found.value, RateLimit.routeClassOf(endpoint.method, endpoint.path))
          // On Node's response, so that answers the handlers write themselves (relays) carry them too.
          const request = yield* HttpServerRequest.HttpServerRequest
          Edge.setNodeHeaders(NodeHttpServerRequest.toServerResponse(request), outcome.headers)
          if (outcome.refusal !== undefined) {
            yield* RequestLog.recordRetryAfter(outcome.refusal.retryAfterSeconds)
            return yield* ApiError.fail(outcome.refusal.type, outcome.refusal.message)
          }
          yield* guardsOf(guards, found.value)
          return yield* Effect.provideService(httpEffect, Principal, found.value)
        })
    })
  })
)

/**
 * The request guards (IP allow-lists, signatures) of the current request of `caller`, as the fast
 * lane runs them: the raw body is read (and kept for the payload's decoding) only for a key that
 * signs its requests.
 */
const guardsOf = (guards: RequestGuards.RequestGuards["Service"], caller: Principal["Service"]) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const socket = NodeHttpServerRequest.toIncomingMessage(request).socket
    yield* guards.check({
      tenant: caller.tenant,
      keyId: caller.subject,
      headers: request.headers,
      remoteAddress: socket?.remoteAddress,
      // A body over the limit is a defect the edge answers with 413, as for the handlers' reads.
      body: Effect.map(Effect.orDie(request.arrayBuffer), (bytes) => new Uint8Array(bytes))
    })
  })

/**
 * Ensures the bootstrap admin key exists. With `configured`, that key is stored (hashed)
 * unless it already is — processes that start together may all try, one stores it. Without
 * it, a tenant with no key gets a new one, printed once, when `create` allows (one process of
 * several that start together; set `POLYAGENT_ADMIN_KEY` for a cluster).
 */
export const bootstrapAdminKey = Effect.fn("Authentication.bootstrapAdminKey")(function* (
  configured: Option.Option<Redacted.Redacted<string>>,
  options: { readonly announce: (key: string) => Effect.Effect<void>; readonly create: boolean }
) {
  const storage = yield* Storage.Storage
  const now = yield* Storage.nowIso
  const store = (key: string, name: string) =>
    Effect.gen(function* () {
      const id = yield* Identifier.make("key")
      yield* storage.insertApiKey(
        new Storage.ApiKeyRecord({
          id,
          tenant: DEFAULT_TENANT,
          name,
          role: "admin",
          key_hash: hashKey(key),
          created_at: now,
          budget_usd: null
        })
      )
    })
  if (Option.isSome(configured)) {
    const key = Redacted.value(configured.value)
    const existing = yield* storage.findApiKeyByHash(hashKey(key))
    if (Option.isNone(existing)) yield* store(key, "bootstrap (POLYAGENT_ADMIN_KEY)")
    return
  }
  if (!options.create || (yield* storage.countApiKeys(DEFAULT_TENANT)) > 0) return
  const key = yield* newKey
  yield* store(key, "bootstrap")
  yield* options.announce(key)
})
