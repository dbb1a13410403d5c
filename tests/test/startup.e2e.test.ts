/**
 * Safe starts: the embedded database belongs to one process (a second one pointed at the same
 * data directory is refused, and the first keeps its data); several processes need
 * PostgreSQL, and a configuration that asks for them without it stops start-up saying so;
 * `server.workers: 2` on PostgreSQL runs two runner processes sharing one port, which migrate
 * an empty database once between them and both stop on SIGTERM.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { execFileSync } from "node:child_process"
import { createPgSchema, decode, Gateway, type PgSchema, runUntilExit } from "../src/harness.ts"

const Turn = Schema.Struct({ session_id: Schema.String })
const Stored = Schema.Struct({ messages: Schema.Array(Schema.Struct({ role: Schema.String, content: Schema.String })) })

describe("one embedded database, one process", () => {
  let first: Gateway

  beforeAll(async () => {
    first = await Gateway.start()
  })

  afterAll(async () => {
    await first?.dispose()
  })

  it("refuses a second process on the same data directory, and the first keeps its data", async () => {
    const turn = await first.post("/v1/chat", { message: "mine" })
    assert.strictEqual(turn.status, 200)
    const { session_id } = decode(Turn, turn.json)

    const second = await runUntilExit({ POLYAGENT_DATA_DIR: first.dataDir, GATEWAY_PORT: "0" })
    assert.strictEqual(second.code, 1)
    assert.include(second.stderr, `the data directory ${first.dataDir} is in use by another PolyAgent process`)
    assert.notMatch(second.stderr, /\bat\s+\S+\.[jt]s:\d+/, "no stack trace")

    const again = await first.post("/v1/chat", { message: "still mine", session_id })
    assert.strictEqual(again.status, 200, again.text)
    const stored = decode(Stored, (await first.get(`/v1/sessions/${session_id}`)).json)
    assert.deepStrictEqual(
      stored.messages.filter((message) => message.role === "user").map((message) => message.content),
      ["mine", "still mine"]
    )
  })
})

describe("several processes need PostgreSQL", () => {
  const refusals: ReadonlyArray<readonly [string, Record<string, string>, string]> = [
    ["server.workers", { POLYAGENT_WORKERS: "2" }, "server.workers: 2 worker processes need PostgreSQL"],
    [
      "cluster.runner_port",
      { POLYAGENT_RUNNER_PORT: "20000" },
      "cluster.runner_port: a cluster of processes needs PostgreSQL"
    ]
  ]
  for (const [setting, env, message] of refusals) {
    it(`stops start-up when ${setting} is set on the embedded database`, async () => {
      const exited = await runUntilExit({ ...env, GATEWAY_PORT: "0" })
      assert.strictEqual(exited.code, 1)
      assert.include(exited.stderr, message)
    })
  }
})

describe("server.workers: 2 on PostgreSQL", () => {
  let schema: PgSchema
  let gateway: Gateway

  beforeAll(async () => {
    schema = await createPgSchema()
    gateway = await Gateway.start({ postgresUrl: schema.url, env: { POLYAGENT_WORKERS: "2" } })
  }, 60_000)

  afterAll(async () => {
    await gateway?.dispose()
    await schema?.drop()
  })

  it("runs two runners behind one port, migrates once, replaces a worker that dies, and stops on SIGTERM", async () => {
    // Both workers register as runners shortly after the first one answers.
    let runners: ReadonlyArray<Record<string, unknown>> = []
    for (let i = 0; i < 50 && runners.length < 2; i++) {
      runners = await schema.query("SELECT address FROM cluster_runners")
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.strictEqual(runners.length, 2, "two runners")
    const migrations = await schema.query("SELECT migration_id FROM polyagent_migrations")
    const ids = migrations.map((row) => row["migration_id"])
    assert.strictEqual(new Set(ids).size, ids.length, "each migration ran once")

    const sessions = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const answer = await gateway.post("/v1/chat", { message: `hello ${i}` })
        assert.strictEqual(answer.status, 200, answer.text)
        return decode(Turn, answer.json).session_id
      })
    )
    for (const session_id of sessions) {
      assert.strictEqual((await gateway.post("/v1/chat", { message: "again", session_id })).status, 200)
    }

    // A worker that dies is started again; the port keeps answering meanwhile.
    const workerPids = execFileSync("pgrep", ["-P", String(gateway.pid)], { encoding: "utf8" })
      .trim()
      .split("\n")
    assert.strictEqual(workerPids.length, 2, "two worker processes")
    process.kill(Number(workerPids[0]), "SIGKILL")
    const killedAt = Date.now()
    for (const session_id of sessions.slice(0, 5)) {
      // A keep-alive connection the dead worker held fails; the next one goes to the other worker.
      let answer = await gateway.post("/v1/chat", { message: "after a worker died", session_id }).catch(() => undefined)
      for (let i = 0; i < 50 && answer?.status !== 200; i++) {
        await new Promise((resolve) => setTimeout(resolve, 200))
        answer = await gateway.post("/v1/chat", { message: "after a worker died", session_id }).catch(() => undefined)
      }
      assert.strictEqual(answer?.status, 200, answer?.text)
    }
    let replaced = false
    for (let i = 0; i < 100 && !replaced; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      const now = execFileSync("pgrep", ["-P", String(gateway.pid)], { encoding: "utf8" })
        .trim()
        .split("\n")
      replaced = now.length === 2 && !now.includes(workerPids[0] ?? "")
    }
    assert.isTrue(replaced, "the primary started a new worker")

    // The dead worker's runner row is removed by the next runner that registers or unregisters once
    // its last heartbeat is older than the lock expiry (6 s): the stop below does it.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, killedAt + 7_000 - Date.now())))
    const exited = await gateway.stop(30_000)
    assert.strictEqual(exited?.code, 0, exited?.stderr)
    assert.include(exited?.stdout ?? "", "worker exited; starting it again")
    assert.deepStrictEqual(await schema.query("SELECT address FROM cluster_runners"), [], "the runners left")
  }, 60_000)
})
