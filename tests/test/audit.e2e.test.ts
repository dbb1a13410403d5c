/**
 * The audit log through the real server: key creation and revocation, agent changes, refusals
 * (403) and sampled key use are listed by `GET /v1/audit` newest first, for admins only; the
 * operator reads another tenant's log; the log survives a restart (durable, flushed on a clean
 * stop), on the embedded database and on PostgreSQL.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { createPgSchema, decode, ErrorEnvelope, Gateway, makeClient } from "../src/harness.ts"

const Entry = Schema.Struct({
  time: Schema.String,
  actor: Schema.String,
  tenant: Schema.String,
  action: Schema.String,
  target: Schema.String,
  request_id: Schema.NullOr(Schema.String),
  outcome: Schema.String
})
const Log = Schema.Struct({ data: Schema.Array(Entry) })
const CreatedKey = Schema.Struct({ id: Schema.String, key: Schema.String })
const CreatedAgent = Schema.Struct({ id: Schema.String })

const typeOf = (json: unknown) => decode(ErrorEnvelope, json).error.type

const suites = [
  { name: "embedded", postgres: false },
  { name: "PostgreSQL", postgres: true }
] as const

for (const suite of suites) {
  describe(`audit log (${suite.name})`, () => {
    let gateway: Gateway
    let dropSchema: (() => Promise<void>) | undefined

    beforeAll(async () => {
      let postgresUrl: string | undefined
      if (suite.postgres) {
        const schema = await createPgSchema()
        postgresUrl = schema.url
        dropSchema = schema.drop
      }
      gateway = await Gateway.start({
        config: "audit:\n  sample_key_use: 1\n",
        ...(postgresUrl === undefined ? {} : { postgresUrl })
      })
    })

    afterAll(async () => {
      await gateway?.dispose()
      await dropSchema?.()
    })

    const log = async (query = "", token?: string) => {
      const answer = await gateway.get(`/v1/audit${query}`, token === undefined ? {} : { token })
      assert.strictEqual(answer.status, 200, answer.text)
      return decode(Log, answer.json).data
    }

    const newKey = async (body: object) => {
      const answer = await gateway.post("/v1/keys", body)
      assert.strictEqual(answer.status, 201, answer.text)
      return decode(CreatedKey, answer.json)
    }

    it("lists key creation and revocation newest first, with actor, request id and outcome", async () => {
      const created = await newKey({ role: "user", name: "audited" })
      const revoke = await gateway.del(`/v1/keys/${created.id}`)
      assert.strictEqual(revoke.status, 200)
      const entries = (await log()).filter((entry) => entry.target === created.id)
      assert.deepStrictEqual(
        entries.map((entry) => [entry.action, entry.outcome, entry.tenant]),
        [
          ["key.revoke", "ok", "default"],
          ["key.create", "ok", "default"]
        ]
      )
      assert.strictEqual(entries[0]?.request_id, revoke.headers.get("x-request-id"))
      assert.match(entries[0]?.actor ?? "", /^key_/)
      assert.isTrue((entries[0]?.time ?? "") >= (entries[1]?.time ?? ""))
    })

    it("records refusals, agent changes and sampled key use; admins only", async () => {
      const user = makeClient(gateway.url, (await newKey({ role: "user" })).key)
      const refused = await user.get("/v1/audit")
      assert.strictEqual(refused.status, 403)
      assert.strictEqual(typeOf(refused.json), "forbidden")
      const agent = decode(
        CreatedAgent,
        (await gateway.post("/v1/agents", { name: "a", agent_type: "chat", system_prompt: "" })).json
      )
      assert.strictEqual(
        (
          await gateway.request("PATCH", `/v1/agents/${agent.id}`, JSON.stringify({ name: "b" }), {
            headers: { "content-type": "application/json" }
          })
        ).status,
        200
      )
      assert.strictEqual((await gateway.del(`/v1/agents/${agent.id}`)).status, 200)

      const entries = await log("?limit=1000")
      const actions = entries.map((entry) => `${entry.action}:${entry.outcome}`)
      assert.include(actions, "audit.list:denied")
      const agentEntries = entries.filter((entry) => entry.target === agent.id).map((entry) => entry.action)
      assert.deepStrictEqual(agentEntries, ["agent.delete", "agent.update", "agent.create"])
      // With audit.sample_key_use: 1, every use of a key is recorded.
      assert.include(actions, "key.use:ok")
    })

    it("bounds limit, and lets only the operator read another tenant's log", async () => {
      for (const limit of ["0", "1001", "abc", "-1"]) {
        const answer = await gateway.get(`/v1/audit?limit=${limit}`)
        assert.strictEqual(answer.status, 400, `limit=${limit}: ${answer.text}`)
        assert.strictEqual(typeOf(answer.json), "invalid_request")
      }
      assert.lengthOf(await log("?limit=1"), 1)

      const initechAdmin = await newKey({ role: "admin", tenant: "initech" })
      const initechUser = await newKey({ role: "user", tenant: "initech" })
      const operatorView = await log("?tenant=initech")
      assert.include(
        operatorView.map((entry) => entry.target),
        initechUser.id
      )
      assert.isTrue(operatorView.every((entry) => entry.tenant === "initech"))
      const asInitech = makeClient(gateway.url, initechAdmin.key)
      assert.strictEqual((await asInitech.get("/v1/audit?tenant=default")).status, 403)
      const own = await asInitech.get("/v1/audit")
      assert.strictEqual(own.status, 200)
      assert.isTrue(decode(Log, own.json).data.every((entry) => entry.tenant === "initech"))
    })

    it("keeps the log across a restart", async () => {
      const created = await newKey({ role: "user", name: "before restart" })
      await gateway.restart()
      const targets = (await log("?limit=1000")).map((entry) => entry.target)
      assert.include(targets, created.id)
    })
  })
}
