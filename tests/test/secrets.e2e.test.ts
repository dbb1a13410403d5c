/**
 * Secrets, key guards and redaction through the real server, over a real socket:
 *
 * - signed keys: a good signature is served, a replayed one and a stale timestamp refused — on the
 *   stack (`/v1/chat`, `/v1/models`, the first completion of a key) and on the fast lane (the
 *   completions of a key the stack verified already);
 * - IP allow-lists per key and per tenant, from 127.0.0.1, and a trusted proxy's X-Forwarded-For;
 * - tenants' provider keys on PostgreSQL: stored sealed (no table of the schema holds the plain
 *   text), used for that tenant's calls (the fake provider records the Authorization header), the
 *   server's key for everyone else;
 * - canary secrets (the admin key, provider keys, a tenant key, a signing secret) never in the
 *   server's output or in an error body, across a run that provokes errors.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { AnthropicWire, FakeUpstream, OpenAiWire } from "@polyagent/providers/testing"
import { SecretBox } from "@polyagent/runtime"
import { Schema } from "effect"
import { createHmac, randomBytes } from "node:crypto"
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import {
  type Answer,
  createPgSchema,
  decode,
  ErrorEnvelope,
  Gateway,
  makeClient,
  type PgSchema
} from "../src/harness.ts"

const CreatedKey = Schema.Struct({
  id: Schema.String,
  key: Schema.String,
  signing_secret: Schema.optional(Schema.String),
  allowed_ips: Schema.optional(Schema.Array(Schema.String))
})

const typeOf = (answer: Answer) => decode(ErrorEnvelope, answer.json).error.type

const sign = (secret: string, timestamp: string, body: string) =>
  `v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`

const nowSeconds = () => String(Math.floor(Date.now() / 1000))

const completion = (content: string, model = "local") =>
  JSON.stringify({ model, messages: [{ role: "user", content }] })

/** The Authorization header of the last request `fake` received. */
const lastAuthorization = (fake: FakeUpstream.FakeUpstream) => fake.received.at(-1)?.headers["authorization"]

/** Every answer of a run, to search error bodies for canaries. */
const answers: Array<Answer> = []
const kept = (answer: Answer) => {
  answers.push(answer)
  return answer
}

