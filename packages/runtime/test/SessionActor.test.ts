/**
 * The session actor on the in-memory test runner, with SQLite storage and a scripted model:
 * serial turns, history across activations, typed failures that leave the session usable.
 */
import { assert, describe, it } from "@effect/vitest"
import { Array as Arr, Duration, Effect, Layer, Option, Ref, Stream } from "effect"
import { AiError, LanguageModel, type Prompt, type Response } from "effect/ai"
import { TestRunner } from "effect/cluster"
import * as Agent from "../src/Agent.ts"
import * as CallOptions from "../src/CallOptions.ts"
import * as Database from "../src/Database.ts"
import * as Message from "../src/Message.ts"
import * as ModelCatalog from "../src/ModelCatalog.ts"
import * as ModelRouter from "../src/ModelRouter.ts"
import * as RequestId from "../src/RequestId.ts"
import * as SessionActor from "../src/SessionActor.ts"
import * as SessionProtocol from "../src/SessionProtocol.ts"
import { Storage, layerSql } from "../src/Storage.ts"
import * as Usage from "../src/Usage.ts"

const info = new ModelCatalog.ModelInfo({
  id: "scripted",
  provider: "test",
  description: "answers with the user messages it saw",
  offline: true,
  capabilities: new ModelCatalog.Capabilities({ tools: false, vision: false, streaming: true, context_window: 1000 }),
  cost_per_1k_tokens: new Usage.Price({ input: 1, output: 2 }),
  price_date: null
})

/** Twelve distinct words, marked with `n`. */
const words = (n: number) => Array.from({ length: 12 }, (_, i) => `word${n}x${i}`).join(" ")

/** A window of 150 tokens: 120 for the prompt once 20% is kept for the answer. */
const tinyWindow = new ModelCatalog.Capabilities({ tools: false, vision: false, streaming: true, context_window: 150 })

const textOf = (message: Prompt.Message): string =>
  typeof message.content === "string"
    ? message.content
    : message.content.map((part) => (part.type === "text" ? part.text : "")).join("")

const finish = (text: string): Response.FinishPartEncoded => ({
  type: "finish",
  reason: "stop",
  usage: {
    inputTokens: { uncached: 10, total: 10, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: text.length, text: text.length, reasoning: 0 }
  }
})

/** Answers "seen: a | b" with every user message of the prompt; "fail" fails, "die" dies. */
const scripted = (calls: Ref.Ref<number>, requestIds: Ref.Ref<ReadonlyArray<string>>) => {
  const answer = (options: LanguageModel.ProviderOptions) =>
    Effect.gen(function* () {
      yield* Ref.update(calls, (n) => n + 1)
      const requestId = yield* RequestId.RequestId
      yield* Ref.update(requestIds, (ids) => [...ids, requestId])
      const users = options.prompt.content.filter((m) => m.role === "user").map(textOf)
      const last = users.at(-1) ?? ""
      if (last === "fail") {
        return yield* AiError.make({
          module: "test",
          method: "call",
          reason: new AiError.InternalProviderError({ description: "provider said: secret-ish text" })
        })
      }
      if (last === "die") return yield* Effect.die(new Error("model bug"))
      if (last === "hang") return yield* Effect.never
      const system = options.prompt.content.find((m) => m.role === "system")
      const sampling = yield* CallOptions.CallOptions
      const extras = [
        ...(system === undefined ? [] : [`system=${textOf(system)}`]),
        ...(sampling.temperature === undefined ? [] : [`temperature=${sampling.temperature}`])
      ]
      return `seen: ${users.join(" | ")}${extras.length === 0 ? "" : ` [${extras.join(", ")}]`}`
    })
  return LanguageModel.make({
    generateText: (options) =>
      Effect.map(answer(options), (text): Array<Response.PartEncoded> => [{ type: "text", text }, finish(text)]),
    streamText: (options) =>
      Stream.unwrap(
        Effect.map(answer(options), (text) =>
          Stream.fromIterable<Response.StreamPartEncoded>([
            { type: "text-start", id: "t" },
            ...text
              .split(" ")
              .map((word): Response.StreamPartEncoded => ({ type: "text-delta", id: "t", delta: `${word} ` })),
            { type: "text-end", id: "t" },
            finish(text)
          ])
        )
      )
  })
}

