/**
 * The whole server in-process (`Server.layer`) on a real socket, with a scripted model in
 * place of the catalogue, to see what a user notices when things go wrong mid-turn: a client
 * that disconnects from a stream cancels the model call, a provider failure answers 502
 * without the provider's text, a defect answers 500, and in every case the same session
 * answers the next turn (nothing replayed, nothing stuck).
 */
import { assert, describe, it } from "@effect/vitest"
import { Server } from "@polyagent/http"
import { AppConfig, ModelCatalog, SessionProtocol, Usage } from "@polyagent/runtime"
import { Context, Deferred, Duration, Effect, Layer, Option, Redacted, Schema, Stream } from "effect"
import { AiError, LanguageModel, type Prompt, type Response } from "effect/ai"
import { HttpServer } from "effect/http"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  type Answer,
  type Client,
  decode,
  ErrorEnvelope,
  makeClient,
  newAdminKey,
  type SseEvent,
  STACK_FRAME,
  sseEvents
} from "../src/harness.ts"

/** Text only a provider would send; it must never reach a client. */
const PROVIDER_TEXT = "upstream exploded: key sk-live-SECRET leaked in provider text"
const DEFECT_TEXT = "kaboom: a bug in the model adapter"

const SessionId = Schema.Struct({ session_id: Schema.String })

const info = new ModelCatalog.ModelInfo({
  id: "scripted",
  provider: "scripted",
  description: "A model that hangs, fails or dies when the last user message says so",
  offline: true,
  capabilities: new ModelCatalog.Capabilities({ tools: false, vision: false, streaming: true, context_window: 8192 }),
  cost_per_1k_tokens: new Usage.Price({ input: 0, output: 0 }),
  price_date: null
})

/** What the scripted model saw and did. */
interface Script {
  /** Completed when a hanging stream is interrupted. */
  readonly interrupted: Deferred.Deferred<void>
  /** How often the model was called with each last user message. */
  readonly calls: Map<string, number>
}

const userTexts = (prompt: Prompt.Prompt): Array<string> =>
  prompt.content.flatMap((message) =>
    message.role === "user"
      ? [message.content.flatMap((part) => (part.type === "text" ? [part.text] : [])).join("\n")]
      : []
  )

/** The normal answer: how many user messages it saw, and the last one. */
const answerTo = (users: ReadonlyArray<string>): string =>
  `scripted answer to ${users.length} user message(s); last: ${users.at(-1) ?? ""}`

const finish = (text: string): Response.FinishPartEncoded => ({
  type: "finish",
  reason: "stop",
  usage: {
    inputTokens: { uncached: 10, total: 10, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: text.length, text: text.length, reasoning: 0 }
  }
})

const providerFailure = (method: string) =>
  AiError.make({
    module: "ScriptedProvider",
    method,
    reason: new AiError.InternalProviderError({ description: PROVIDER_TEXT })
  })

/**
 * By the last user message: `hang…` streams one delta and then waits forever (recording its
 * interruption), `fail…` fails as a provider would, `die…` dies with a defect, anything else
 * answers normally.
 */
const scriptedModel = (script: Script) => {
  const called = (prompt: Prompt.Prompt) =>
    Effect.sync(() => {
      const users = userTexts(prompt)
      const last = users.at(-1) ?? ""
      script.calls.set(last, (script.calls.get(last) ?? 0) + 1)
      return { users, last }
    })
  return LanguageModel.make({
    generateText: ({ prompt }) =>
      Effect.flatMap(called(prompt), ({ users, last }) => {
        if (last.startsWith("fail")) return Effect.fail(providerFailure("generateText"))
        if (last.startsWith("die")) return Effect.die(new Error(DEFECT_TEXT))
        if (last.startsWith("hang")) return Effect.never
        const text = answerTo(users)
        return Effect.succeed<Array<Response.PartEncoded>>([{ type: "text", text }, finish(text)])
      }),
    streamText: ({ prompt }) =>
      Stream.unwrap(
        Effect.map(called(prompt), ({ users, last }): Stream.Stream<Response.StreamPartEncoded, AiError.AiError> => {
          const id = "scripted-0"
          if (last.startsWith("fail")) return Stream.fail(providerFailure("streamText"))
          if (last.startsWith("die")) return Stream.die(new Error(DEFECT_TEXT))
          if (last.startsWith("hang")) {
            const waitForever = Effect.never.pipe(
              Effect.onInterrupt(() => Deferred.succeed(script.interrupted, undefined))
            )
            return Stream.make<Array<Response.StreamPartEncoded>>(
              { type: "text-start", id },
              { type: "text-delta", id, delta: "thinking " }
            ).pipe(Stream.concat(Stream.fromEffect(waitForever)))
          }
          const text = answerTo(users)
          return Stream.make<Array<Response.StreamPartEncoded>>(
            { type: "text-start", id },
            ...text.split(/(?<= )/u).map((delta): Response.StreamPartEncoded => ({ type: "text-delta", id, delta })),
            { type: "text-end", id },
            finish(text)
          )
        })
      )
  })
}

