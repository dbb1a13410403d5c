/**
 * Authentication: a bearer token is an API key (`pa_…`, hashed and looked up in storage; only
 * hashes are ever stored) or a JWT (`Jwt.ts`). A key found stays trusted for {@link keyCacheTtl}
 * (never past its expiry), so a request costs no storage lookup; revoking a key through this
 * server forgets it at once (another node of a cluster notices within the TTL). The middleware
 * then checks the route's role (`Authorization.ts`) and notes the key's use (`KeyUsage.ts`).
 * Every failure answers the same 401; why is logged at debug with the request id, never the token.
 * At start-up the bootstrap admin key of tenant `default` is ensured: `POLYAGENT_ADMIN_KEY` when
 * set, otherwise a new key printed once when the tenant has none yet.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { Audit, type Budgets, Identifier, Storage } from "@polyagent/runtime"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { createHash } from "node:crypto"
import { Authentication, Principal } from "./Api.ts"
import * as ApiError from "./ApiError.ts"
import * as Authorization from "./Authorization.ts"
import * as Edge from "./Edge.ts"
import { JwtVerifier } from "./Jwt.ts"
import { KeyUsage } from "./KeyUsage.ts"
import * as RateLimit from "./RateLimit.ts"
import * as RequestGuards from "./RequestGuards.ts"
import * as RequestLog from "./RequestLog.ts"

/** The tenant of the bootstrap admin key: its admins are the operator (../shared/API.md). */
export const DEFAULT_TENANT = "default"

/** Whether `principal` is the operator: an admin of tenant `default`, who may act on other tenants. */
export const isOperator = (principal: Principal["Service"]): boolean =>
  principal.role === "admin" && principal.tenant === DEFAULT_TENANT

/** The stored form of a key: SHA-256, enough for 130-bit random keys (no password stretching needed). */
export const hashKey = (key: string): string => createHash("sha256").update(key).digest("hex")

/** A new API key: `pa_` and 40 base62 characters. */
export const newKey = Effect.sync(() => `pa_${Identifier.randomBase62(40)}`)

/** What a key shows of itself in listings: `pa_` and its next 8 characters. */
export const prefixOf = (key: string): string => key.slice(0, 11)

/**
 * Who pays for the calls of `principal`: its tenant, and its API key (for a JWT, `jwt:<sub>`,
 * to which `budgets.keys` applies as to a key).
 *
 * When to use: for `Budgets.reserve` and the ledger, around every model call of a request.
 */
export const payerOf = (principal: Principal["Service"]): Budgets.Payer => ({
  tenant: principal.tenant,
  keyId: Authorization.actorOf(principal)
})

/** Who the audit log names as having acted: the key's id, or `jwt:<sub>`. */
export const actorOf = Authorization.actorOf

/** The caller a stored key stands for. */
export const principalOfKey = (record: Storage.ApiKeyRecord): Principal["Service"] => ({
  kind: "key",
  tenant: record.tenant,
  subject: record.id,
  role: record.role,
  keyId: record.id,
  models: record.models,
  rateLimit:
    record.rate_limit_rpm === null || record.rate_limit_burst === null
      ? null
      : { requestsPerMinute: record.rate_limit_rpm, burst: record.rate_limit_burst }
})

/** How long a key found in storage is trusted without asking again. */
export const keyCacheTtl = Duration.seconds(10)
/** At most this many keys are remembered; the oldest is forgotten first. */
const keyCacheSize = 10_000

/** Epoch milliseconds of a stored ISO time; `Infinity` for none (never). */
const millisOf = (iso: string | null): number =>
  iso === null
    ? Number.POSITIVE_INFINITY
    : Option.match(DateTime.make(iso), {
        onNone: () => 0,
        onSome: DateTime.toEpochMillis
      })

/** Why a key does not authenticate, for the debug log. */
export type KeyRejection = "unknown or revoked key" | "expired key"

/** The callers of the API keys recently verified, by key hash. */
export class KeyCache extends Context.Service<
  KeyCache,
  {
    /** The caller of the key with this hash, or why there is none (unknown, revoked, expired). */
    readonly lookup: (hash: string) => Effect.Effect<Principal["Service"] | KeyRejection, Storage.StorageError>
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
          if (principal !== undefined) return principal
          const found = yield* storage.findApiKeyByHash(hash)
          if (Option.isNone(found)) return "unknown or revoked key"
          const expiresAt = millisOf(found.value.expires_at)
          if (expiresAt <= now) return "expired key"
          const verified = principalOfKey(found.value)
          if (known.size >= keyCacheSize) known.delete(known.keys().next().value ?? "")
          // Trusted until the TTL ends, or the key expires if that comes first.
          known.set(hash, { principal: verified, until: Math.min(now + ttl, expiresAt) })
          return verified
        }),
      forget: (id) => {
        for (const [hash, { principal }] of known) if (principal.keyId === id) known.delete(hash)
      }
    })
  })
)