const makeLayer = Effect.fnUntraced(function* (
  maxIdleTime: Duration.Input = "1 minute",
  turnTimeout: Duration.Duration = Duration.seconds(30)
) {
  const calls = yield* Ref.make(0)
  const requestIds = yield* Ref.make<ReadonlyArray<string>>([])
  const model = yield* scripted(calls, requestIds)
  const storage = layerSql.pipe(
    Layer.provide(Database.layerSqlite(`/tmp/polyagent-actor-${process.pid}-${Date.now()}`))
  )
  const catalog = ModelCatalog.layer(
    [
      { info, languageModel: model },
      { info: new ModelCatalog.ModelInfo({ ...info, id: "tiny", capabilities: tinyWindow }), languageModel: model }
    ],
    "scripted"
  )
  const sessions = SessionActor.layer({ maxIdleTime }).pipe(
    Layer.provide([
      ModelRouter.layerTest().pipe(Layer.provide(catalog), Layer.orDie),
      SessionProtocol.layerSettings({ turnTimeout, maxToolSteps: 4, contextStrategy: "drop_oldest" })
    ])
  )
  return { calls, requestIds, layer: sessions.pipe(Layer.provideMerge(Layer.merge(TestRunner.layer, storage))) }
})

const send = (tenant: string, id: string, message: string, create = false) =>
  Effect.flatMap(SessionProtocol.Session.client, (clientFor) =>
    clientFor(SessionProtocol.entityId(tenant, id)).Send({
      message,
      model: null,
      create,
      agent_id: null,
      user_id: null,
      pin: false,
      request_id: `req-${message}`,
      idempotency_key: null,
      key_id: null
    })
  )

/** A turn with an idempotency key. */
const keyed = (id: string, message: string, key: string, create = false) =>
  Effect.flatMap(SessionProtocol.Session.client, (clientFor) =>
    clientFor(SessionProtocol.entityId("t", id)).Send({
      message,
      model: null,
      create,
      agent_id: null,
      user_id: null,
      pin: false,
      request_id: `req-${message}`,
      idempotency_key: key,
      key_id: null
    })
  )

/** What a process that died stored before this actor ran: the fields a fixture message leaves unset. */
const at = "2026-01-01T00:00:00.000Z"
const storedDefaults = { ...Message.unset, created_at: at }

