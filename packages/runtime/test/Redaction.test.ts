/** The redaction policy: each kind of personal data masked, ordinary numbers left alone, and its cost. */
import { assert, describe, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import * as Redaction from "../src/Redaction.ts"

const masked: ReadonlyArray<readonly [string, string]> = [
  ["mail alice.smith+tag@example.co.uk now", "mail [email] now"],
  ["call +1 415 555 2671 today", "call [phone] today"],
  ["call +44 20 7946 0958", "call [phone]"],
  ["手机 13800138000 联系", "手机 [phone] 联系"],
  ["mobile 138-0013-8000.", "mobile [phone]."],
  ["mobile 8613912345678", "mobile [phone]"],
  ["id 11010519491231002X ok", "id [id] ok"],
  ["身份证 440308199901011234", "身份证 [id]"],
  ["ssn 123-45-6789", "ssn [id]"],
  ["visa 4111 1111 1111 1111 exp", "visa [card] exp"],
  ["mc 5500-0000-0000-0004", "mc [card]"],
  ["amex 378282246310005", "amex [card]"],
  ["unionpay 6212345678901232", "unionpay [card]"],
  ["two: bob@corp.io and 4012888888881881", "two: [email] and [card]"]
]

const untouched: ReadonlyArray<string> = [
  // Luhn-invalid card numbers.
  "card 4111 1111 1111 1112",
  "card 5500000000000005",
  // A Chinese id with a wrong check digit, and one too short.
  "id 110105194912310021",
  "id 11010519491231002",
  // Ordinary numbers, dates, times, ids and durations.
  "2026-12-03T14:10:21.160Z INFO request method=POST route=/v1/chat status=200 duration_ms=1.52",
  "request_id=req_4111111111111111aB key_id=key_13800138000x",
  "epoch 1733212345678 and 1733212345",
  "pi 3.14159265358979",
  "order 1234567 shipped 2026-12-03",
  "ssn-like 000-12-3456 and 666-12-3456 and 123-00-4567",
  "version 12.4.1 port 8080 count 1000000",
  "phone-ish +12 34"
]

describe("Redaction", () => {
  it("masks e-mails, phones, national ids and card numbers", () => {
    for (const [input, expected] of masked) assert.strictEqual(Redaction.redactText(input), expected, input)
  })

  it("leaves Luhn-invalid numbers, bad check digits and ordinary numbers alone", () => {
    for (const input of untouched) assert.strictEqual(Redaction.redactText(input), input, input)
  })

  it("checks China's resident id check digit and the Luhn digit", () => {
    assert.isTrue(Redaction.isChinaResidentId("11010519491231002X"))
    assert.isFalse(Redaction.isChinaResidentId("110105194912310021"))
    assert.isTrue(Redaction.luhn("79927398713"))
    assert.isFalse(Redaction.luhn("79927398710"))
  })

  it("finds fields marked sensitive in schemas, and hides them in logged values at any depth", () => {
    const Payload = Schema.Struct({
      api_key: Redaction.sensitive(Schema.String),
      nested: Schema.optional(Schema.Struct({ pass_phrase: Redaction.sensitive(Schema.String) })),
      base_url: Schema.optional(Schema.String)
    })
    const keys = Redaction.SensitiveKeys([Payload])
    assert.isTrue(keys.has("api_key") && keys.has("pass_phrase") && keys.has("signing_secret"))
    assert.isFalse(keys.has("base_url"))
    const logged = Redaction.redactValue(
      { api_key: "sk-1", nested: { pass_phrase: "x", note: "me@x.org" }, list: [{ api_key: "sk-2" }], base_url: "u" },
      keys
    )
    assert.deepStrictEqual(logged, {
      api_key: Redaction.hidden,
      nested: { pass_phrase: Redaction.hidden, note: "[email]" },
      list: [{ api_key: Redaction.hidden }],
      base_url: "u"
    })
  })

  it("costs little on a typical log line with nothing to mask", () => {
    const line =
      "request method=POST route=/v1/chat/completions status=200 duration_ms=12.34 request_id=req_9f8e7d6c5b4a3f2e1d0c tenant=default key_id=key_0a1b2c3d4e5f6a7b model=gpt-4o-mini"
    const rounds = 200_000
    for (let i = 0; i < 10_000; i++) Redaction.redactText(line)
    const start = process.hrtime.bigint()
    for (let i = 0; i < rounds; i++) Redaction.redactText(line)
    const nsPerLine = Number(process.hrtime.bigint() - start) / rounds
    console.log(`Redaction.redactText: ${nsPerLine.toFixed(0)} ns per typical line`)
    // Generous bound for a loaded 2-core machine; the figure itself is printed for the report.
    assert.isBelow(nsPerLine, 20_000)
  })
})
