/**
 * Secrets at rest: AES-256-GCM (node:crypto) with a random 96-bit IV per value and its 128-bit
 * authentication tag checked on every read. A sealed value names the key that sealed it, so keys
 * rotate: `v1:<key id>:<iv>:<tag>:<ciphertext>`, each part base64url. The first key of the ring
 * seals; every key of the ring opens. Each value is bound to its place (`context`, e.g.
 * `tenant_provider_keys/acme/openai`) as additional authenticated data, so a sealed value copied
 * to another row does not open there.
 *
 * Where the keys come from (`security.secret_keys`, env `POLYAGENT_SECRET_KEYS`, a Redacted list
 * `id:base64key,…` of 32-byte keys):
 *
 * - configured: the list, first key sealing;
 * - not configured, embedded storage (SQLite): a key generated on first start in the data
 *   directory (`secret.key`, mode 0600) under the id `local`; with a configured list too, that
 *   file's key is kept as the last key of the ring (it opens, never seals), so values move to the
 *   configured key by the start-up rotation;
 * - not configured, PostgreSQL: no key. The server starts; what needs a secret (a tenant's provider
 *   key, a signing secret) fails with `SecretBoxError` `no_key`, which the edge answers with a clear
 *   503.
 *
 * A value that does not open (wrong key, tampered, malformed) is a typed `SecretBoxError`, never
 * the plain text and never a crash.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

/** Why a secret could not be sealed or opened. The message never holds the secret or a key. */
export class SecretBoxError extends Schema.TaggedError<SecretBoxError>()("SecretBoxError", {
  /**
   * `no_key`: no key is configured (PostgreSQL without `POLYAGENT_SECRET_KEYS`); `unknown_key`: the
   * value was sealed by a key the ring does not hold; `tampered`: the tag does not match (a wrong
   * key of the same id, a changed value or context); `malformed`: not a sealed value.
   */
  reason: Schema.Literals(["no_key", "unknown_key", "tampered", "malformed"])
}) {
  override get message(): string {
    switch (this.reason) {
      case "no_key":
        return "no secret key is configured: set POLYAGENT_SECRET_KEYS (security.secret_keys) to store secrets"
      case "unknown_key":
        return "the secret was sealed by a key this server does not hold"
      case "tampered":
        return "the secret does not authenticate: wrong key, or the stored value was changed"
      case "malformed":
        return "the stored secret is not a sealed value"
    }
  }
}

/** One key of the ring. */
export interface Key {
  /** `[A-Za-z0-9_-]{1,32}`, written into every value it seals. */
  readonly id: string
  /** 32 bytes. */
  readonly material: Redacted.Redacted<Uint8Array>
}

const VERSION = "v1"
const IV_BYTES = 12
const TAG_BYTES = 16
const KEY_BYTES = 32
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/

/** The id of the key generated in the data directory of an embedded server. */
export const localKeyId = "local"
/** The key file of an embedded server, in its data directory. */
export const keyFileName = "secret.key"

/**
 * Parses `id:base64key,…` (whitespace around entries ignored); the reason it cannot, else the
 * keys. Base64 or base64url; each key must be 32 bytes; ids unique.
 */
export const parseKeys = (text: string): { readonly keys: ReadonlyArray<Key> } | { readonly error: string } => {
  const keys: Array<Key> = []
  const entries = text
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "")
  if (entries.length === 0) return { error: "expected at least one key as id:base64key" }
  for (const [index, entry] of entries.entries()) {
    const colon = entry.indexOf(":")
    const id = colon === -1 ? "" : entry.slice(0, colon)
    if (!KEY_ID.test(id)) return { error: `entry ${index + 1}: expected id:base64key with an id of [A-Za-z0-9_-]` }
    if (keys.some((key) => key.id === id)) return { error: `entry ${index + 1}: key id "${id}" is given twice` }
    const material = Buffer.from(entry.slice(colon + 1), "base64")
    if (material.byteLength !== KEY_BYTES) {
      return { error: `entry ${index + 1} (key "${id}"): the key must be ${KEY_BYTES} bytes in base64` }
    }
    keys.push({ id, material: Redacted.make(new Uint8Array(material)) })
  }
  return { keys }
}

