/**
 * The `security:` and `audit:` sections of the configuration: the bootstrap admin key, how JWTs
 * are verified (`security.jwt`), and how often a key's use is audited. Part of `AppConfig`'s
 * closed schema; `config/polyagent.yaml` documents every key at its default. Whether the JWT
 * settings fit together (a PEM that parses, algorithms that match the keys) is checked when the
 * verifier is built (`@polyagent/http`'s `Jwt`), which stops start-up naming the key.
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import { DurationSetting } from "./durationSetting.ts"
import * as SecretsConfig from "./secretsConfig.ts"

const Secret = <S extends Schema.Codec<string>>(value: S) => Schema.OptionFromNullOr(Schema.RedactedFromValue(value))
const HttpUrl = Schema.String.check(Schema.isPattern(/^https?:\/\/\S+$/, { expected: "an http(s) URL" }))

/** The JWT algorithms PolyAgent verifies; `none` is never one of them. */
export const JwtAlgorithm = Schema.Literals(["HS256", "RS256", "ES256"])
export type JwtAlgorithm = typeof JwtAlgorithm.Type

/** The most clock skew a JWT's `exp` and `nbf` are given. */
export const maxClockSkew = Duration.minutes(5)

const ClockSkew = DurationSetting.check(
  Schema.makeFilter((skew) =>
    Duration.isGreaterThan(skew, maxClockSkew) ? "expected a duration of at most 5 minutes" : undefined
  )
)

/** `security.jwt`: JWT verification; off while no key (`secret`, `public_key`, `jwks_url`) is set. */
export const Jwt = Schema.Struct({
  /** HS256's shared secret (env `JWT_SECRET`). */
  secret: Secret(Schema.String.check(Schema.isMinLength(32, { expected: "a secret of at least 32 characters" }))),
  /** A PEM public key (SPKI) for RS256 or ES256 (env `JWT_PUBLIC_KEY`). */
  publicKey: Schema.OptionFromNullOr(Schema.NonEmptyString),
  /** A JWKS URL for RS256 and ES256 keys chosen by `kid` (env `JWT_JWKS_URL`). */
  jwksUrl: Schema.OptionFromNullOr(HttpUrl),
  /** The required `iss` (env `JWT_ISSUER`); null: not checked. */
  issuer: Schema.OptionFromNullOr(Schema.NonEmptyString),
  /** The required `aud` (env `JWT_AUDIENCE`); null: not checked. */
  audience: Schema.OptionFromNullOr(Schema.NonEmptyString),
  /** The algorithms accepted; empty: those of the configured keys. */
  algorithms: Schema.Array(JwtAlgorithm),
  /** Leeway for `exp` and `nbf` (at most 5 minutes). */
  clockSkew: ClockSkew
}).pipe(Schema.encodeKeys({ publicKey: "public_key", jwksUrl: "jwks_url", clockSkew: "clock_skew" }))

/** `security`. */
export const Security = Schema.Struct({
  adminKey: Secret(
    Schema.String.check(
      Schema.isPattern(/^pa_\S{21,}$/, { expected: 'a key starting with "pa_", at least 24 characters, no spaces' })
    )
  ),
  jwt: Jwt,
  ...SecretsConfig.securityFields
}).pipe(Schema.encodeKeys({ adminKey: "admin_key", ...SecretsConfig.securityKeys }))

/** `audit`: what the audit log records besides every admin action. */
export const Audit = Schema.Struct({
  /** The share of requests whose key use is recorded (`key.use`), 0 to 1. */
  sampleKeyUse: Schema.Finite.check(
    Schema.isBetween({ minimum: 0, maximum: 1 }, { expected: "a number between 0 and 1" })
  )
}).pipe(Schema.encodeKeys({ sampleKeyUse: "sample_key_use" }))

/** The defaults of both sections, in YAML shape. */
export const securityDefaults: typeof Security.Encoded = {
  admin_key: null,
  jwt: {
    secret: null,
    public_key: null,
    jwks_url: null,
    issuer: null,
    audience: null,
    algorithms: [],
    clock_skew: "30s"
  },
  ...SecretsConfig.defaults.security
}
export const auditDefaults: typeof Audit.Encoded = { sample_key_use: 0.01 }
