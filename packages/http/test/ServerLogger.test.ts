/**
 * ServerLogger: the two formats keep every event on one line whatever its values hold, put the
 * annotations where an operator's tools look for them, and the level filters.
 */
import { assert, describe, it } from "@effect/vitest"
import { Redaction } from "@polyagent/runtime"
import { Cause, Effect, Layer, Redacted, type Schema } from "effect"
import { HttpApi } from "effect/http-api"
import { Api } from "../src/Api.ts"
import { TestConsole } from "effect/testing"
import * as ServerLogger from "../src/ServerLogger.ts"

/** What `program` logs to stdout under the logger of `settings`. */
const logged = (settings: ServerLogger.Settings, program: Effect.Effect<void>) =>
  Effect.gen(function* () {
    const before = (yield* TestConsole.logLines).length
    yield* program
    return (yield* TestConsole.logLines).slice(before).map(String)
  }).pipe(Effect.provide(Layer.merge(ServerLogger.layer(settings), TestConsole.layer)))

const event = Effect.logInfo("request").pipe(
  Effect.annotateLogs({ method: "POST", route: "/v1/sessions/:id", status: 200, duration_ms: 1.25, request_id: "r-1" })
)

const levels = (lines: ReadonlyArray<string>) => lines.map((line) => JSON.parse(line).level)

describe("ServerLogger", () => {
  it.effect("text: time, level, message, then key=value", () =>
    Effect.gen(function* () {
      const [line] = yield* logged({ level: "info", format: "text" }, event)
      assert.match(
        line ?? "",
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO request method=POST route=\/v1\/sessions\/:id status=200 duration_ms=1.25 request_id=r-1$/
      )
    })
  )

  it.effect("text: a value with spaces, quotes, = or a line break is quoted, so the line never breaks", () =>
    Effect.gen(function* () {
      const lines = yield* logged(
        { level: "info", format: "text" },
        Effect.logWarning("two\nlines").pipe(
          Effect.annotateLogs({
            path: "/a b",
            note: 'say "hi"',
            pair: "a=b",
            multi: "x\ny",
            list: ["a", "b"],
            none: []
          })
        )
      )
      assert.lengthOf(lines, 1)
      const line = lines[0] ?? ""
      assert.notInclude(line, "\n")
      assert.include(line, ' WARN "two\\nlines" ')
      assert.include(line, 'path="/a b" note="say \\"hi\\"" pair="a=b" multi="x\\ny" list=a,b none=[]')
    })
  )

  it.effect("a failure's cause is one field on the same line, in both formats", () =>
    Effect.gen(function* () {
      const failing = Effect.logError("request failed", Cause.fail(new Error("boom")))
      const [text] = yield* logged({ level: "info", format: "text" }, failing)
      assert.match(text ?? "", / ERROR request failed cause="Error: boom\\n {4}at /)
      const [json] = yield* logged({ level: "info", format: "json" }, failing)
      const entry = JSON.parse(json ?? "")
      assert.match(entry.cause, /^Error: boom\n/)
    })
  )

  it.effect("json: one object per line, annotations as top-level fields", () =>
    Effect.gen(function* () {
      const [line] = yield* logged({ level: "info", format: "json" }, event)
      const entry = JSON.parse(line ?? "")
      assert.deepStrictEqual(Object.keys(entry), [
        "timestamp",
        "level",
        "message",
        "method",
        "route",
        "status",
        "duration_ms",
        "request_id"
      ])
      assert.strictEqual(entry.level, "info")
      assert.strictEqual(entry.message, "request")
      assert.strictEqual(entry.status, 200)
      assert.strictEqual(entry.duration_ms, 1.25)
    })
  )

  it.effect(
    "json: an annotation never replaces timestamp, level or message; odd values survive, secrets stay hidden",
    () =>
      Effect.gen(function* () {
        const [line] = yield* logged(
          { level: "info", format: "json" },
          Effect.logInfo("hello", { part: 2 }).pipe(
            Effect.annotateLogs({ level: "fake", message: "fake", big: 10n, secret: Redacted.make("hunter2") })
          )
        )
        const entry = JSON.parse(line ?? "")
        assert.strictEqual(entry.level, "info")
        assert.strictEqual(entry.message, 'hello {"part":2}')
        assert.strictEqual(entry.big, "10n")
        assert.notInclude(line ?? "", "hunter2")
      })
  )

  it.effect("the level filters", () =>
    Effect.gen(function* () {
      const all = Effect.all([Effect.logDebug("d"), Effect.logInfo("i"), Effect.logWarning("w"), Effect.logError("e")])
      assert.deepStrictEqual(levels(yield* logged({ level: "warn", format: "json" }, Effect.asVoid(all))), [
        "warn",
        "error"
      ])
      assert.deepStrictEqual(levels(yield* logged({ level: "debug", format: "json" }, Effect.asVoid(all))), [
        "debug",
        "info",
        "warn",
        "error"
      ])
    })
  )

  it.effect("masks personal data in messages, annotations and causes, and hides sensitive fields at any depth", () =>
    Effect.gen(function* () {
      const program = Effect.logWarning(
        "mail from ops@example.com",
        new Error("card 4111 1111 1111 1111 refused")
      ).pipe(
        Effect.annotateLogs({
          phone: "13800138000",
          api_key: "sk-canary-annotation",
          payload: { nested: { signing_secret: "pas_canary", note: "id 11010519491231002X" }, count: 3 }
        })
      )
      for (const format of ["text", "json"] as const) {
        const [line = ""] = yield* logged({ level: "info", format }, program)
        for (const secret of [
          "ops@example.com",
          "4111 1111",
          "13800138000",
          "sk-canary",
          "pas_canary",
          "11010519491231002X"
        ]) {
          assert.notInclude(line, secret, `${format}: ${line}`)
        }
        for (const marker of ["[email]", "[card]", "[phone]", "[redacted]", "[id]"])
          assert.include(line, marker, format)
      }
    })
  )

  it.effect("with redaction.logs false, keeps personal data but still hides sensitive fields", () =>
    Effect.gen(function* () {
      const lines = yield* Effect.gen(function* () {
        const before = (yield* TestConsole.logLines).length
        yield* Effect.logInfo("mail ops@example.com").pipe(Effect.annotateLogs({ api_key: "sk-canary" }))
        return (yield* TestConsole.logLines).slice(before).map(String)
      }).pipe(
        Effect.provide(
          Layer.merge(ServerLogger.layer({ level: "info", format: "text" }, { logs: false }), TestConsole.layer)
        )
      )
      assert.include(lines[0] ?? "", "ops@example.com")
      assert.notInclude(lines[0] ?? "", "sk-canary")
    })
  )
})

describe("ServerLogger and the API's sensitive fields", () => {
  it("hides every field the API marks sensitive", () => {
    const schemas: Array<Schema.Top> = []
    HttpApi.reflect(Api, {
      onGroup: () => {},
      onEndpoint: ({ endpoint }) => {
        for (const { schemas: payloads } of endpoint.payload.values()) {
          if (Array.isArray(payloads)) schemas.push(...payloads)
        }
        schemas.push(...endpoint.success)
      }
    })
    const tagged = Redaction.sensitiveKeysOf(schemas)
    assert.includeMembers([...tagged], ["api_key", "key", "signing_secret"])
    for (const key of tagged) assert.isTrue(ServerLogger.defaultMasking.sensitiveKeys.has(key), key)
  })
})