/** A server with the scripted model, in the test's scope, on a free port and a temporary data directory. */
const startServer = Effect.gen(function* () {
  const script: Script = { interrupted: yield* Deferred.make<void>(), calls: new Map() }
  const dataDir = yield* Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "polyagent-e2e-inproc-"))),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )
  const adminKey = newAdminKey()
  const config = yield* AppConfig.make({
    server: { port: 0, requestTimeout: Duration.seconds(10), shutdownGrace: Duration.seconds(1) },
    storage: { dataDir },
    security: { adminKey: Option.some(Redacted.make(adminKey)) }
  })
  const models = Layer.effect(
    ModelCatalog.ModelCatalog,
    Effect.map(scriptedModel(script), (languageModel) => ModelCatalog.make([{ info, languageModel }], info.id))
  )
  const context = yield* Layer.build(Server.layer(config, { models }))
  const address = Context.get(context, HttpServer.HttpServer).address
  const client = makeClient(HttpServer.formatAddress(address), adminKey)
  return { client, script }
})

const call = <A>(request: () => Promise<A>) => Effect.promise(request)

const turnContent = (answer: Answer): string => {
  assert.strictEqual(answer.status, 200, answer.text)
  return decode(SessionProtocol.TurnResult, answer.json).message.content
}

/** Asserts the error envelope with `status` and `type`, and no provider or defect text in it. */
const assertError = (answer: Answer, status: number, type: string): void => {
  assert.strictEqual(answer.status, status, answer.text)
  const envelope = decode(ErrorEnvelope, answer.json)
  assert.strictEqual(envelope.error.type, type)
  assert.strictEqual(envelope.error.request_id, answer.headers.get("x-request-id"))
  for (const leaked of [PROVIDER_TEXT, "sk-live", "Internal provider error", DEFECT_TEXT, "kaboom"]) {
    assert.notInclude(answer.text, leaked)
  }
  assert.notMatch(answer.text, STACK_FRAME)
}

/** Every event of a streamed turn. */
/** Starts a session with a normal turn and answers its id. */
const newSession = (client: Client) =>
  Effect.gen(function* () {
    const answer = yield* call(() => client.post("/v1/chat", { message: "hello" }))
    assert.strictEqual(turnContent(answer), answerTo(["hello"]))
    return decode(SessionId, answer.json).session_id
  })

describe("a turn that goes wrong", () => {
  it.live("a client that disconnects mid-stream cancels the model call, and the session answers the next turn", () =>
    Effect.gen(function* () {
      const { client, script } = yield* startServer
      const abort = new AbortController()
      const response = yield* call(() =>
        client.stream("/v1/chat/stream", { message: "hang on a second" }, { signal: abort.signal })
      )
      assert.strictEqual(response.status, 200)
      const body = response.body
      assert.isNotNull(body)

      // Read up to the first delta, then go away.
      const seen = yield* call(async () => {
        const events: Array<SseEvent> = []
        if (body === null) return events
        for await (const event of sseEvents(body)) {
          events.push(event)
          if (event.event === "delta") break
        }
        abort.abort()
        return events
      })
      assert.deepStrictEqual(
        seen.map((event) => event.event),
        ["session", "delta"]
      )
      assert.deepStrictEqual(seen[1]?.data, { content: "thinking " })
      const sessionId = decode(SessionId, seen[0]?.data).session_id

      yield* Deferred.await(script.interrupted).pipe(
        Effect.timeoutOrElse({
          duration: Duration.seconds(2),
          orElse: () =>
            Effect.sync(() => assert.fail("the model call was not interrupted within 2 s of the disconnect"))
        })
      )

      const next = yield* call(() => client.post("/v1/chat", { message: "are you back?", session_id: sessionId }))
      assert.include(turnContent(next), "last: are you back?")
    })
  )

  it.live("a provider failure answers 502 upstream_error without the provider's text; the session goes on", () =>
    Effect.gen(function* () {
      const { client } = yield* startServer
      const sessionId = yield* newSession(client)

      assertError(
        yield* call(() => client.post("/v1/chat", { message: "fail please", session_id: sessionId })),
        502,
        "upstream_error"
      )

      // Streamed, a failure before the answer began is the same status and envelope.
      assertError(
        yield* call(() => client.post("/v1/chat/stream", { message: "fail while streaming", session_id: sessionId })),
        502,
        "upstream_error"
      )

      const next = yield* call(() => client.post("/v1/chat", { message: "and now?", session_id: sessionId }))
      assert.include(turnContent(next), "last: and now?")
    })
  )

  it.live("a model that dies answers 500 internal; the failed turn is not replayed and the session goes on", () =>
    Effect.gen(function* () {
      const { client, script } = yield* startServer
      const sessionId = yield* newSession(client)

      assertError(
        yield* call(() => client.post("/v1/chat", { message: "die, model", session_id: sessionId })),
        500,
        "internal"
      )

      assertError(
        yield* call(() => client.post("/v1/chat/stream", { message: "die while streaming", session_id: sessionId })),
        500,
        "internal"
      )

      const next = yield* call(() => client.post("/v1/chat", { message: "still alive?", session_id: sessionId }))
      assert.include(turnContent(next), "last: still alive?")
      // Give a replay, if the cluster made one, time to happen.
      yield* Effect.sleep(Duration.millis(500))
      assert.strictEqual(script.calls.get("die, model"), 1, "the model was called once for the failed turn")
      assert.strictEqual(script.calls.get("die while streaming"), 1, "the model was called once for the failed stream")
      assert.strictEqual(script.calls.get("still alive?"), 1)
    })
  )
})