/** The one answer to a token that does not authenticate, whatever the reason. */
export const unauthenticatedMessage = "a valid API key or token is required: Authorization: Bearer <token>"

/** The generic 401; why is logged at debug with the request id (never the token). */
const rejected = (reason: string): Effect.Effect<never, ApiError.Unauthenticated | ApiError.Unavailable> =>
  Effect.flatMap(Effect.service(ApiError.RequestId), (requestId) =>
    Effect.logDebug("authentication failed").pipe(
      Effect.annotateLogs({ reason, request_id: requestId }),
      Effect.andThen(ApiError.fail("unauthenticated", unauthenticatedMessage))
    )
  )

/**
 * The caller of a bearer token: an API key or a JWT. Fails with the generic 401 (the reason is
 * logged at debug), or 503 when the key cannot be looked up because storage is down.
 */
export const authenticate: (
  token: string
) => Effect.Effect<Principal["Service"], ApiError.Unauthenticated | ApiError.Unavailable, KeyCache | JwtVerifier> =
  Effect.fn("Authentication.authenticate")(function* (token: string) {
    const keys = yield* KeyCache
    const jwt = yield* JwtVerifier
    if (token.startsWith("pa_")) {
      const found = yield* keys.lookup(hashKey(token)).pipe(
        // A key that cannot be looked up is no bad key: 503, never 401.
        Effect.catchTag("StorageError", (error) =>
          Effect.logError("authentication lookup failed", error).pipe(
            Effect.andThen(ApiError.fail("unavailable", "authentication is unavailable; try again shortly"))
          )
        )
      )
      return typeof found === "string" ? yield* rejected(found) : found
    }
    return yield* jwt
      .verify(token)
      .pipe(
        Effect.catchTag("JwtRejected", (error) =>
          error.unavailable === true
            ? Effect.logWarning("JWT keys are unavailable").pipe(
                Effect.annotateLogs({ reason: error.reason }),
                Effect.andThen(ApiError.fail("unavailable", "authentication is unavailable; try again shortly"))
              )
            : rejected(`jwt: ${error.reason}`)
        )
      )
  })

/** The middleware that turns a bearer token into a {@link Principal} allowed on the route. */
export const layer = Layer.effect(
  Authentication,
  Effect.gen(function* () {
    const services = yield* Effect.context<KeyCache | JwtVerifier | KeyUsage | Audit.Audit>()
    const usage = yield* KeyUsage
    const guards = yield* RequestGuards.RequestGuards
    const limits = yield* RateLimit.RateLimits
    return Authentication.of({
      bearer: (httpEffect, { credential, endpoint, group }) =>
        Effect.gen(function* () {
          const principal = yield* authenticate(Redacted.value(credential)).pipe(Effect.provide(services))
          yield* RequestLog.recordCaller({ tenant: principal.tenant, subject: actorOf(principal) })
          const route = `${group.identifier}.${endpoint.identifier}`
          if (!Authorization.permits(principal, route)) {
            return yield* Authorization.refuse(principal, route).pipe(Effect.provide(services))
          }
          yield* usage.used(principal, yield* ApiError.RequestId)
          const outcome = yield* limits.check(principal, RateLimit.routeClassOf(endpoint.method, endpoint.path))
          // On Node's response, so that answers the handlers write themselves (relays) carry them too.
          const request = yield* HttpServerRequest.HttpServerRequest
          Edge.setNodeHeaders(NodeHttpServerRequest.toServerResponse(request), outcome.headers)
          if (outcome.refusal !== undefined) {
            yield* RequestLog.recordRetryAfter(outcome.refusal.retryAfterSeconds)
            return yield* ApiError.fail(outcome.refusal.type, outcome.refusal.message)
          }
          yield* guardsOf(guards, principal)
          return yield* Effect.provideService(httpEffect, Principal, principal)
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
      keyId: actorOf(caller),
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
          budget_usd: null,
          prefix: prefixOf(key),
          expires_at: null,
          last_used_at: null,
          models: null,
          rate_limit_rpm: null,
          rate_limit_burst: null
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
