/**
 * The fast lane in front of the HTTP stack: which requests it serves (a verified key, a valid
 * body, a model with a relay) and that every other request reaches the stack with its body
 * intact; how it answers relayed answers, failures and streams; that a client going away
 * interrupts the relay; and that it logs the requests it serves, as the stack would.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { LocalModel } from "@polyagent/providers"
import { AppConfig, ModelCatalog, ModelRouter } from "@polyagent/runtime"
import { Array as Arr, Context, Deferred, Effect, Exit, Layer, Logger, References, Scope, Stream } from "effect"
import { Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as Authentication from "../src/Authentication.ts"
import * as Cors from "../src/Cors.ts"
import * as FastLane from "../src/FastLane.ts"
import * as Jwt from "../src/Jwt.ts"
import * as KeyUsage from "../src/KeyUsage.ts"
import * as RequestGuards from "../src/RequestGuards.ts"
import { Listener } from "../src/Listener.ts"
import * as RateLimit from "../src/RateLimit.ts"
import { Readiness } from "../src/Readiness.ts"

const verifiedKey = "pa_verified"
const relayed: Array<{ readonly body: ModelCatalog.RelayBody; readonly requestId: string }> = []
const interrupted = Effect.runSync(Deferred.make<void>())

const rateLimited = new ModelCatalog.ModelError({
  model: "relayed",
  provider: "fake",
  reason: "rate_limited",
  retryable: true,
  retry_after_ms: 2500
})

/** Answers by the last user message: `limit` fails, `hang` never answers, else an echo. */
const relay: ModelCatalog.Relay<ModelCatalog.ModelError> = {
  complete: (body, requestId) =>
    Effect.suspend(() => {
      relayed.push({ body, requestId })
      const text = JSON.stringify(body.messages)
      if (text.includes("limit")) return Effect.fail(rateLimited)
      if (text.includes("hang")) return Effect.onInterrupt(Effect.never, () => Deferred.succeed(interrupted, undefined))
      return Effect.succeed(new TextEncoder().encode(JSON.stringify({ echo: body })))
    }),
  stream: (body) =>
    JSON.stringify(body.messages).includes("limit")
      ? Stream.fail(rateLimited)
      : Stream.make(new TextEncoder().encode('data: {"n":1}\n\n')).pipe(Stream.concat(Stream.fail(rateLimited)))
}

const catalog = Layer.effect(
  ModelCatalog.ModelCatalog,
  Effect.map(LocalModel.make(), (languageModel) =>
    ModelCatalog.make(
      [
        { info: LocalModel.info, languageModel },
        { info: new ModelCatalog.ModelInfo({ ...LocalModel.info, id: "relayed" }), languageModel, relay }
      ],
      "local"
    )
  )
)

const keys = Layer.succeed(
  Authentication.KeyCache,
  Authentication.KeyCache.of({
    cached: (hash) =>
      hash === Authentication.hashKey(verifiedKey)
        ? { kind: "key", tenant: "t", subject: "key_1", role: "user", keyId: "key_1", models: null, rateLimit: null }
        : undefined,
    lookup: () => Effect.die("not used by the lane"),
    forget: () => {}
  })
)

/** Whether storage is up, as the lane sees it; a test turns it down. */
let storageUp = true
const readiness = Layer.succeed(Readiness, Readiness.of({ isUp: () => storageUp, down: Effect.never }))

/** The log lines written by the lane: the message, then the annotations. */
const logged: Array<Readonly<Record<string, unknown>>> = []
const capture = Logger.make(({ message, fiber }) => {
  logged.push({ message: Arr.ensure(message)[0], ...fiber.getRef(References.CurrentLogAnnotations) })
})
const linesOf = (requestId: string) =>
  logged.filter((line) => line["message"] === "request" && line["request_id"] === requestId)

