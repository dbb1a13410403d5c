/**
 * One behaviour suite for both storages: the embedded SQLite file and PostgreSQL (the
 * local server, database `test`, each run in a schema of its own, dropped afterwards).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import * as Agent from "../src/Agent.ts"
import * as Database from "../src/Database.ts"
import type { Message } from "../src/Message.ts"
import { ApiKeyRecord, MemoryFact, Storage, layerSql } from "../src/Storage.ts"
import * as Usage from "../src/Usage.ts"
import { databases } from "./support/databases.ts"

const fact = (id: string, user: string, text: string, at: string) =>
  new MemoryFact({ id, user_id: user, agent_id: "agent_1", fact: text, created_at: at })

const message = (seq: number, id: string, role: Message["role"], content: string, at: string): Message => ({
  id,
  seq,
  role,
  content,
  model: role === "assistant" ? "local" : null,
  provider: role === "assistant" ? "local" : null,
  usage: role === "assistant" ? Usage.make(12, 7) : null,
  cost_usd: role === "assistant" ? 0.000123 : null,
  tool_calls: null,
  tool_call_id: null,
  pinned: false,
  models: null,
  task_type: role === "assistant" ? "chat" : null,
  created_at: at
})

describe.each(databases("test_storage"))("Storage on %s", (_name, database) => {
  const layer = Layer.provideMerge(layerSql, database).pipe(Layer.orDie)

  it.layer(layer, { timeout: 30_000 })((it) => {
    it.effect("creates a session once and finds it only in its tenant", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        assert.isTrue(yield* storage.createSession("t1", "s1", "2026-01-01T00:00:00.000Z"))
        assert.isFalse(yield* storage.createSession("t1", "s1", "2026-01-01T00:00:01.000Z"))
        const found = yield* storage.getSession("t1", "s1")
        assert.isTrue(Option.isSome(found))
        assert.strictEqual(Option.getOrThrow(found).created_at, "2026-01-01T00:00:00.000Z")
        assert.isTrue(Option.isNone(yield* storage.getSession("t2", "s1")))
      })
    )

    it.effect("stores messages with the numbers their session gave them, with usage and cost", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.createSession("t1", "s2", "2026-01-01T00:00:00.000Z")
        yield* storage.appendMessages("t1", "s2", [
          message(1, "m1", "user", "hello", "2026-01-01T00:00:01.000Z"),
          message(2, "m2", "assistant", "hi there", "2026-01-01T00:00:02.000Z")
        ])
        yield* storage.appendMessages("t1", "s2", [message(3, "m3", "user", "again", "2026-01-01T00:00:03.000Z")])
        const all = yield* storage.listMessages("t1", "s2")
        assert.deepStrictEqual(
          all.map((m) => [m.seq, m.id, m.role, m.content]),
          [
            [1, "m1", "user", "hello"],
            [2, "m2", "assistant", "hi there"],
            [3, "m3", "user", "again"]
          ]
        )
        const assistant = all[1]
        assert.deepStrictEqual(assistant?.usage, Usage.make(12, 7))
        assert.strictEqual(assistant?.cost_usd, 0.000123)
        assert.strictEqual(all[0]?.usage, null)
        // The detected task type of the turn, on its assistant message; read back by both queries.
        assert.deepStrictEqual(
          all.map((m) => m.task_type),
          [null, "chat", null]
        )
        const loaded = Option.getOrThrow(yield* storage.loadSession("t1", "s2"))
        assert.deepStrictEqual(
          loaded.messages.map((m) => m.task_type),
          [null, "chat", null]
        )
        const session = Option.getOrThrow(yield* storage.getSession("t1", "s2"))
        assert.strictEqual(session.updated_at, "2026-01-01T00:00:03.000Z")
        assert.deepStrictEqual(yield* storage.listMessages("t2", "s2"), [])
      })
    )

    it.effect("a number stored twice (a second writer) fails the whole write with a StorageError that says so", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.createSession("t1", "s-race", "2026-01-01T00:00:00.000Z")
        yield* storage.appendMessages("t1", "s-race", [message(1, "r1", "user", "one", "2026-01-01T00:00:01.000Z")])
        const failed = yield* Effect.flip(
          storage.appendMessages("t1", "s-race", [
            message(2, "r2", "user", "two", "2026-01-01T00:00:02.000Z"),
            message(1, "r3", "assistant", "clash", "2026-01-01T00:00:03.000Z")
          ])
        )
        assert.strictEqual(failed._tag, "StorageError")
        assert.include(failed.operation, "another process wrote to this session")
        assert.notInclude(failed.message, "INSERT")
        assert.deepStrictEqual(
          (yield* storage.listMessages("t1", "s-race")).map((m) => m.id),
          ["r1"]
        )
        const session = Option.getOrThrow(yield* storage.getSession("t1", "s-race"))
        assert.strictEqual(session.updated_at, "2026-01-01T00:00:01.000Z", "the failed write moved nothing")
      })
    )

    it.effect("turns stored at the same time are all stored; one at fault fails alone", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const at = "2026-01-01T00:00:01.000Z"
        yield* storage.appendMessages("t1", "g-old", [message(1, "g0", "user", "old", at)], {
          create: { agentId: null, createdAt: at }
        })
        const ids = Array.from({ length: 12 }, (_, i) => `g${i}`)
        const results = yield* Effect.forEach(
          ids,
          (id, i) => {
            const later = `2026-01-01T00:00:0${2 + (i % 5)}.000Z`
            // Every fourth turn: a turn of the existing session; the one that reuses seq 1 is at fault.
            if (i % 4 === 0) {
              return Effect.result(
                storage.appendMessages("t1", "g-old", [message(i === 4 ? 1 : 2 + i, `${id}-m`, "user", id, later)])
              )
            }
            return Effect.result(
              storage.appendMessages(
                "t1",
                id,
                [message(1, `${id}-u`, "user", id, later), message(2, `${id}-a`, "assistant", `re ${id}`, later)],
                { create: { agentId: null, createdAt: later } }
              )
            )
          },
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(
          results.map((result) => result._tag),
          ids.map((_, i) => (i === 4 ? "Failure" : "Success"))
        )
        for (const [i, id] of ids.entries()) {
          if (i % 4 === 0) continue
          assert.deepStrictEqual(
            (yield* storage.listMessages("t1", id)).map((m) => [m.seq, m.content]),
            [
              [1, id],
              [2, `re ${id}`]
            ]
          )
        }
        assert.deepStrictEqual(
          (yield* storage.listMessages("t1", "g-old")).map((m) => [m.seq, m.content]),
          [
            [1, "old"],
            [2, "g0"],
            [10, "g8"]
          ]
        )
        const old = Option.getOrThrow(yield* storage.getSession("t1", "g-old"))
        assert.strictEqual(old.updated_at, "2026-01-01T00:00:05.000Z")
      })
    )

    it.effect("creates a session with its first messages in one write, and loads it whole with its keys", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.appendMessages(
          "t1",
          "s-new",
          [
            message(1, "n1", "user", "first", "2026-01-01T00:00:01.000Z"),
            message(2, "n2", "assistant", "answer", "2026-01-01T00:00:02.000Z")
          ],
          {
            create: { agentId: "agent_7", createdAt: "2026-01-01T00:00:01.000Z" },
            idempotencyKey: { messageId: "n1", key: "retry-me" }
          }
        )
        const loaded = Option.getOrThrow(yield* storage.loadSession("t1", "s-new"))
        assert.deepStrictEqual(
          { ...loaded.info },
          {
            id: "s-new",
            tenant: "t1",
            agent_id: "agent_7",
            created_at: "2026-01-01T00:00:01.000Z",
            updated_at: "2026-01-01T00:00:02.000Z"
          }
        )
        assert.deepStrictEqual(
          loaded.messages.map((m) => [m.seq, m.id, m.content]),
          [
            [1, "n1", "first"],
            [2, "n2", "answer"]
          ]
        )
        assert.deepStrictEqual([...loaded.idempotencyKeys], [["retry-me", 1]])
        assert.deepStrictEqual(loaded.messages, yield* storage.listMessages("t1", "s-new"))

        // An existing session's row is not created again: the write fails and stores nothing.
        const again = yield* Effect.flip(
          storage.appendMessages("t1", "s-new", [message(3, "n3", "user", "x", "2026-01-01T00:00:03.000Z")], {
            create: { agentId: null, createdAt: "2026-01-01T00:00:03.000Z" }
          })
        )
        assert.strictEqual(again._tag, "StorageError")
        // One key per session: a second turn with it is refused.
        const reused = yield* Effect.flip(
          storage.appendMessages("t1", "s-new", [message(3, "n4", "user", "x", "2026-01-01T00:00:03.000Z")], {
            idempotencyKey: { messageId: "n4", key: "retry-me" }
          })
        )
        assert.strictEqual(reused._tag, "StorageError")
        assert.strictEqual((yield* storage.listMessages("t1", "s-new")).length, 2)

        // A session without messages loads empty; an unknown one (or another tenant's) not at all.
        yield* storage.createSession("t1", "s-empty", "2026-01-01T00:00:00.000Z")
        const empty = Option.getOrThrow(yield* storage.loadSession("t1", "s-empty"))
        assert.deepStrictEqual([empty.messages, empty.idempotencyKeys.size], [[], 0])
        assert.isTrue(Option.isNone(yield* storage.loadSession("t2", "s-new")))
        assert.isTrue(Option.isNone(yield* storage.loadSession("t1", "s-none")))
      })
    )

    it.effect("every string round-trips exactly: control characters, U+0000, astral characters, lone surrogates", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const controls = Array.from({ length: 0x20 }, (_, code) => String.fromCharCode(code)).join("") + "\u007f"
        const marker = "\uFDD0"
        const texts = [
          `${controls} 😀 𝄞 text`,
          "lone high \ud800 in the middle",
          "\udc00 a lone low first",
          "ends with a lone high \ud83d",
          `${marker}starts with the marker`,
          `${marker}"json-looking"`,
          "\u0000",
          "",
          "plain text stays plain"
        ]
        for (const [i, text] of texts.entries()) {
          const id = `s-text-${i}`
          // As content, with a user id, a tenant and a session id of that text too.
          yield* storage.appendMessages(text, id, [message(1, `${id}-m`, "user", text, "2026-01-01T00:00:01.000Z")], {
            create: { agentId: text, createdAt: "2026-01-01T00:00:01.000Z" },
            idempotencyKey: { messageId: `${id}-m`, key: text }
          })
          const loaded = Option.getOrThrow(yield* storage.loadSession(text, id))
          assert.strictEqual(loaded.messages[0]?.content, text, `content ${i}`)
          assert.strictEqual(loaded.info.agent_id, text, `agent id ${i}`)
          assert.strictEqual(loaded.info.tenant, text, `tenant ${i}`)
          assert.deepStrictEqual([...loaded.idempotencyKeys.keys()], [text], `key ${i}`)
          assert.strictEqual((yield* storage.listMessages(text, id))[0]?.content, text)
          yield* storage.addFact(text, fact(`f-text-${i}`, text, text, "2026-01-01T00:00:01.000Z"))
          const [remembered] = yield* storage.listFacts(text, text, "agent_1", 10)
          assert.deepStrictEqual([remembered?.user_id, remembered?.fact], [text, text], `fact ${i}`)
          // An agent's name is never empty.
          const name = text === "" ? "-" : text
          const agent = Agent.fromCreate(
            `agent-text-${i}`,
            { name, agent_type: "chat", system_prompt: text },
            "2026-01-01T00:00:00.000Z"
          )
          yield* storage.insertAgent(text, agent)
          const stored = Option.getOrThrow(yield* storage.getAgent(text, agent.id))
          assert.deepStrictEqual([stored.name, stored.system_prompt], [name, text], `agent ${i}`)
          const key = new ApiKeyRecord({
            id: `key-text-${i}`,
            tenant: text,
            name: text,
            role: "user",
            key_hash: `hash-text-${i}`,
            created_at: "2026-01-01T00:00:00.000Z",
            budget_usd: null,
            prefix: null,
            expires_at: null,
            last_used_at: null,
            models: null,
            rate_limit_rpm: null,
            rate_limit_burst: null
          })
          yield* storage.insertApiKey(key)
          assert.deepStrictEqual(yield* storage.listApiKeys(text), [key], `key name ${i}`)
        }
        // Ordinary text is stored as it is: what another SQL client reads is the text itself.
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ readonly content: string }>`SELECT content FROM messages WHERE id = ${"s-text-8-m"}`
        assert.deepStrictEqual(rows, [{ content: "plain text stays plain" }])
      })
    )

    it.effect("keeps a message's tool calls and the call id of a tool result", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.createSession("t1", "s-tools", "2026-01-01T00:00:00.000Z")
        const calls = [{ id: "call_1", name: "add", arguments: '{"a":1,"b":2}' }]
        yield* storage.appendMessages("t1", "s-tools", [
          { ...message(1, "m-a", "assistant", "", "2026-01-01T00:00:01.000Z"), tool_calls: calls },
          { ...message(2, "m-t", "tool", '{"sum":3}', "2026-01-01T00:00:02.000Z"), tool_call_id: "call_1" }
        ])
        const [asking, result] = yield* storage.listMessages("t1", "s-tools")
        assert.deepStrictEqual(asking?.tool_calls, calls)
        assert.strictEqual(asking?.tool_call_id, null)
        assert.strictEqual(result?.tool_call_id, "call_1")
        assert.strictEqual(result?.tool_calls, null)
        // The turn stopped after a tool result, before its answer: it is unfinished.
        assert.deepInclude(yield* storage.listUnfinishedSessions, { tenant: "t1", id: "s-tools" })
        yield* storage.appendMessages("t1", "s-tools", [
          message(3, "m-f", "assistant", "done", "2026-01-01T00:00:03.000Z")
        ])
        assert.notDeepInclude(yield* storage.listUnfinishedSessions, { tenant: "t1", id: "s-tools" })
      })
    )

    it.effect("keeps unicode and large content intact", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.createSession("t1", "s3", "2026-01-01T00:00:00.000Z")
        const content = `héllo 👋 ${"x".repeat(100_000)} '; DROP TABLE messages; --`
        yield* storage.appendMessages("t1", "s3", [message(1, "m4", "user", content, "2026-01-01T00:00:01.000Z")])
        const [stored] = yield* storage.listMessages("t1", "s3")
        assert.strictEqual(stored?.content, content)
      })
    )

    it.effect("a failed append stores nothing", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.createSession("t1", "s4", "2026-01-01T00:00:00.000Z")
        yield* storage.appendMessages("t1", "s4", [message(1, "m5", "user", "one", "2026-01-01T00:00:01.000Z")])
        // The second message of the batch collides with nothing, but a message of a session
        // that does not exist breaks the foreign key: the whole batch must roll back.
        const failed = yield* Effect.flip(
          storage.appendMessages("t1", "no-such-session", [message(1, "m6", "user", "x", "2026-01-01T00:00:02.000Z")])
        )
        assert.strictEqual(failed._tag, "StorageError")
        assert.notInclude(failed.message, "INSERT")
        assert.strictEqual((yield* storage.listMessages("t1", "s4")).length, 1)
        assert.strictEqual((yield* storage.listMessages("t1", "no-such-session")).length, 0)
      })
    )

    it.effect("deletes a session with its messages, only in its tenant", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.createSession("t1", "s5", "2026-01-01T00:00:00.000Z")
        yield* storage.appendMessages("t1", "s5", [message(1, "m7", "user", "bye", "2026-01-01T00:00:01.000Z")])
        assert.isFalse(yield* storage.deleteSession("t2", "s5"))
        assert.isTrue(yield* storage.deleteSession("t1", "s5"))
        assert.isTrue(Option.isNone(yield* storage.getSession("t1", "s5")))
        assert.deepStrictEqual(yield* storage.listMessages("t1", "s5"), [])
        assert.isFalse(yield* storage.deleteSession("t1", "s5"))
      })
    )

    it.effect("stores API keys by hash and counts them per tenant", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const key = new ApiKeyRecord({
          id: "key_1",
          tenant: "acme",
          name: "ci",
          role: "builder",
          key_hash: "a".repeat(64),
          created_at: "2026-01-01T00:00:00.000Z",
          budget_usd: null,
          prefix: null,
          expires_at: null,
          last_used_at: null,
          models: null,
          rate_limit_rpm: null,
          rate_limit_burst: null
        })
        assert.strictEqual(yield* storage.countApiKeys("acme"), 0)
        assert.isTrue(yield* storage.insertApiKey(key))
        assert.strictEqual(yield* storage.countApiKeys("acme"), 1)
        assert.deepStrictEqual(yield* storage.findApiKeyByHash("a".repeat(64)), Option.some(key))
        assert.isTrue(Option.isNone(yield* storage.findApiKeyByHash("b".repeat(64))))
        // The same key again (two processes bootstrapping one admin key) stores nothing.
        assert.isFalse(yield* storage.insertApiKey(new ApiKeyRecord({ ...key, id: "key_2" })))
        assert.deepStrictEqual(yield* storage.listApiKeys("acme"), [key])
        // What a key carries since migration 11 round-trips: expiry, use, models, rate limit.
        const full = new ApiKeyRecord({
          ...key,
          id: "key_3",
          key_hash: "c".repeat(64),
          prefix: "pa_abcdefgh",
          expires_at: "2027-01-01T00:00:00.000Z",
          models: ["gpt-4o-mini", "fast"],
          rate_limit_rpm: 30,
          rate_limit_burst: 10
        })
        assert.isTrue(yield* storage.insertApiKey(full))
        yield* storage.touchApiKeys(["key_3"], "2026-01-01T12:00:00.000Z")
        assert.deepStrictEqual(
          yield* storage.findApiKeyByHash("c".repeat(64)),
          Option.some(new ApiKeyRecord({ ...full, last_used_at: "2026-01-01T12:00:00.000Z" }))
        )
        // The operator's revocation (no tenant) finds a key of any tenant and answers its tenant.
        assert.deepStrictEqual(
          yield* storage.revokeApiKey(null, "key_3", "2026-01-02T00:00:00.000Z"),
          Option.some("acme")
        )
        assert.isTrue(Option.isNone(yield* storage.revokeApiKey("other", "key_1", "2026-01-02T00:00:00.000Z")))
        assert.deepStrictEqual(
          yield* storage.revokeApiKey("acme", "key_1", "2026-01-02T00:00:00.000Z"),
          Option.some("acme")
        )
        assert.isTrue(Option.isNone(yield* storage.revokeApiKey("acme", "key_1", "2026-01-03T00:00:00.000Z")))
        assert.isTrue(Option.isNone(yield* storage.findApiKeyByHash("a".repeat(64))))
        assert.deepStrictEqual(yield* storage.listApiKeys("acme"), [])
        assert.strictEqual(yield* storage.countApiKeys("acme"), 0)
      })
    )

    it.effect("stores agents per tenant: create, read, list, update, delete", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        const agent = Agent.fromCreate(
          "agent_1",
          {
            name: "Support",
            agent_type: "tool_calling",
            system_prompt: "Be kind. 'Quotes' and \"double\" survive.",
            model: "local",
            tools: ["calculate"],
            parameters: { temperature: 0.2, max_tokens: 300 }
          },
          "2026-01-01T00:00:00.000Z"
        )
        yield* storage.insertAgent("t1", agent)
        assert.deepStrictEqual(yield* storage.getAgent("t1", "agent_1"), Option.some(agent))
        assert.isTrue(Option.isNone(yield* storage.getAgent("t2", "agent_1")))
        assert.deepStrictEqual(yield* storage.listAgents("t2"), [])
        const changed = Agent.applyPatch(agent, { name: "Helpdesk", model: null }, "2026-01-02T00:00:00.000Z")
        assert.isTrue(yield* storage.updateAgent("t1", changed))
        assert.isFalse(yield* storage.updateAgent("t2", changed))
        const [listed] = yield* storage.listAgents("t1")
        assert.deepStrictEqual(listed, changed)
        assert.strictEqual(listed?.model, null)
        assert.isTrue(listed?.tools_enabled)
        assert.isFalse(yield* storage.deleteAgent("t2", "agent_1"))
        assert.isTrue(yield* storage.deleteAgent("t1", "agent_1"))
        assert.isTrue(Option.isNone(yield* storage.getAgent("t1", "agent_1")))
      })
    )

    it.effect("remembers the agent a session runs with", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.createSession("t1", "s-agent", "2026-01-01T00:00:00.000Z", "agent_9")
        const session = Option.getOrThrow(yield* storage.getSession("t1", "s-agent"))
        assert.strictEqual(session.agent_id, "agent_9")
        yield* storage.createSession("t1", "s-plain", "2026-01-01T00:00:00.000Z")
        assert.strictEqual(Option.getOrThrow(yield* storage.getSession("t1", "s-plain")).agent_id, null)
      })
    )

    it.effect("keeps an agent's facts per user and tenant, newest kept when over the limit", () =>
      Effect.gen(function* () {
        const storage = yield* Storage
        yield* storage.addFact("t1", fact("f1", "u1", "likes tea", "2026-01-01T00:00:01.000Z"))
        yield* storage.addFact("t1", fact("f2", "u1", "lives in Lyon", "2026-01-01T00:00:02.000Z"))
        yield* storage.addFact("t1", fact("f3", "u2", "likes coffee", "2026-01-01T00:00:03.000Z"))
        const u1 = yield* storage.listFacts("t1", "u1", "agent_1", 10)
        assert.deepStrictEqual(
          u1.map((f) => f.fact),
          ["likes tea", "lives in Lyon"]
        )
        const newest = yield* storage.listFacts("t1", "u1", "agent_1", 1)
        assert.deepStrictEqual(
          newest.map((f) => f.fact),
          ["lives in Lyon"]
        )
        assert.deepStrictEqual(yield* storage.listFacts("t2", "u1", "agent_1", 10), [])
        assert.deepStrictEqual(yield* storage.listFacts("t1", "u1", "agent_2", 10), [])
      })
    )

    it.effect("answers a ping", () =>
      Effect.gen(function* () {
        const probe = yield* Database.Probe
        yield* probe.ping
      })
    )
  })
})