/** A new random key as `id:base64key`, as `POLYAGENT_SECRET_KEYS` takes it. */
export const generateKeyText = (id: string): string => `${id}:${randomBytes(KEY_BYTES).toString("base64")}`

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url")

/** Seals `plain` under `key`, bound to `context`. */
export const sealWith = (key: Key, plain: string, context: string): string => {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv("aes-256-gcm", Redacted.value(key.material), iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(Buffer.from(context, "utf8"))
  const ciphertext = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()])
  return `${VERSION}:${key.id}:${b64(iv)}:${b64(cipher.getAuthTag())}:${b64(ciphertext)}`
}

/** The id of the key that sealed `sealed`; undefined for a value that is not sealed. */
export const keyIdOf = (sealed: string): string | undefined => {
  const parts = sealed.split(":")
  return parts.length === 5 && parts[0] === VERSION ? parts[1] : undefined
}

/** Opens `sealed` with the first key of `keys` of its id. */
export const openWith = (
  keys: ReadonlyArray<Key>,
  sealed: string,
  context: string
): { readonly plain: string } | { readonly error: SecretBoxError["reason"] } => {
  const parts = sealed.split(":")
  if (parts.length !== 5 || parts[0] !== VERSION) return { error: "malformed" }
  const [, id, ivText = "", tagText = "", ciphertextText = ""] = parts
  const key = keys.find((candidate) => candidate.id === id)
  if (key === undefined) return { error: "unknown_key" }
  const iv = Buffer.from(ivText, "base64url")
  const tag = Buffer.from(tagText, "base64url")
  if (iv.byteLength !== IV_BYTES || tag.byteLength !== TAG_BYTES) return { error: "malformed" }
  try {
    const decipher = createDecipheriv("aes-256-gcm", Redacted.value(key.material), iv, { authTagLength: TAG_BYTES })
    decipher.setAAD(Buffer.from(context, "utf8"))
    decipher.setAuthTag(tag)
    const plain = Buffer.concat([decipher.update(Buffer.from(ciphertextText, "base64url")), decipher.final()])
    return { plain: plain.toString("utf8") }
  } catch {
    // node:crypto reports a failed tag check by throwing "Unsupported state or unable to authenticate data".
    return { error: "tampered" }
  }
}

/**
 * Seals and opens the secrets the server stores.
 *
 * When to use: for every secret written to the database (a tenant's provider key, a key's signing
 * secret): `seal` before writing, `open` after reading, with the same `context` naming the row.
 *
 * Details: `needsRotation` says a stored value was sealed by another key than the current one; the
 * stores re-seal such values in a pass when the server starts (see `TenantProviderKeys`, `KeyGuards`).
 *
 * Gotchas: without a key (PostgreSQL without `POLYAGENT_SECRET_KEYS`) both fail with `no_key`;
 * `configured` says so up front.
 */
export class SecretBox extends Context.Service<
  SecretBox,
  {
    /** Whether a key is there to seal with. */
    readonly configured: boolean
    /** The id of the key that seals; undefined without a key. */
    readonly currentKeyId: string | undefined
    readonly seal: (plain: Redacted.Redacted<string>, context: string) => Effect.Effect<string, SecretBoxError>
    readonly open: (sealed: string, context: string) => Effect.Effect<Redacted.Redacted<string>, SecretBoxError>
    /** Whether `sealed` was sealed by a key other than the current one (rotation re-seals it). */
    readonly needsRotation: (sealed: string) => boolean
  }
>()("@polyagent/runtime/SecretBox") {}