/** The lines of `requestId` once there are any (the lane logs once the answer is written). */
const waitForLines = async (requestId: string) => {
  const deadline = Date.now() + 2_000
  while (linesOf(requestId).length === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return linesOf(requestId)
}

const ask = (content: string, extra: object = {}) =>
  JSON.stringify({ model: "relayed", messages: [{ role: "user", content }], ...extra })

describe("FastLane", () => {
  let server: Server
  let url = ""
  // What reached the stack behind the lane: method, URL and the body as it read it.
  const stack: Array<string> = []

  const scope = Effect.runSync(Scope.make())

  beforeAll(async () => {
    const context = await Effect.runPromise(
      Layer.buildWithScope(
        FastLane.layer({ bodyLimit: 1000, cors: Cors.make([]) }).pipe(
          Layer.provideMerge(Listener.layer()),
          Layer.provide([
            // One call per request: these tests are about the lane, not retries.
            ModelRouter.layerTest({ retry: { ...ModelRouter.defaultRetry, maxAttempts: 1 } }).pipe(
              Layer.provide(catalog),
              Layer.orDie
            ),
            keys,
            readiness,
            RequestGuards.layerNone,
            RateLimit.layerUnlimited,
            Jwt.layer(Effect.runSync(AppConfig.make()).security.jwt).pipe(Layer.orDie),
            Layer.succeed(KeyUsage.KeyUsage, KeyUsage.KeyUsage.of({ used: () => Effect.void })),
            Logger.layer([capture])
          ])
        ),
        scope
      )
    )
    const listening = Context.get(context, Listener).server
    if (!(listening instanceof Server)) throw new Error("the listener is not a node:http server")
    server = listening
    server.on("request", (request, response) => {
      let body = ""
      request.on("data", (chunk: Buffer) => (body += chunk.toString()))
      request.on("end", () => {
        stack.push(`${request.method} ${request.url} ${body}`)
        response.end("stack")
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  afterAll(async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  const post = (body: string, headers: Record<string, string> = {}, signal?: AbortSignal) =>
    fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", authorization: `Bearer ${verifiedKey}`, ...headers },
      ...(signal === undefined ? {} : { signal })
    })

  it("relays a verified request with the client's fields, under the client's request id", async () => {
    const answer = await post(ask("hi", { seed: 3 }), { "x-request-id": "client-7" })
    assert.strictEqual(answer.status, 200)
    assert.strictEqual(answer.headers.get("x-request-id"), "client-7")
    assert.deepStrictEqual(((await answer.json()) as { echo: unknown }).echo, JSON.parse(ask("hi", { seed: 3 })))
    assert.strictEqual(relayed.at(-1)?.requestId, "client-7")

    const ours = await post(ask("hi"), { "x-request-id": "not a valid id!" })
    assert.match(ours.headers.get("x-request-id") ?? "", /^req_[0-9A-Za-z]{22}$/)
    assert.strictEqual(stack.length, 0)
  })

  it("hands every other request to the stack, body intact", async () => {
    const cases: ReadonlyArray<readonly [string, Record<string, string>]> = [
      [ask("hi"), { authorization: "Bearer pa_unverified" }],
      [ask("hi"), { authorization: "Basic x" }],
      [ask("hi"), { "content-type": "text/plain" }],
      ["{not json", {}],
      [JSON.stringify({ model: "relayed", messages: [] }), {}],
      [JSON.stringify({ model: "agent:relayed", messages: [{ role: "user", content: "hi" }] }), {}],
      [ask("x".repeat(1000)), {}]
    ]
    for (const [body, headers] of cases) {
      const answer = await post(body, headers)
      assert.strictEqual(await answer.text(), "stack")
      assert.strictEqual(stack.at(-1), `POST /v1/chat/completions ${body}`)
    }
    await fetch(`${url}/v1/models`)
    assert.strictEqual(stack.at(-1), "GET /v1/models ")
  })

  it("serves a model without a relay too, converted, as the stack would", async () => {
    const body = JSON.stringify({ model: "local", messages: [{ role: "user", content: "hi" }] })
    const answer = await post(body)
    assert.strictEqual(answer.status, 200)
    assert.strictEqual(answer.headers.get("x-polyagent-model"), "local")
    const completion = (await answer.json()) as { object: string; model: string; choices: Array<unknown> }
    assert.strictEqual(completion.object, "chat.completion")
    assert.strictEqual(completion.model, "local")
    assert.notStrictEqual(stack.at(-1), `POST /v1/chat/completions ${body}`)
  })

  it("hands relays to the stack while storage is down, where they answer as everything else does", async () => {
    storageUp = false
    try {
      const answer = await post(ask("hi"))
      assert.strictEqual(await answer.text(), "stack")
      assert.strictEqual(stack.at(-1), `POST /v1/chat/completions ${ask("hi")}`)
    } finally {
      storageUp = true
    }
  })

  it("answers a failed relay with the envelope, a rate limit with Retry-After, streamed or not", async () => {
    for (const extra of [{}, { stream: true }]) {
      const answer = await post(ask("limit me", extra))
      assert.strictEqual(answer.status, 429)
      assert.strictEqual(answer.headers.get("retry-after"), "3")
      const { error } = (await answer.json()) as { error: { type: string; message: string; request_id: string } }
      assert.strictEqual(error.type, "rate_limited")
      assert.strictEqual(error.request_id, answer.headers.get("x-request-id"))
    }
  })

  it("streams the relay's bytes and ends a stream that fails after them with an error event", async () => {
    const answer = await post(ask("hi", { stream: true }))
    assert.strictEqual(answer.status, 200)
    assert.strictEqual(answer.headers.get("content-type"), "text/event-stream")
    const text = await answer.text()
    assert.isTrue(text.startsWith('data: {"n":1}\n\n'))
    assert.include(text, "event: error\ndata: ")
    assert.include(text, '"type":"rate_limited"')
  })

  it("logs each request it serves once, with its caller and model, and none it hands over", async () => {
    assert.strictEqual((await post(ask("hi"), { "x-request-id": "lane-ok" })).status, 200)
    assert.strictEqual((await post(ask("limit me", { stream: true }), { "x-request-id": "lane-429" })).status, 429)
    const handedOver = await post(ask("hi"), { "x-request-id": "lane-stack", authorization: "Bearer pa_unverified" })
    assert.strictEqual(await handedOver.text(), "stack")
    for (const [id, status] of [
      ["lane-ok", 200],
      ["lane-429", 429]
    ] as const) {
      const lines = await waitForLines(id)
      assert.lengthOf(lines, 1, id)
      const { duration_ms, ...line } = lines[0] ?? {}
      assert.deepStrictEqual(line, {
        message: "request",
        method: "POST",
        route: "/v1/chat/completions",
        status,
        request_id: id,
        tenant: "t",
        key_id: "key_1",
        model: "relayed"
      })
      assert.isAtLeast(Number(duration_ms), 0)
    }
    assert.lengthOf(linesOf("lane-stack"), 0)
  })

  it("logs a client that goes away before its whole body arrived as 499", async () => {
    const { connect } = await import("node:net")
    const socket = connect(Number(new URL(url).port), "127.0.0.1")
    await new Promise((resolve) => socket.once("connect", resolve))
    socket.write(
      [
        "POST /v1/chat/completions HTTP/1.1",
        "host: 127.0.0.1",
        "content-type: application/json",
        `authorization: Bearer ${verifiedKey}`,
        "x-request-id: lane-cut",
        "content-length: 50",
        "",
        '{"model":"rel'
      ].join("\r\n")
    )
    await new Promise((resolve) => setTimeout(resolve, 50))
    socket.destroy()
    const lines = await waitForLines("lane-cut")
    assert.deepStrictEqual(
      lines.map((line) => [line["status"], line["tenant"], line["key_id"]]),
      [[499, "t", "key_1"]]
    )
  })

  it("interrupts the relay when the client goes away, and logs it as 499", async () => {
    const controller = new AbortController()
    const pending = post(ask("hang on"), { "x-request-id": "lane-gone" }, controller.signal).catch(() => undefined)
    await new Promise((resolve) => setTimeout(resolve, 100))
    controller.abort()
    await pending
    const done = await Effect.runPromise(Deferred.await(interrupted).pipe(Effect.timeout("1 second"), Effect.option))
    assert.strictEqual(done._tag, "Some", "the relay was not interrupted within 1 s")
    const lines = await waitForLines("lane-gone")
    assert.deepStrictEqual(
      lines.map((line) => line["status"]),
      [499]
    )
  })
})