describe("SessionActor", () => {
  it.live("runs turns of one session one after another and stores each before replying", () =>
    Effect.gen(function* () {
      const { layer } = yield* makeLayer()
      yield* Effect.gen(function* () {
        const first = yield* send("t", "s1", "m0", true)
        assert.strictEqual(first.message.content, "seen: m0")
        assert.strictEqual(first.cost_usd, Usage.cost(first.usage, info.cost_per_1k_tokens))
        const results = yield* Effect.forEach(Arr.range(1, 10), (i) => send("t", "s1", `m${i}`), {
          concurrency: "unbounded"
        })
        const stored = yield* (yield* Storage).listMessages("t", "s1")
        assert.strictEqual(stored.length, 22)
        // Each answer saw exactly the turns stored before it: the k-th answer saw k user messages.
        for (const [k, message] of stored.entries()) {
          assert.strictEqual(message.seq, k + 1)
          assert.strictEqual(message.role, k % 2 === 0 ? "user" : "assistant")
          if (message.role === "assistant") assert.strictEqual(message.content.split(" | ").length, (k + 1) / 2)
        }
        assert.strictEqual(results.length, 10)
      }).pipe(Effect.provide(layer))
    })
  )

  it.live("the model call runs with the request id of the client request", () =>
    Effect.gen(function* () {
      const { layer, requestIds } = yield* makeLayer()
      yield* Effect.gen(function* () {
        yield* send("t", "s7", "one", true)
        yield* send("t", "s7", "two")
        assert.deepStrictEqual(yield* Ref.get(requestIds), ["req-one", "req-two"])
      }).pipe(Effect.provide(layer))
    })
  )

  it.live("a session runs with its agent: system prompt, model and parameters; the agent is fixed", () =>
    Effect.gen(function* () {
      const { layer } = yield* makeLayer()
      yield* Effect.gen(function* () {
        const storage = yield* Storage
        const agent = Agent.fromCreate(
          "agent_1",
          { name: "Tutor", agent_type: "chat", system_prompt: "Teach.", parameters: { temperature: 0.3 } },
          "2026-01-01T00:00:00.000Z"
        )
        yield* storage.insertAgent("t", agent)
        const clientFor = yield* SessionProtocol.Session.client
        const client = clientFor(SessionProtocol.entityId("t", "s9"))
        const turn = (message: string, agentId: string | null, create = false) =>
          client.Send({
            message,
            model: null,
            create,
            agent_id: agentId,
            user_id: null,
            pin: false,
            request_id: "r",
            idempotency_key: null,
            key_id: null
          })
        const first = yield* turn("hi", "agent_1", true)
        assert.strictEqual(first.message.content, "seen: hi [system=Teach., temperature=0.3]")
        // Later turns need not name the agent; naming another one is a conflict.
        const second = yield* turn("again", null)
        assert.strictEqual(second.message.content, "seen: hi | again [system=Teach., temperature=0.3]")
        const conflict = yield* Effect.flip(turn("other", "agent_2"))
        assert.strictEqual(conflict._tag, "SessionAgentConflict")
        const unknown = yield* Effect.flip(
          clientFor(SessionProtocol.entityId("t", "s10")).Send({
            message: "x",
            model: null,
            create: true,
            agent_id: "agent_404",
            user_id: null,
            pin: false,
            request_id: "r",
            idempotency_key: null,
            key_id: null
          })
        )
        assert.strictEqual(unknown._tag, "AgentNotFound")
        assert.isTrue(Option.isNone(yield* storage.getSession("t", "s10")))
      }).pipe(Effect.provide(layer))
    })
  )

  it.live("a conversation over the model's window drops its oldest turns; one message over it is refused", () =>
    Effect.gen(function* () {
      const { layer } = yield* makeLayer()
      yield* Effect.gen(function* () {
        const clientFor = yield* SessionProtocol.Session.client
        const client = clientFor(SessionProtocol.entityId("t", "s11"))
        const turn = (message: string, create = false) =>
          client.Send({
            message,
            model: "tiny",
            create,
            agent_id: null,
            user_id: null,
            pin: false,
            request_id: "r",
            idempotency_key: null,
            key_id: null
          })
        yield* turn(words(1), true)
        yield* turn(words(2))
        yield* turn(words(3))
        const last = yield* turn(words(4))
        const seen = last.message.content.replace(/^seen: /, "").split(" | ")
        assert.notInclude(seen, words(1), "the oldest turn was dropped")
        assert.strictEqual(seen.at(-1), words(4), "the newest message is always kept")
        const tooLong = yield* Effect.flip(turn("x ".repeat(400)))
        assert.strictEqual(tooLong._tag, "ContextTooLong")

        // A pinned message stays however long the conversation grows.
        const pinning = clientFor(SessionProtocol.entityId("t", "s12"))
        const pinnedTurn = (message: string, pin: boolean, create = false) =>
          pinning.Send({
            message,
            model: "tiny",
            create,
            pin,
            agent_id: null,
            user_id: null,
            request_id: "r",
            idempotency_key: null,
            key_id: null
          })
        yield* pinnedTurn(words(1), true, true)
        yield* pinnedTurn(words(2), false)
        yield* pinnedTurn(words(3), false)
        const kept = (yield* pinnedTurn(words(4), false)).message.content.replace(/^seen: /, "").split(" | ")
        assert.include(kept, words(1), "the pinned first message was kept")
        assert.notInclude(kept, words(2), "older unpinned turns were dropped instead")
      }).pipe(Effect.provide(layer))
    })
  )

  it.live("an unknown session answers SessionNotFound; an unknown model ModelNotFound", () =>
    Effect.gen(function* () {
      const { layer } = yield* makeLayer()
      yield* Effect.gen(function* () {
        const missing = yield* Effect.flip(send("t", "nope", "hello"))
        assert.strictEqual(missing._tag, "SessionNotFound")
        const clientFor = yield* SessionProtocol.Session.client
        const unknownModel = yield* Effect.flip(
          clientFor(SessionProtocol.entityId("t", "s2")).Send({
            message: "x",
            model: "gpt-9",
            create: true,
            agent_id: null,
            user_id: null,
            pin: false,
            request_id: "req-x",
            idempotency_key: null,
            key_id: null
          })
        )
        assert.strictEqual(unknownModel._tag, "ModelNotFound")
      }).pipe(Effect.provide(layer))
    })
  )

  it.live("a failing or dying model answers the caller, stores nothing, and the session goes on", () =>
    Effect.gen(function* () {
      const { layer, calls } = yield* makeLayer()
      yield* Effect.gen(function* () {
        yield* send("t", "s3", "hello", true)
        const failed = yield* Effect.flip(send("t", "s3", "fail"))
        assert.strictEqual(failed._tag, "ModelError")
        if (failed._tag === "ModelError") assert.strictEqual(failed.reason, "overloaded")
        const died = yield* Effect.exit(send("t", "s3", "die"))
        assert.strictEqual(died._tag, "Failure")
        const after = yield* send("t", "s3", "still here?")
        assert.strictEqual(after.message.content, "seen: hello | still here?")
        // The retryable failure was tried 3 times (ModelRouter's default); the dead turn was not replayed.
        assert.strictEqual(yield* Ref.get(calls), 6)
        assert.strictEqual((yield* (yield* Storage).listMessages("t", "s3")).length, 4)
      }).pipe(Effect.provide(layer))
    })
  )

  it.live("a turn over the timeout answers TurnTimeout, sent or streamed, and the session goes on", () =>
    Effect.gen(function* () {
      const { layer } = yield* makeLayer("1 minute", Duration.millis(300))
      yield* Effect.gen(function* () {
        yield* send("t", "s-slow", "hello", true)
        const sent = yield* Effect.flip(send("t", "s-slow", "hang"))
        assert.strictEqual(sent._tag, "TurnTimeout")
        const clientFor = yield* SessionProtocol.Session.client
        const streamed = yield* clientFor(SessionProtocol.entityId("t", "s-slow"))
          .Stream({
            message: "hang",
            model: null,
            create: false,
            agent_id: null,
            user_id: null,
            pin: false,
            request_id: "r",
            idempotency_key: null,
            key_id: null
          })
          .pipe(
            Stream.runCollect,
            Effect.flip,
            Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die("the stream did not time out") })
          )
        assert.strictEqual(streamed._tag, "TurnTimeout")
        const after = yield* send("t", "s-slow", "still here?")
        assert.strictEqual(after.message.content, "seen: hello | still here?")
      }).pipe(Effect.provide(layer))
    })
  )

  it.live("streams deltas, then the stored answer", () =>
    Effect.gen(function* () {
      const { layer } = yield* makeLayer()
      yield* Effect.gen(function* () {
        const clientFor = yield* SessionProtocol.Session.client
        const events = yield* clientFor(SessionProtocol.entityId("t", "s4"))
          .Stream({
            message: "stream me",
            model: null,
            create: true,
            agent_id: null,
            user_id: null,
            pin: false,
            request_id: "req-stream",
            idempotency_key: null,
            key_id: null
          })
          .pipe(Stream.runCollect)
        const deltas = events.flatMap((event) => (event._tag === "Delta" ? [event.content] : []))
        const done = events.at(-1)
        assert.isAbove(deltas.length, 1)
        assert.strictEqual(done?._tag, "Done")
        if (done?._tag === "Done") assert.strictEqual(deltas.join(""), done.result.message.content)
        assert.strictEqual((yield* (yield* Storage).listMessages("t", "s4")).length, 2)
      }).pipe(Effect.provide(layer))
    })
  )

  it.live("a streamed turn and a sent turn on one session run one after the other", () =>
    Effect.gen(function* () {
      const { layer } = yield* makeLayer()
      yield* Effect.gen(function* () {
        yield* send("t", "s8", "first", true)
        const clientFor = yield* SessionProtocol.Session.client
        const client = clientFor(SessionProtocol.entityId("t", "s8"))
        const [streamed, sent] = yield* Effect.all(
          [
            client
              .Stream({
                message: "streamed",
                model: null,
                create: false,
                agent_id: null,
                user_id: null,
                pin: false,
                request_id: "r1",
                idempotency_key: null,
                key_id: null
              })
              .pipe(Stream.runCollect),
            Effect.delay(send("t", "s8", "sent"), "5 millis")
          ],
          { concurrency: "unbounded" }
        )
        const done = streamed.at(-1)
        assert.strictEqual(done?._tag, "Done")
        if (done?._tag === "Done") assert.strictEqual(done.result.message.content, "seen: first | streamed ")
        assert.strictEqual(sent.message.content, "seen: first | streamed | sent")
      }).pipe(Effect.provide(layer))
    })
  )

  it.live(
    "an idle session passivates and reloads its history from storage",
    () =>
      Effect.gen(function* () {
        const { layer } = yield* makeLayer("1 second")
        yield* Effect.gen(function* () {
          yield* send("t", "s5", "before", true)
          // Written behind the actor's back: only a fresh activation can see it.
          const storage = yield* Storage
          yield* storage.appendMessages("t", "s5", [
            {
              id: "m-outside",
              seq: 3,
              role: "user",
              content: "outside",
              model: null,
              provider: null,
              usage: null,
              cost_usd: null,
              tool_calls: null,
              tool_call_id: null,
              pinned: false,
              models: null,
              task_type: null,
              created_at: "2026-01-01T00:00:00.000Z"
            }
          ])
          // The cluster's reaper looks for idle entities every 5 s at the finest.
          yield* Effect.sleep("6500 millis")
          const after = yield* send("t", "s5", "after")
          assert.strictEqual(after.message.content, "seen: before | outside | after")
        }).pipe(Effect.provide(layer))
      }),
    20_000
  )

  it.live("Delete removes the session and the actor forgets it", () =>
    Effect.gen(function* () {
      const { layer } = yield* makeLayer()
      yield* Effect.gen(function* () {
        yield* send("t", "s6", "hello", true)
        const clientFor = yield* SessionProtocol.Session.client
        assert.isTrue(yield* clientFor(SessionProtocol.entityId("t", "s6")).Delete())
        const missing = yield* Effect.flip(send("t", "s6", "again"))
        assert.strictEqual(missing._tag, "SessionNotFound")
      }).pipe(Effect.provide(layer))
    })
  )

  describe("idempotent turns", () => {
    it.live("a retried turn answers with the stored answer, without calling the model or storing again", () =>
      Effect.gen(function* () {
        const { layer, calls } = yield* makeLayer()
        yield* Effect.gen(function* () {
          // A new session with a key runs and keeps the key with its first turn.
          const created = yield* keyed("k1", "first", "key-1", true)
          assert.strictEqual(created.message.content, "seen: first")
          const turn = yield* keyed("k1", "second", "key-2")
          assert.strictEqual(yield* Ref.get(calls), 2)

          const retried = yield* keyed("k1", "second", "key-2")
          assert.deepStrictEqual(retried, turn)
          const first = yield* keyed("k1", "first", "key-1")
          assert.deepStrictEqual(first, created)
          assert.strictEqual(yield* Ref.get(calls), 2, "the model was not called again")
          assert.strictEqual((yield* (yield* Storage).listMessages("t", "k1")).length, 4, "nothing was stored again")

          // The key with another message is a conflict; the session goes on.
          const conflict = yield* Effect.flip(keyed("k1", "something else", "key-2"))
          assert.strictEqual(conflict._tag, "IdempotencyConflict")
          if (conflict._tag === "IdempotencyConflict") assert.strictEqual(conflict.reason, "different_message")
          const third = yield* keyed("k1", "third", "key-3")
          assert.strictEqual(third.message.content, "seen: first | second | third")

          // A stream of a retried turn replays it: Started, the whole answer as one delta, Done.
          const clientFor = yield* SessionProtocol.Session.client
          const events = yield* clientFor(SessionProtocol.entityId("t", "k1"))
            .Stream({
              message: "second",
              model: null,
              create: false,
              agent_id: null,
              user_id: null,
              pin: false,
              request_id: "r",
              idempotency_key: "key-2",
              key_id: null
            })
            .pipe(Stream.runCollect)
          assert.deepStrictEqual(events, [
            { _tag: "Started", model: "scripted" },
            { _tag: "Delta", content: turn.message.content },
            { _tag: "Done", result: turn }
          ])
          assert.strictEqual(yield* Ref.get(calls), 3)
        }).pipe(Effect.provide(layer))
      })
    )

    it.live("a turn stored by a process that died before replying is found by its key after a restart", () =>
      Effect.gen(function* () {
        const { layer, calls } = yield* makeLayer()
        yield* Effect.gen(function* () {
          // What the dead process stored: the turn with its key and its answer. This actor never ran it.
          const storage = yield* Storage
          yield* storage.appendMessages(
            "t",
            "k2",
            [
              { ...storedDefaults, id: "u1", seq: 1, role: "user", content: "did it work?" },
              {
                ...storedDefaults,
                id: "a1",
                seq: 2,
                role: "assistant",
                content: "it did",
                model: "scripted",
                provider: "test",
                usage: Usage.make(10, 6),
                cost_usd: 0.022
              }
            ],
            { create: { agentId: null, createdAt: at }, idempotencyKey: { messageId: "u1", key: "key-dead" } }
          )
          const retried = yield* keyed("k2", "did it work?", "key-dead")
          assert.deepStrictEqual(
            { ...retried },
            {
              session_id: "k2",
              message: { role: "assistant", content: "it did" },
              model: "scripted",
              provider: "test",
              tool_calls: [],
              usage: Usage.make(10, 6),
              cost_usd: 0.022
            }
          )
          assert.strictEqual(yield* Ref.get(calls), 0)
          assert.strictEqual((yield* storage.listMessages("t", "k2")).length, 2)
        }).pipe(Effect.provide(layer))
      })
    )

    it.live("a retried turn that a crash left between its tool calls and its answer is finished, then answered", () =>
      Effect.gen(function* () {
        const { layer, calls } = yield* makeLayer()
        yield* Effect.gen(function* () {
          const storage = yield* Storage
          yield* storage.appendMessages(
            "t",
            "k3",
            [
              { ...storedDefaults, id: "u1", seq: 1, role: "user", content: "add them" },
              {
                ...storedDefaults,
                id: "a1",
                seq: 2,
                role: "assistant",
                content: "",
                model: "scripted",
                provider: "test",
                tool_calls: [{ id: "call_1", name: "add", arguments: '{"a":1,"b":2}' }]
              },
              {
                ...storedDefaults,
                id: "t1",
                seq: 3,
                role: "tool",
                content: '{"sum":3}',
                tool_call_id: "call_1"
              }
            ],
            { create: { agentId: null, createdAt: at }, idempotencyKey: { messageId: "u1", key: "key-crash" } }
          )
          const answered = yield* keyed("k3", "add them", "key-crash")
          assert.strictEqual(answered.message.content, "seen: add them")
          assert.deepStrictEqual(answered.tool_calls, [
            { id: "call_1", name: "add", status: "ok", result: '{"sum":3}' }
          ])
          assert.strictEqual(yield* Ref.get(calls), 1, "the model answered once, to finish the turn")
          // Asked again, it is only answered.
          assert.deepStrictEqual(yield* keyed("k3", "add them", "key-crash"), answered)
          assert.strictEqual(yield* Ref.get(calls), 1)
          assert.strictEqual((yield* storage.listMessages("t", "k3")).length, 4)
        }).pipe(Effect.provide(layer))
      })
    )
  })
})