describe("signed keys and IP allow-lists (embedded storage)", () => {
  let gateway: Gateway

  beforeAll(async () => {
    gateway = await Gateway.start({
      config: [
        "server:",
        '  trusted_proxies: ["127.0.0.1"]',
        "security:",
        "  signatures:",
        "    replay_window: 60s",
        "  tenants:",
        "    walled:",
        '      allowed_ips: ["192.0.2.0/24"]'
      ].join("\n")
    })
  })

  afterAll(async () => {
    await gateway?.dispose()
  })

  const newKey = async (body: object) => {
    const answer = kept(await gateway.post("/v1/keys", body))
    assert.strictEqual(answer.status, 201, answer.text)
    return decode(CreatedKey, answer.json)
  }

  /** A raw request with `key`, signed with `secret` at `timestamp` (now by default). */
  const signed = (
    key: string,
    secret: string,
    method: string,
    path: string,
    body: string,
    timestamp = nowSeconds(),
    signature = sign(secret, timestamp, body)
  ) =>
    gateway
      .request(method, path, method === "GET" ? undefined : body, {
        token: key,
        headers: {
          ...(method === "GET" ? {} : { "content-type": "application/json" }),
          "x-polyagent-timestamp": timestamp,
          "x-polyagent-signature": signature
        }
      })
      .then(kept)

  it("shows a signing secret once, and refuses unsigned, badly signed, stale and replayed requests on the stack", async () => {
    const created = await newKey({ role: "user", signed: true })
    const secret = created.signing_secret ?? ""
    assert.match(secret, /^pas_\w{43}$/)
    const listed = kept(await gateway.get("/v1/keys"))
    assert.notInclude(listed.text, secret)

    const body = JSON.stringify({ message: "hello" })
    const unsigned = kept(await makeClient(gateway.url, created.key).post("/v1/chat", { message: "hello" }))
    assert.strictEqual(unsigned.status, 401, unsigned.text)
    assert.include(decode(ErrorEnvelope, unsigned.json).error.message, "signed")

    const timestamp = nowSeconds()
    const good = await signed(created.key, secret, "POST", "/v1/chat", body, timestamp)
    assert.strictEqual(good.status, 200, good.text)
    const replayed = await signed(created.key, secret, "POST", "/v1/chat", body, timestamp)
    assert.strictEqual(replayed.status, 401, replayed.text)
    assert.include(decode(ErrorEnvelope, replayed.json).error.message, "already received")

    const stale = String(Math.floor(Date.now() / 1000) - 120)
    const old = await signed(created.key, secret, "POST", "/v1/chat", body, stale)
    assert.strictEqual(old.status, 401, old.text)
    assert.include(decode(ErrorEnvelope, old.json).error.message, "replay window")

    const tampered = await signed(
      created.key,
      secret,
      "POST",
      "/v1/chat",
      JSON.stringify({ message: "hello!" }),
      nowSeconds(),
      sign(secret, nowSeconds(), body)
    )
    assert.strictEqual(tampered.status, 401, tampered.text)
    assert.strictEqual(typeOf(tampered), "unauthenticated")

    // A GET is signed over an empty body.
    assert.strictEqual((await signed(created.key, secret, "GET", "/v1/models", "")).status, 200)
  })

  it("checks signatures on the fast lane too: a good completion, its replay and a stale one", async () => {
    const created = await newKey({ role: "user", signed: true })
    const secret = created.signing_secret ?? ""
    // The key's first request is the stack's; it verifies the key, and the lane takes the next ones.
    const first = await signed(created.key, secret, "POST", "/v1/chat/completions", completion("one"))
    assert.strictEqual(first.status, 200, first.text)
    const timestamp = nowSeconds()
    const body = completion("two")
    const good = await signed(created.key, secret, "POST", "/v1/chat/completions", body, timestamp)
    assert.strictEqual(good.status, 200, good.text)
    const replayed = await signed(created.key, secret, "POST", "/v1/chat/completions", body, timestamp)
    assert.strictEqual(replayed.status, 401, replayed.text)
    assert.strictEqual(typeOf(replayed), "unauthenticated")
    assert.isNotNull(replayed.headers.get("x-request-id"))
    const stale = String(Math.floor(Date.now() / 1000) + 600)
    const future = await signed(created.key, secret, "POST", "/v1/chat/completions", completion("three"), stale)
    assert.strictEqual(future.status, 401, future.text)
    // A replay refused by the lane is refused by the stack too (the other route of the same key).
    const viaStack = await signed(created.key, secret, "POST", "/v1/chat/completions", body, timestamp)
    assert.strictEqual(viaStack.status, 401)
  })

  it("refuses a key used from outside its allow-list, on the stack and the lane, and serves one inside", async () => {
    const outside = makeClient(gateway.url, (await newKey({ role: "user", allowed_ips: ["10.0.0.0/8"] })).key)
    for (const answer of [
      kept(await outside.get("/v1/models")),
      kept(await outside.post("/v1/chat/completions", completion("a"))),
      kept(await outside.post("/v1/chat/completions", completion("b")))
    ]) {
      assert.strictEqual(answer.status, 403, answer.text)
      assert.strictEqual(typeOf(answer), "forbidden")
      assert.notInclude(answer.text, "10.0.0.0")
    }
    const inside = makeClient(gateway.url, (await newKey({ role: "user", allowed_ips: ["127.0.0.1/32", "::1"] })).key)
    assert.strictEqual(kept(await inside.get("/v1/models")).status, 200)
    assert.strictEqual(kept(await inside.post("/v1/chat/completions", completion("c"))).status, 200)
    assert.strictEqual(kept(await inside.post("/v1/chat/completions", completion("d"))).status, 200)
    // The server trusts 127.0.0.1 as a proxy: the address it forwards is the client's.
    const forwarded = { headers: { "x-forwarded-for": "10.1.2.3" } }
    assert.strictEqual(kept(await outside.get("/v1/models", forwarded)).status, 200)
    assert.strictEqual(kept(await inside.get("/v1/models", forwarded)).status, 403)
    const invalid = kept(await gateway.post("/v1/keys", { role: "user", allowed_ips: ["10.0.0.300/8"] }))
    assert.strictEqual(invalid.status, 400, invalid.text)
  })

  it("refuses a tenant's keys from outside the tenant's allow-list", async () => {
    const walled = makeClient(gateway.url, (await newKey({ role: "admin", tenant: "walled" })).key)
    const refused = kept(await walled.get("/v1/models"))
    assert.strictEqual(refused.status, 403, refused.text)
    assert.strictEqual(
      kept(await walled.get("/v1/models", { headers: { "x-forwarded-for": "192.0.2.7" } })).status,
      200
    )
  })

  it("keeps the signing secrets sealed in the SQLite files, under a 0600 key file", async () => {
    const created = await newKey({ role: "user", signed: true })
    const files = (await readdir(gateway.dataDir)).filter((name) => name !== SecretBox.keyFileName)
    let scanned = 0
    for (const name of files) {
      const bytes = await readFile(join(gateway.dataDir, name)).catch(() => undefined)
      if (bytes === undefined) continue
      scanned++
      assert.notInclude(bytes.toString("latin1"), created.signing_secret ?? "x", name)
    }
    assert.isAbove(scanned, 0)
  })

  it("never writes the admin key or a signing secret to its output", () => {
    const output = gateway.output.stdout + gateway.output.stderr
    assert.notInclude(output, gateway.adminKey)
    for (const answer of answers) assert.notInclude(answer.text, gateway.adminKey)
    assert.notInclude(output, "pas_")
  })
})

