/**
 * JWT bearer tokens, verified with `jose`: HS256 with a shared secret, RS256 and ES256 with a PEM
 * public key or the keys of a JWKS URL (fetched by jose's remote key set, cached, and looked up
 * by `kid` among those keys only). The algorithm comes from the server's allow-list, never the
 * token's say-so (`none` is never on it); `exp` and `sub` are required; `nbf`, `iss` and `aud`
 * are checked (the last two when configured) with a bounded clock skew. The `jku`, `x5u` and
 * `jwk` headers are ignored: no key is ever fetched from where a token points.
 *
 * Claims: `sub` is the subject, `tenant` the tenant (`default` when absent), `roles` an array in
 * which the highest known role wins (unknown roles are ignored; none: `user`).
 *
 * Settings that cannot work (a PEM that does not parse, an algorithm without a key) stop
 * start-up with a `ConfigError` naming the key.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AppConfig, Storage } from "@polyagent/runtime"
import * as Jose from "jose"
import { createPublicKey, type KeyObject } from "node:crypto"
import type { Principal } from "./Api.ts"

/** The `security.jwt` settings. */
export type Settings = AppConfig.AppConfigValue["security"]["jwt"]

/**
 * A token that does not verify; `reason` is for the server's debug log, never for the client.
 * `unavailable`: the JWKS could not be fetched, so the token could not be checked (503, not 401).
 */
export class JwtRejected extends Schema.TaggedError<JwtRejected>()("JwtRejected", {
  reason: Schema.String,
  unavailable: Schema.optionalKey(Schema.Boolean)
}) {}

/** Why jose refused a token, and whether it is the JWKS that could not be reached. */
const rejectionOf = (error: unknown): JwtRejected =>
  error instanceof Jose.errors.JOSEError
    ? new JwtRejected({ reason: `${error.code}: ${error.message}`, unavailable: error.code === "ERR_JWKS_TIMEOUT" })
    : // jose's own failures are JOSEErrors; anything else comes from fetching the JWKS.
      new JwtRejected({ reason: "the JWKS could not be fetched", unavailable: true })

/** How long a verified token is remembered at most (never past its `exp`). */
export const verifiedTtl = Duration.seconds(60)
/** At most this many verified tokens are remembered; the oldest is forgotten first. */
const verifiedCacheSize = 10_000

/**
 * The JWT verifier of the server.
 *
 * When to use: for a bearer token that is not an API key (`pa_…`).
 *
 * Details: `verify` checks a token and answers its caller; a token verified less than
 * {@link verifiedTtl} ago (and not expired) is answered from memory, which `cached` also reads
 * without an Effect (the fast lane's way).
 *
 * Gotchas: with no key configured, `enabled` is false and every token is rejected.
 */
export class JwtVerifier extends Context.Service<
  JwtVerifier,
  {
    readonly enabled: boolean
    readonly verify: (token: string) => Effect.Effect<Principal["Service"], JwtRejected>
    /** The caller of a token verified recently and valid at `now` (epoch ms), without verifying it again. */
    readonly cached: (token: string, now: number) => Principal["Service"] | undefined
  }
>()("@polyagent/http/JwtVerifier") {}

const TenantClaim = /^[A-Za-z0-9_-]{1,64}$/

/** The role of a token's `roles` claim: the highest known one, `user` when none is known. */
export const roleOf = (roles: ReadonlyArray<unknown>): Storage.Role => {
  let best: Storage.Role = "user"
  for (const role of roles) {
    if (
      (role === "admin" || role === "builder" || role === "user") &&
      Storage.roleRank[role] > Storage.roleRank[best]
    ) {
      best = role
    }
  }
  return best
}

/** The caller a verified payload stands for, or why it stands for none. */
export const principalOf = (payload: Jose.JWTPayload): Principal["Service"] | string => {
  const { sub } = payload
  if (typeof sub !== "string" || sub.length === 0 || sub.length > 256) return "sub is missing or not a string"
  const tenant = payload["tenant"] ?? "default"
  if (typeof tenant !== "string" || !TenantClaim.test(tenant)) return "tenant is not a tenant id"
  const roles = payload["roles"] ?? []
  if (!Array.isArray(roles)) return "roles is not an array"
  return { kind: "jwt", tenant, subject: sub, role: roleOf(roles), keyId: null, models: null, rateLimit: null }
}

