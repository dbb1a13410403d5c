/** Secrets at rest: round trips, rotation between keys, and values that do not open. */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { mkdtempSync, readFileSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as SecretBox from "../src/SecretBox.ts"

const keyText = (id: string) => SecretBox.generateKeyText(id)
const ring = (text: string) => {
  const parsed = SecretBox.parseKeys(text)
  if ("error" in parsed) throw new Error(parsed.error)
  return parsed.keys
}
const boxOf = (text: string) => SecretBox.make(ring(text))
const secret = Redacted.make("sk-canary-0123456789abcdef")
const context = "tenant_provider_keys/acme/openai"

const failureReason = <A>(effect: Effect.Effect<A, SecretBox.SecretBoxError>) =>
  Effect.map(Effect.flip(effect), (error) => error.reason)

describe("SecretBox", () => {
  it.effect("seals a value that opens to the same plain text, never containing it", () =>
    Effect.gen(function* () {
      const box = boxOf(keyText("k1"))
      const sealed = yield* box.seal(secret, context)
      assert.notInclude(sealed, Redacted.value(secret))
      assert.match(sealed, /^v1:k1:[\w-]{16}:[\w-]{22}:[\w-]+$/)
      assert.strictEqual(Redacted.value(yield* box.open(sealed, context)), Redacted.value(secret))
      // A random IV per value: the same secret seals differently each time.
      assert.notStrictEqual(yield* box.seal(secret, context), sealed)
    })
  )

  it.effect("opens values of an older key after rotation, and says they need re-sealing", () =>
    Effect.gen(function* () {
      const old = keyText("old")
      const sealed = yield* boxOf(old).seal(secret, context)
      const rotated = boxOf(`${keyText("new")},${old}`)
      assert.strictEqual(Redacted.value(yield* rotated.open(sealed, context)), Redacted.value(secret))
      assert.isTrue(rotated.needsRotation(sealed))
      const resealed = yield* rotated.seal(secret, context)
      assert.strictEqual(SecretBox.keyIdOf(resealed), "new")
      assert.isFalse(rotated.needsRotation(resealed))
    })
  )

  it.effect("refuses a tampered value, another row's value, a wrong key and no key, as typed errors", () =>
    Effect.gen(function* () {
      const box = boxOf(keyText("k1"))
      const sealed = yield* box.seal(secret, context)
      const parts = sealed.split(":")
      const flipped = `${parts.slice(0, 4).join(":")}:${(parts[4] ?? "").startsWith("A") ? "B" : "A"}${(parts[4] ?? "").slice(1)}`
      assert.strictEqual(yield* failureReason(box.open(flipped, context)), "tampered")
      assert.strictEqual(yield* failureReason(box.open(sealed, "tenant_provider_keys/other/openai")), "tampered")
      // The same id with another key: the tag does not authenticate.
      assert.strictEqual(yield* failureReason(boxOf(keyText("k1")).open(sealed, context)), "tampered")
      assert.strictEqual(yield* failureReason(boxOf(keyText("k2")).open(sealed, context)), "unknown_key")
      assert.strictEqual(yield* failureReason(box.open("sk-plain-text", context)), "malformed")
      assert.strictEqual(yield* failureReason(box.open("v1:k1:x:y:z", context)), "malformed")
      const none = SecretBox.make([])
      assert.strictEqual(yield* failureReason(none.seal(secret, context)), "no_key")
      assert.strictEqual(yield* failureReason(none.open(sealed, context)), "no_key")
      const error = yield* Effect.flip(box.open(flipped, context))
      assert.notInclude(error.message, Redacted.value(secret))
    })
  )

  it("parses key lists and refuses bad ones without quoting them", () => {
    assert.lengthOf(ring(` ${keyText("a")} , ${keyText("b")} `), 2)
    const short = SecretBox.parseKeys("a:c2hvcnQ=")
    assert.isTrue("error" in short && short.error.includes("32 bytes") && !short.error.includes("c2hvcnQ="))
    assert.isTrue("error" in SecretBox.parseKeys(`${keyText("a")},${keyText("a")}`))
    assert.isTrue("error" in SecretBox.parseKeys("no-colon"))
    assert.isTrue("error" in SecretBox.parseKeys(""))
  })

  it.effect("generates a 0600 key file in the data directory once, and keeps it as a decrypt-only key", () =>
    Effect.gen(function* () {
      const dataDir = mkdtempSync(join(tmpdir(), "secretbox-"))
      const first = yield* SecretBox.keysOf({ configured: Option.none(), dataDir })
      const file = join(dataDir, SecretBox.keyFileName)
      assert.strictEqual(statSync(file).mode & 0o777, 0o600)
      assert.deepStrictEqual(
        first.map((key) => key.id),
        [SecretBox.localKeyId]
      )
      const sealed = yield* SecretBox.make(first).seal(secret, context)
      const again = yield* SecretBox.keysOf({ configured: Option.none(), dataDir })
      assert.strictEqual(Redacted.value(yield* SecretBox.make(again).open(sealed, context)), Redacted.value(secret))
      const text = readFileSync(file, "utf8")
      // With a configured key: it seals, the file's key still opens (then rotation moves values).
      const configured = yield* SecretBox.keysOf({ configured: Option.some(Redacted.make(keyText("env"))), dataDir })
      assert.deepStrictEqual(
        configured.map((key) => key.id),
        ["env", SecretBox.localKeyId]
      )
      assert.strictEqual(
        Redacted.value(yield* SecretBox.make(configured).open(sealed, context)),
        Redacted.value(secret)
      )
      assert.strictEqual(readFileSync(file, "utf8"), text)
      // PostgreSQL without a configured key: no key at all.
      assert.lengthOf(yield* SecretBox.keysOf({ configured: Option.none(), dataDir: undefined }), 0)
    })
  )

  it.effect("a configured server without a key file does not create one", () =>
    Effect.gen(function* () {
      const dataDir = mkdtempSync(join(tmpdir(), "secretbox-"))
      yield* SecretBox.keysOf({ configured: Option.some(Redacted.make(keyText("env"))), dataDir })
      const exit = yield* Effect.exit(Effect.try(() => statSync(join(dataDir, SecretBox.keyFileName))))
      assert.isTrue(Exit.isFailure(exit))
    })
  )
})