describe("tenants' provider keys (PostgreSQL)", () => {
  const serverOpenAiKey = `sk-server-canary-${randomBytes(12).toString("hex")}`
  const serverAnthropicKey = `sk-ant-server-canary-${randomBytes(12).toString("hex")}`
  const tenantKey = `sk-tenant-canary-${randomBytes(12).toString("hex")}`
  const tenantAnthropicKey = `sk-ant-tenant-canary-${randomBytes(12).toString("hex")}`
  let schema: PgSchema
  let openAi: FakeUpstream.FakeUpstream
  let anthropic: FakeUpstream.FakeUpstream
  let gateway: Gateway
  const runAnswers: Array<Answer> = []
  const keep = (answer: Answer) => {
    runAnswers.push(answer)
    return answer
  }

  beforeAll(async () => {
    schema = await createPgSchema()
    openAi = await FakeUpstream.start(OpenAiWire.routes("/v1"))
    anthropic = await FakeUpstream.start(AnthropicWire.routes())
    gateway = await Gateway.start({
      postgresUrl: schema.url,
      env: {
        POLYAGENT_SECRET_KEYS: SecretBox.generateKeyText("k1"),
        OPENAI_API_KEY: serverOpenAiKey,
        OPENAI_BASE_URL: `${openAi.url}/v1`,
        ANTHROPIC_API_KEY: serverAnthropicKey,
        ANTHROPIC_BASE_URL: anthropic.url,
        LOG_LEVEL: "debug"
      }
    })
  })

  afterAll(async () => {
    await gateway?.dispose()
    await openAi?.close()
    await anthropic?.close()
    await schema?.drop()
  })

  const newKey = async (body: object) => {
    const answer = keep(await gateway.post("/v1/keys", body))
    assert.strictEqual(answer.status, 201, answer.text)
    return decode(CreatedKey, answer.json).key
  }

  it("stores a tenant's key sealed, never answers it, and uses it for that tenant's calls only", async () => {
    const put = keep(
      await gateway.request("PUT", "/v1/tenants/acme/providers/openai", JSON.stringify({ api_key: tenantKey }), {
        headers: { "content-type": "application/json" }
      })
    )
    assert.strictEqual(put.status, 200, put.text)
    assert.deepInclude(put.json as object, { tenant: "acme", provider: "openai", configured: true })
    assert.notInclude(put.text, tenantKey)
    const listed = keep(await gateway.get("/v1/tenants/acme/providers"))
    assert.strictEqual(listed.status, 200, listed.text)
    assert.include(listed.text, '"provider":"openai"')
    assert.notInclude(listed.text, tenantKey)

    const acme = makeClient(gateway.url, await newKey({ role: "user", tenant: "acme" }))
    const viaSession = keep(await acme.post("/v1/chat", { message: "hello", model: "gpt-4o-mini" }))
    assert.strictEqual(viaSession.status, 200, viaSession.text)
    assert.strictEqual(lastAuthorization(openAi), `Bearer ${tenantKey}`)
    // Relayed: the first completion on the stack, the next on the fast lane.
    for (const n of [1, 2]) {
      const relayed = keep(await acme.post("/v1/chat/completions", completion(`hi ${n}`, "gpt-4o-mini")))
      assert.strictEqual(relayed.status, 200, relayed.text)
      assert.strictEqual(lastAuthorization(openAi), `Bearer ${tenantKey}`)
    }
    // Everyone else: the server's key.
    const other = keep(await gateway.post("/v1/chat/completions", completion("hi", "gpt-4o-mini")))
    assert.strictEqual(other.status, 200, other.text)
    assert.strictEqual(lastAuthorization(openAi), `Bearer ${serverOpenAiKey}`)

    // Anthropic, converted: the tenant's key goes as x-api-key.
    const putAnthropic = keep(
      await gateway.request(
        "PUT",
        "/v1/tenants/acme/providers/anthropic",
        JSON.stringify({ api_key: tenantAnthropicKey }),
        {
          headers: { "content-type": "application/json" }
        }
      )
    )
    assert.strictEqual(putAnthropic.status, 200, putAnthropic.text)
    const converted = keep(await acme.post("/v1/chat/completions", completion("hey", "claude-haiku-4-5")))
    assert.strictEqual(converted.status, 200, converted.text)
    assert.strictEqual(anthropic.received.at(-1)?.headers["x-api-key"], tenantAnthropicKey)

    // Removed: the server's key again, at once.
    assert.strictEqual(keep(await gateway.del("/v1/tenants/acme/providers/openai")).status, 200)
    assert.strictEqual(keep(await gateway.del("/v1/tenants/acme/providers/openai")).status, 404)
    assert.strictEqual(keep(await acme.post("/v1/chat/completions", completion("again", "gpt-4o-mini"))).status, 200)
    assert.strictEqual(lastAuthorization(openAi), `Bearer ${serverOpenAiKey}`)
  })

  it("keeps the plain text out of every table of the schema", async () => {
    const put = keep(
      await gateway.request("PUT", "/v1/tenants/acme/providers/openai", JSON.stringify({ api_key: tenantKey }), {
        headers: { "content-type": "application/json" }
      })
    )
    assert.strictEqual(put.status, 200)
    const tables = await schema.tables()
    assert.include(tables, "tenant_provider_keys")
    let dumped = ""
    for (const table of tables)
      dumped += JSON.stringify(await schema.query(`SELECT * FROM "${table}"`), (_key, value: unknown) =>
        typeof value === "bigint" ? String(value) : value
      )
    assert.include(dumped, "v1:k1:")
    for (const canary of [tenantKey, tenantAnthropicKey, serverOpenAiKey, gateway.adminKey]) {
      assert.notInclude(dumped, canary)
    }
  })

  it("lets only the tenant's admins and the operator manage its keys, and the operator alone set base_url", async () => {
    const acmeAdmin = makeClient(gateway.url, await newKey({ role: "admin", tenant: "acme" }))
    const otherAdmin = makeClient(gateway.url, await newKey({ role: "admin", tenant: "other" }))
    const acmeUser = makeClient(gateway.url, await newKey({ role: "user", tenant: "acme" }))
    const body = JSON.stringify({ api_key: tenantKey })
    const json = { headers: { "content-type": "application/json" } }
    assert.strictEqual(
      keep(await acmeAdmin.request("PUT", "/v1/tenants/acme/providers/openai", body, json)).status,
      200
    )
    assert.strictEqual(keep(await acmeAdmin.get("/v1/tenants/acme/providers")).status, 200)
    const foreign = keep(await otherAdmin.get("/v1/tenants/acme/providers"))
    assert.strictEqual(foreign.status, 404, foreign.text)
    assert.strictEqual(keep(await otherAdmin.del("/v1/tenants/acme/providers/openai")).status, 404)
    assert.strictEqual(keep(await acmeUser.get("/v1/tenants/acme/providers")).status, 403)
    const withUrl = JSON.stringify({ api_key: tenantKey, base_url: "http://127.0.0.1:9/v1" })
    assert.strictEqual(
      keep(await acmeAdmin.request("PUT", "/v1/tenants/acme/providers/openai", withUrl, json)).status,
      403
    )
    const unknown = keep(await acmeAdmin.request("PUT", "/v1/tenants/acme/providers/nope", body, json))
    assert.strictEqual(unknown.status, 400, unknown.text)
    // A key that breaks the schema is refused without being quoted.
    const spaced = `${tenantKey} with spaces`
    const bad = keep(
      await acmeAdmin.request("PUT", "/v1/tenants/acme/providers/openai", JSON.stringify({ api_key: spaced }), json)
    )
    assert.strictEqual(bad.status, 400, bad.text)
    assert.notInclude(bad.text, tenantKey)
  })

  it("follows a tenant's own base URL, set by the operator", async () => {
    const second = await FakeUpstream.start(OpenAiWire.routes("/custom/v1"))
    try {
      const put = keep(
        await gateway.request(
          "PUT",
          "/v1/tenants/byourl/providers/openai",
          JSON.stringify({ api_key: tenantKey, base_url: `${second.url}/custom/v1` }),
          { headers: { "content-type": "application/json" } }
        )
      )
      assert.strictEqual(put.status, 200, put.text)
      const client = makeClient(gateway.url, await newKey({ role: "user", tenant: "byourl" }))
      for (const n of [1, 2]) {
        const answer = keep(await client.post("/v1/chat/completions", completion(`x${n}`, "gpt-4o-mini")))
        assert.strictEqual(answer.status, 200, answer.text)
      }
      assert.strictEqual(keep(await client.post("/v1/chat", { message: "y", model: "gpt-4o-mini" })).status, 200)
      assert.lengthOf(second.received, 3)
      assert.strictEqual(lastAuthorization(second), `Bearer ${tenantKey}`)
    } finally {
      await second.close()
    }
  })

  it("never writes a canary to its output or an error body, though it logged at debug through errors", async () => {
    // An upstream failure, at debug level: the upstream's text is logged, scrubbed.
    const failing = keep(await gateway.post("/v1/chat/completions", completion("[[401]]", "gpt-4o-mini")))
    assert.isAtLeast(failing.status, 400)
    const output = gateway.output.stdout + gateway.output.stderr
    assert.include(output, "request")
    for (const canary of [tenantKey, tenantAnthropicKey, serverOpenAiKey, serverAnthropicKey, gateway.adminKey]) {
      assert.notInclude(output, canary)
      for (const answer of runAnswers) assert.notInclude(answer.text, canary)
    }
  })
})

