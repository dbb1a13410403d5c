/**
 * RequestLog: the fields of a request's line and its level, and the route it names (`Edge.routeOf`):
 * the route's pattern, never the ids in a path, and a bounded path for an unknown route.
 */
import { assert, describe, it } from "@effect/vitest"
import { Array as Arr, Effect, Logger, References } from "effect"
import * as Edge from "../src/Edge.ts"
import * as RequestLog from "../src/RequestLog.ts"

const logsOf = (effect: Effect.Effect<void>) =>
  Effect.gen(function* () {
    const lines: Array<Record<string, unknown>> = []
    const capture = Logger.make(({ logLevel, message, fiber }) => {
      lines.push({
        level: logLevel,
        message: Arr.ensure(message)[0],
        ...fiber.getRef(References.CurrentLogAnnotations)
      })
    })
    yield* effect.pipe(Effect.provide(Logger.layer([capture])))
    return lines
  })

const entry = (status: number, facts?: RequestLog.Facts): RequestLog.Entry => ({
  method: "POST",
  route: "/v1/chat",
  status,
  startedAt: 1_000_000n,
  endedAt: 2_534_567n,
  requestId: "req-1",
  facts
})

describe("RequestLog", () => {
  it.effect("writes the request's fields, the caller and model when known, at info below 500", () =>
    Effect.gen(function* () {
      const [line] = yield* logsOf(RequestLog.write(entry(200, new RequestLog.Facts("acme", "key_1", "gpt-4o-mini"))))
      assert.deepStrictEqual(line, {
        level: "Info",
        message: "request",
        method: "POST",
        route: "/v1/chat",
        status: 200,
        duration_ms: 1.53,
        request_id: "req-1",
        tenant: "acme",
        key_id: "key_1",
        model: "gpt-4o-mini"
      })
      const [anonymous] = yield* logsOf(RequestLog.write(entry(401, new RequestLog.Facts())))
      assert.notProperty(anonymous, "tenant")
      assert.notProperty(anonymous, "key_id")
      assert.notProperty(anonymous, "model")
    })
  )

  it.effect("writes a 5xx answer at warn", () =>
    Effect.gen(function* () {
      const [line] = yield* logsOf(RequestLog.write(entry(502)))
      assert.strictEqual(line?.["level"], "Warn")
    })
  )

  it.effect("records the caller and the model only inside a request", () =>
    Effect.gen(function* () {
      const facts = new RequestLog.Facts()
      yield* RequestLog.recordCaller({ tenant: "acme", subject: "key_9" }).pipe(
        Effect.andThen(RequestLog.recordModel("local")),
        Effect.provideService(RequestLog.CurrentFacts, facts)
      )
      assert.deepStrictEqual({ ...facts }, { tenant: "acme", keyId: "key_9", model: "local", retryAfter: undefined })
      // Outside a request there is nothing to record into, and nothing fails.
      yield* RequestLog.recordModel("local")
    })
  )

  it("names the route by its pattern", () => {
    assert.strictEqual(Edge.routeOf("POST", "/v1/chat"), "/v1/chat")
    assert.strictEqual(Edge.routeOf("GET", "/v1/sessions/sess_123?x=1"), "/v1/sessions/:id")
    assert.strictEqual(Edge.routeOf("DELETE", "/v1/agents/agt_1"), "/v1/agents/:id")
    // A wrong method still names the route it aimed at.
    assert.strictEqual(Edge.routeOf("PUT", "/v1/sessions/sess_123"), "/v1/sessions/:id")
    assert.strictEqual(Edge.routeOf("GET", "/docs"), "/docs")
  })

  it("names an unknown route by its path, without the query, bounded", () => {
    assert.strictEqual(Edge.routeOf("GET", "/nope/42?token=secret"), "/nope/42")
    const long = Edge.routeOf("GET", `/${"a".repeat(500)}`)
    assert.strictEqual(long, `/${"a".repeat(RequestLog.maxPathLength - 1)}…`)
  })
})
