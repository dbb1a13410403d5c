/**
 * The keys of the configuration for secrets at rest, request signatures, IP allow-lists and
 * redaction: part of `AppConfig`'s closed schema (`security.secret_keys`, `security.signatures`,
 * `security.tenants`, `server.trusted_proxies`, `redaction`); `config/polyagent.yaml` documents
 * every key at its default.
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import * as IpAllowList from "../IpAllowList.ts"
import * as SecretBox from "../SecretBox.ts"
import { DurationSetting } from "./durationSetting.ts"

/** A list of addresses and CIDR ranges (IPv4 or IPv6). */
export const IpList = Schema.Array(Schema.String).check(
  Schema.makeFilter((entries) => {
    const invalid = IpAllowList.invalidEntries(entries)
    return invalid.length === 0
      ? undefined
      : `expected IP addresses or CIDR ranges; cannot read ${JSON.stringify(invalid)}`
  })
)

/** `security.secret_keys`: `id:base64key,…`, Redacted; the message never quotes it. */
export const SecretKeys = Schema.OptionFromNullOr(
  Schema.RedactedFromValue(
    Schema.String.check(
      Schema.makeFilter((text) => {
        const parsed = SecretBox.parseKeys(text)
        return "error" in parsed ? parsed.error : undefined
      })
    )
  )
)

const positiveDuration = DurationSetting.check(
  Schema.makeFilter((duration) => (Duration.toMillis(duration) > 0 ? undefined : "expected a duration above 0"))
)

/** The fields this part adds to `security`. */
export const securityFields = {
  secretKeys: SecretKeys,
  signatures: Schema.Struct({
    /** How far a signed request's timestamp may be from the server's clock, either way. */
    replayWindow: positiveDuration
  }).pipe(Schema.encodeKeys({ replayWindow: "replay_window" })),
  /** Per tenant: the addresses its requests may come from (absent: anywhere). */
  tenants: Schema.Record(
    Schema.String,
    Schema.Struct({ allowedIps: IpList }).pipe(Schema.encodeKeys({ allowedIps: "allowed_ips" }))
  )
}

/** Their YAML names. */
export const securityKeys = { secretKeys: "secret_keys" } as const

/** The `redaction` section. */
export const Redaction = Schema.Struct({
  /** Masks personal data in log lines (always on unless turned off here). */
  logs: Schema.Boolean,
  /** Masks it in what goes to providers too: prompts, relayed or converted. */
  providers: Schema.Boolean,
  /** Masks it in what is stored too: messages and memory facts. */
  storage: Schema.Boolean
})

/** Defaults, in YAML shape. */
export const defaults = {
  security: { secret_keys: null, signatures: { replay_window: "300s" }, tenants: {} },
  trustedProxies: [] as Array<string>,
  redaction: { logs: true, providers: false, storage: false }
}