describe("PostgreSQL without a secret key", () => {
  let schema: PgSchema
  let gateway: Gateway

  beforeAll(async () => {
    schema = await createPgSchema()
    gateway = await Gateway.start({ postgresUrl: schema.url })
  })

  afterAll(async () => {
    await gateway?.dispose()
    await schema?.drop()
  })

  it("starts, and refuses only what would store a secret, saying what to set", async () => {
    const put = await gateway.request(
      "PUT",
      "/v1/tenants/acme/providers/openai",
      JSON.stringify({ api_key: "sk-x-123" }),
      {
        headers: { "content-type": "application/json" }
      }
    )
    assert.strictEqual(put.status, 503, put.text)
    assert.include(decode(ErrorEnvelope, put.json).error.message, "POLYAGENT_SECRET_KEYS")
    const signedKey = await gateway.post("/v1/keys", { role: "user", signed: true })
    assert.strictEqual(signedKey.status, 503, signedKey.text)
    assert.include(decode(ErrorEnvelope, signedKey.json).error.message, "POLYAGENT_SECRET_KEYS")
    const walled = await gateway.post("/v1/keys", { role: "user", allowed_ips: ["127.0.0.1"] })
    assert.strictEqual(walled.status, 201, walled.text)
    assert.strictEqual(
      (await makeClient(gateway.url, decode(CreatedKey, walled.json).key).get("/v1/models")).status,
      200
    )
  })
})