/** The box over `keys`, the first sealing; none: every seal and open fails with `no_key`. */
export const make = (keys: ReadonlyArray<Key>): SecretBox["Service"] => {
  const current = keys[0]
  return SecretBox.of({
    configured: current !== undefined,
    currentKeyId: current?.id,
    seal: (plain, context) =>
      current === undefined
        ? Effect.fail(new SecretBoxError({ reason: "no_key" }))
        : Effect.sync(() => sealWith(current, Redacted.value(plain), context)),
    open: (sealed, context) =>
      Effect.suspend(() => {
        if (current === undefined) return Effect.fail(new SecretBoxError({ reason: "no_key" }))
        const opened = openWith(keys, sealed, context)
        return "plain" in opened
          ? Effect.succeed(Redacted.make(opened.plain))
          : Effect.fail(new SecretBoxError({ reason: opened.error }))
      }),
    needsRotation: (sealed) => current !== undefined && keyIdOf(sealed) !== current.id
  })
}

/** Where the keys come from: the configured list, and the data directory of an embedded server. */
export interface Source {
  readonly configured: Option.Option<Redacted.Redacted<string>>
  /** The data directory when storage is embedded; undefined on PostgreSQL. */
  readonly dataDir: string | undefined
}

/** The key file could not be read or written; the message names the file, never its content. */
export class KeyFileError extends Schema.TaggedError<KeyFileError>()("KeyFileError", {
  path: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `secret key file ${this.path}: ${this.problem}`
  }
}

/**
 * The key of the data directory's key file; when there is none, a new one (0600) if `create`,
 * else nothing.
 */
const localKey = (dataDir: string, create: boolean): Effect.Effect<Key | undefined, KeyFileError> =>
  Effect.try({
    try: (): Key | undefined => {
      const path = join(dataDir, keyFileName)
      let text: string
      try {
        text = readFileSync(path, "utf8")
      } catch (error) {
        if (!(error instanceof Error && "code" in error && error.code === "ENOENT")) throw error
        if (!create) return undefined
        mkdirSync(dataDir, { recursive: true })
        text = generateKeyText(localKeyId)
        // `wx`: two processes racing on one data directory cannot both write one.
        writeFileSync(path, `${text}\n`, { mode: 0o600, flag: "wx" })
        chmodSync(path, 0o600)
      }
      const parsed = parseKeys(text)
      const key = "keys" in parsed ? parsed.keys[0] : undefined
      if (key === undefined) throw new Error("not a key written by PolyAgent")
      return key
    },
    catch: (error) =>
      new KeyFileError({
        path: join(dataDir, keyFileName),
        problem:
          error instanceof Error && error.message === "not a key written by PolyAgent" ? error.message : "unreadable"
      })
  })

/** The ring of `source` (see the module's description). */
export const keysOf = (source: Source): Effect.Effect<ReadonlyArray<Key>, KeyFileError> =>
  Effect.gen(function* () {
    const configured: ReadonlyArray<Key> = Option.match(source.configured, {
      onNone: () => [],
      // Validated when the configuration was loaded.
      onSome: (text) => {
        const parsed = parseKeys(Redacted.value(text))
        return "keys" in parsed ? parsed.keys : []
      }
    })
    if (source.dataDir === undefined) return configured
    const local = yield* localKey(source.dataDir, configured.length === 0)
    if (local === undefined || configured.some((key) => key.id === local.id)) return configured
    return [...configured, local]
  })

/** The box of `source`; fails when the data directory's key file cannot be read or written. */
export const layer = (source: Source): Layer.Layer<SecretBox, KeyFileError> =>
  Layer.effect(SecretBox, Effect.map(keysOf(source), make))

/** A box over a fresh random key, for tests. */
export const layerTest: Layer.Layer<SecretBox> = Layer.sync(SecretBox, () => {
  const parsed = parseKeys(generateKeyText("test"))
  return make("keys" in parsed ? parsed.keys : [])
})
