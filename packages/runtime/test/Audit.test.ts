/**
 * The durable audit log on both databases: entries listed newest first per tenant, a reader sees
 * what was recorded before it asked, and entries still queued when the log stops cleanly are
 * written (none lost).
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { SqlClient } from "effect/sql"
import { TestClock } from "effect/testing"
import * as Audit from "../src/Audit.ts"
import { databases } from "./support/databases.ts"

const event = (tenant: string, action: string, target: string): Audit.Event => ({
  actor: "key_1",
  tenant,
  action,
  target,
  request_id: null,
  outcome: "ok"
})

describe.each(databases("audit"))("Audit.layer on %s", (_name, database) => {
  it.layer(database)((it) => {
    it.effect("lists a tenant's entries newest first, those recorded in one millisecond in order", () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(Audit.layer, scope)
        const audit = Context.get(context, Audit.Audit)
        yield* audit.record(event("a", "key.create", "k1"))
        yield* audit.record(event("b", "key.create", "k2"))
        yield* audit.record(event("a", "key.revoke", "k1"))
        yield* TestClock.adjust("1 second")
        yield* audit.record(event("a", "agent.create", "ag1"))
        const listed = yield* audit.list("a", 10)
        assert.deepStrictEqual(
          listed.map((entry) => entry.action),
          ["agent.create", "key.revoke", "key.create"]
        )
        assert.strictEqual(listed[0]?.time, "1970-01-01T00:00:01.000Z")
        assert.deepStrictEqual(
          (yield* audit.list("a", 1)).map((entry) => entry.target),
          ["ag1"]
        )
        assert.deepStrictEqual(
          (yield* audit.list("b", 10)).map((entry) => entry.target),
          ["k2"]
        )
        yield* Scope.close(scope, Exit.void)
      })
    )

    it.effect("writes every queued entry when it stops cleanly", () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(Audit.layer, scope)
        const audit = Context.get(context, Audit.Audit)
        // Recorded without yielding to the writer, then stopped at once.
        yield* Effect.forEach(
          Array.from({ length: 600 }, (_, i) => event("stop", "key.use", `k${i}`)),
          audit.record,
          {
            discard: true
          }
        )
        yield* Scope.close(scope, Exit.void)
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{
          readonly n: number | string
        }>`SELECT COUNT(*) AS n FROM audit_log WHERE tenant = 'stop'`
        assert.strictEqual(Number(rows[0]?.n), 600)
      })
    )
  })
})