/** The algorithm a PEM public key verifies, or why it verifies none. */
const algorithmOfKey = (key: KeyObject): "RS256" | "ES256" | string => {
  if (key.asymmetricKeyType === "rsa") {
    return (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048 ? "RS256" : "an RSA key of at least 2048 bits"
  }
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return "ES256"
  return "an RSA (RS256) or P-256 EC (ES256) public key"
}

const configError = (message: string) => new AppConfig.ConfigError({ message })

/** The verifier of `settings`; fails with the key whose setting cannot work. */
export const make = Effect.fn("Jwt.make")(function* (settings: Settings) {
  const secret = Option.map(settings.secret, (value) => new TextEncoder().encode(Redacted.value(value)))
  let publicKey: { readonly key: KeyObject; readonly algorithm: "RS256" | "ES256" } | undefined
  if (Option.isSome(settings.publicKey)) {
    const pem = settings.publicKey.value
    const parsed = yield* Effect.try({
      try: () => createPublicKey({ key: pem, format: "pem" }),
      catch: () => configError("security.jwt.public_key (JWT_PUBLIC_KEY): expected a PEM public key")
    })
    const algorithm = algorithmOfKey(parsed)
    if (algorithm !== "RS256" && algorithm !== "ES256") {
      return yield* configError(`security.jwt.public_key (JWT_PUBLIC_KEY): expected ${algorithm}`)
    }
    publicKey = { key: parsed, algorithm }
  }
  const jwks = Option.map(settings.jwksUrl, (url) =>
    Jose.createRemoteJWKSet(new URL(url), { cacheMaxAge: 600_000, cooldownDuration: 30_000, timeoutDuration: 5_000 })
  )

  const keyed = new Set<string>([
    ...(Option.isSome(secret) ? ["HS256"] : []),
    ...(publicKey === undefined ? [] : [publicKey.algorithm]),
    ...(Option.isSome(jwks) ? ["RS256", "ES256"] : [])
  ])
  const enabled = keyed.size > 0
  if (!enabled) {
    const set = (["issuer", "audience"] as const).find((key) => Option.isSome(settings[key]))
    if (set !== undefined || settings.algorithms.length > 0) {
      return yield* configError(
        `security.jwt.${set ?? "algorithms"}: no JWT key is configured (security.jwt.secret, public_key or jwks_url)`
      )
    }
  }
  for (const algorithm of settings.algorithms) {
    if (!keyed.has(algorithm)) {
      const needs = algorithm === "HS256" ? "security.jwt.secret" : "a matching security.jwt.public_key or jwks_url"
      return yield* configError(`security.jwt.algorithms: ${algorithm} has no key; it needs ${needs}`)
    }
  }
  const algorithms = settings.algorithms.length > 0 ? [...settings.algorithms] : [...keyed]

  // jose calls this only for an algorithm of the allow-list; each algorithm has its one key source.
  const getKey: Jose.JWTVerifyGetKey = (header, token) => {
    if (header.alg === "HS256" && Option.isSome(secret)) return secret.value
    if (publicKey !== undefined && header.alg === publicKey.algorithm) return publicKey.key
    if (Option.isSome(jwks)) return jwks.value(header, token)
    return Promise.reject(new Error(`no key for ${header.alg}`))
  }
  const options = {
    algorithms,
    clockTolerance: Duration.toSeconds(settings.clockSkew),
    requiredClaims: ["exp", "sub"],
    ...Option.match(settings.issuer, { onNone: () => ({}), onSome: (issuer) => ({ issuer }) }),
    ...Option.match(settings.audience, { onNone: () => ({}), onSome: (audience) => ({ audience }) })
  }

  // Insertion order is age: the first entry is the oldest.
  const verified = new Map<string, { readonly principal: Principal["Service"]; readonly until: number }>()
  const cached = (token: string, now: number) => {
    const entry = verified.get(token)
    if (entry !== undefined && entry.until > now) return entry.principal
    verified.delete(token)
    return undefined
  }
  const ttl = Duration.toMillis(verifiedTtl)

  const verify = (token: string): Effect.Effect<Principal["Service"], JwtRejected> =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const known = cached(token, now)
      if (known !== undefined) return known
      if (!enabled) return yield* new JwtRejected({ reason: "JWT verification is not configured" })
      const { payload } = yield* Effect.tryPromise({
        try: () => Jose.jwtVerify(token, getKey, { ...options, currentDate: new Date(now) }),
        catch: rejectionOf
      })
      const principal = principalOf(payload)
      if (typeof principal === "string") return yield* new JwtRejected({ reason: principal })
      if (verified.size >= verifiedCacheSize) verified.delete(verified.keys().next().value ?? "")
      verified.set(token, { principal, until: Math.min(now + ttl, (payload.exp ?? 0) * 1000) })
      return principal
    })

  return JwtVerifier.of({ enabled, verify, cached })
})

/** The verifier of the `security.jwt` settings. */
export const layer = (settings: Settings): Layer.Layer<JwtVerifier, AppConfig.ConfigError> =>
  Layer.effect(JwtVerifier, make(settings))
