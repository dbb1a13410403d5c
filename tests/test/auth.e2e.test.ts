/**
 * JWT authentication through the real server: tokens signed with HS256, RS256 (PEM), ES256 (PEM)
 * and keys of a local JWKS server are accepted with their tenant and role; every forged, expired,
 * mis-addressed or tampered token answers the same 401; no key is ever fetched from where a
 * token points (`jku`, `x5u`, an embedded `jwk`); start-up refuses JWT settings that cannot work.
 * Also: RBAC on every route family and the tenant walls for JWT callers, and the fast lane
 * answering a JWT as the stack does.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Agent } from "@polyagent/runtime"
import { Schema } from "effect"
import { generateKeyPairSync, type KeyObject } from "node:crypto"
import { once } from "node:events"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as Jose from "jose"
import { decode, ErrorEnvelope, freePort, Gateway, makeClient, runUntilExit } from "../src/harness.ts"

const secret = "an-hs256-secret-of-at-least-32-characters!"
const issuer = "https://issuer.example"
const audience = "polyagent"

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 })
const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
const attacker = generateKeyPairSync("rsa", { modulusLength: 2048 })
const pemOf = (key: KeyObject) => key.export({ type: "spki", format: "pem" }).toString()

const now = () => Math.floor(Date.now() / 1000)

interface Claims {
  readonly [claim: string]: unknown
}
const standard = (claims: Claims = {}): Claims => ({
  sub: "alice",
  iss: issuer,
  aud: audience,
  exp: now() + 300,
  ...claims
})

/** A token signed with `key`, with `header` (alg first) and the `standard` claims unless replaced. */
const sign = (key: KeyObject | Uint8Array, header: Jose.JWTHeaderParameters, claims: Claims = standard()) =>
  new Jose.SignJWT({ ...claims }).setProtectedHeader(header).sign(key)

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
/** An unsigned token whose header claims `alg`. */
const unsigned = (alg: string, claims: Claims = standard()) => `${b64({ alg, typ: "JWT" })}.${b64(claims)}.`

const hs256 = (claims?: Claims) => sign(new TextEncoder().encode(secret), { alg: "HS256" }, claims)

/** A local HTTP server answering `body` and counting its hits. */
const serve = async (body: () => string) => {
  const counter = { hits: 0, url: "", server: undefined as Server | undefined }
  const server = createServer((_request, response) => {
    counter.hits += 1
    response.writeHead(200, { "content-type": "application/json" }).end(body())
  })
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  counter.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  counter.server = server
  return counter
}

const agentsAs = (target: Gateway, token: string) => target.get("/v1/agents", { token })

const typeOf = (json: unknown) => decode(ErrorEnvelope, json).error.type

const CreatedKey = Schema.Struct({ id: Schema.String, key: Schema.String })

/** Asserts that `token` answers 401 `unauthenticated` with the one generic message. */
const refused = async (target: Gateway, token: string, why: string) => {
  const answer = await agentsAs(target, token)
  assert.strictEqual(answer.status, 401, `${why}: ${answer.text}`)
  assert.strictEqual(typeOf(answer.json), "unauthenticated", why)
  assert.include(decode(ErrorEnvelope, answer.json).error.message, "a valid API key or token is required", why)
}

describe("JWT authentication", () => {
  let gateway: Gateway
  let jwksGateway: Gateway
  let ecGateway: Gateway
  let canary: Awaited<ReturnType<typeof serve>>
  let jwks: Awaited<ReturnType<typeof serve>>

  beforeAll(async () => {
    const attackerKeys = JSON.stringify({ keys: [{ ...(await Jose.exportJWK(attacker.publicKey)), kid: "evil" }] })
    canary = await serve(() => attackerKeys)
    const rsaJwk = { ...(await Jose.exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" }
    const ecJwk = { ...(await Jose.exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" }
    jwks = await serve(() => JSON.stringify({ keys: [rsaJwk, ecJwk] }))
    ;[gateway, jwksGateway, ecGateway] = await Promise.all([
      Gateway.start({
        env: { JWT_SECRET: secret, JWT_PUBLIC_KEY: pemOf(rsa.publicKey), JWT_ISSUER: issuer, JWT_AUDIENCE: audience }
      }),
      Gateway.start({ env: { JWT_JWKS_URL: `${jwks.url}/.well-known/jwks.json` } }),
      Gateway.start({ env: { JWT_PUBLIC_KEY: pemOf(ec.publicKey) } })
    ])
  })

  afterAll(async () => {
    await Promise.all([gateway?.dispose(), jwksGateway?.dispose(), ecGateway?.dispose()])
    canary?.server?.close()
    jwks?.server?.close()
  })

  it("accepts HS256 and RS256 tokens with their tenant and role", async () => {
    const builder = await hs256(standard({ tenant: "jwt-acme", roles: ["user", "builder", "astronaut"] }))
    const created = await gateway.post(
      "/v1/agents",
      { name: "jwt bot", agent_type: "chat", system_prompt: "hi" },
      { token: builder }
    )
    assert.strictEqual(created.status, 201, created.text)
    const agent = decode(Agent.Agent, created.json)

    // Another subject of the same tenant, signed with RS256, sees it; the default tenant does not.
    const reader = await sign(rsa.privateKey, { alg: "RS256" }, standard({ sub: "bob", tenant: "jwt-acme" }))
    assert.strictEqual((await gateway.get(`/v1/agents/${agent.id}`, { token: reader })).status, 200)
    assert.strictEqual((await gateway.get(`/v1/agents/${agent.id}`)).status, 404)

    // No known role: a user, who may read but not build.
    const user = await sign(rsa.privateKey, { alg: "RS256" }, standard({ tenant: "jwt-acme", roles: ["root"] }))
    const build = await gateway.post(
      "/v1/agents",
      { name: "x", agent_type: "chat", system_prompt: "" },
      { token: user }
    )
    assert.strictEqual(build.status, 403, build.text)
    assert.strictEqual(typeOf(build.json), "forbidden")

    // An admin of the default tenant (no tenant claim) manages keys.
    const admin = await hs256(standard({ roles: ["admin"] }))
    assert.strictEqual((await gateway.get("/v1/keys", { token: admin })).status, 200)
    assert.strictEqual((await gateway.get("/v1/keys", { token: builder })).status, 403)
  })

  it("accepts ES256 (PEM) and RS256 and ES256 keys of a JWKS chosen by kid", async () => {
    const es = await sign(ec.privateKey, { alg: "ES256" }, { sub: "carol", exp: now() + 60 })
    assert.strictEqual((await agentsAs(ecGateway, es)).status, 200)
    const viaJwksRsa = await sign(rsa.privateKey, { alg: "RS256", kid: "rsa-1" }, { sub: "dave", exp: now() + 60 })
    const viaJwksEc = await sign(ec.privateKey, { alg: "ES256", kid: "ec-1" }, { sub: "erin", exp: now() + 60 })
    assert.strictEqual((await agentsAs(jwksGateway, viaJwksRsa)).status, 200)
    assert.strictEqual((await agentsAs(jwksGateway, viaJwksEc)).status, 200)
    assert.isAbove(jwks.hits, 0)
  })

  it("refuses alg none in any casing, alg confusion, tampering, and tokens out of time or address", async () => {
    for (const alg of ["none", "None", "NONE", "nOnE"]) await refused(gateway, unsigned(alg), `alg ${alg}`)
    // The RS256 public key used as an HS256 secret: on a server with HS256 the MAC does not match,
    // and on a server without HS256 the algorithm is not on the list.
    const rsaPemAsSecret = new TextEncoder().encode(pemOf(rsa.publicKey))
    await refused(gateway, await sign(rsaPemAsSecret, { alg: "HS256" }), "RS256 key as HS256 secret")
    const ecPemAsSecret = new TextEncoder().encode(pemOf(ec.publicKey))
    await refused(ecGateway, await sign(ecPemAsSecret, { alg: "HS256" }, { sub: "x", exp: now() + 60 }), "ES key as HS")

    const valid = await hs256()
    assert.strictEqual((await agentsAs(gateway, valid)).status, 200)
    const [header, , signature] = valid.split(".")
    const tampered = `${header}.${b64(standard({ roles: ["admin"] }))}.${signature}`
    await refused(gateway, tampered, "tampered payload")

    await refused(gateway, await hs256(standard({ exp: now() - 120 })), "expired")
    const { exp: _exp, ...noExp } = standard()
    await refused(gateway, await hs256(noExp), "missing exp")
    const { sub: _sub, ...noSub } = standard()
    await refused(gateway, await hs256(noSub), "missing sub")
    await refused(gateway, await hs256(standard({ aud: "someone-else" })), "wrong aud")
    await refused(gateway, await hs256(standard({ iss: "https://evil.example" })), "wrong iss")
    await refused(gateway, await hs256(standard({ nbf: now() + 600 })), "future nbf")
    // Within the 30 s skew: accepted.
    assert.strictEqual((await agentsAs(gateway, await hs256(standard({ nbf: now() + 5 })))).status, 200)
    await refused(gateway, await hs256(standard({ tenant: "../other" })), "bad tenant claim")
    await refused(gateway, "not.a.jwt", "garbage")
  })

  it("never fetches or trusts a key a token points at: jku, x5u, embedded jwk, kid traversal", async () => {
    const attackerJwk = await Jose.exportJWK(attacker.publicKey)
    const forged = [
      await sign(attacker.privateKey, { alg: "RS256", jku: `${canary.url}/jwks.json`, kid: "evil" }),
      await sign(attacker.privateKey, { alg: "RS256", x5u: `${canary.url}/cert.pem` }),
      await sign(attacker.privateKey, { alg: "RS256", jwk: attackerJwk }),
      await sign(attacker.privateKey, { alg: "RS256", kid: "../../etc/passwd" })
    ]
    for (const [i, token] of forged.entries()) {
      await refused(gateway, token, `forged ${i}`)
      await refused(jwksGateway, token, `forged ${i} (JWKS)`)
    }
    const traversal = await sign(
      rsa.privateKey,
      { alg: "RS256", kid: "../../etc/passwd" },
      { sub: "x", exp: now() + 60 }
    )
    await refused(jwksGateway, traversal, "kid traversal with a real key")
    assert.strictEqual(canary.hits, 0)
    for (const target of [gateway, jwksGateway]) {
      assert.notInclude(target.output.stdout + target.output.stderr, "/etc/passwd")
    }
  })

  it("serves a JWT on /v1/chat/completions through the fast lane as through the stack", async () => {
    const token = await hs256()
    const body = { model: "local", messages: [{ role: "user", content: "hello" }] }
    const first = await gateway.post("/v1/chat/completions", body, { token })
    const second = await gateway.post("/v1/chat/completions", body, { token })
    assert.strictEqual(first.status, 200, first.text)
    assert.strictEqual(second.status, 200, second.text)
    assert.strictEqual(first.headers.get("x-polyagent-model"), second.headers.get("x-polyagent-model"))
    const expired = await hs256(standard({ exp: now() - 120 }))
    const refusedAnswer = await gateway.post("/v1/chat/completions", body, { token: expired })
    assert.strictEqual(refusedAnswer.status, 401)
    // The calls are charged to the subject as `jwt:<sub>`, which the usage report shows.
    const usage = await gateway.get("/v1/usage?group_by=key")
    assert.strictEqual(usage.status, 200, usage.text)
    assert.include(usage.text, '"key":"jwt:alice"')
  })

  it("stops start-up on JWT settings that cannot work, naming the key", async () => {
    const badPem = await runUntilExit({ JWT_PUBLIC_KEY: "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----" })
    assert.notStrictEqual(badPem.code, 0)
    assert.include(badPem.stdout + badPem.stderr, "security.jwt.public_key")
    const shortSecret = await runUntilExit({ JWT_SECRET: "short" })
    assert.notStrictEqual(shortSecret.code, 0)
    assert.include(shortSecret.stdout + shortSecret.stderr, "security.jwt.secret")
    assert.notInclude(shortSecret.stdout + shortSecret.stderr, '"short"')
  })

  it("answers 503, not 401, while the JWKS cannot be fetched", async () => {
    const unreachable = await Gateway.start({ env: { JWT_JWKS_URL: `http://127.0.0.1:${await freePort()}/jwks.json` } })
    try {
      const token = await sign(rsa.privateKey, { alg: "RS256", kid: "rsa-1" }, { sub: "x", exp: now() + 60 })
      const answer = await agentsAs(unreachable, token)
      assert.strictEqual(answer.status, 503, answer.text)
      assert.strictEqual(typeOf(answer.json), "unavailable")
    } finally {
      await unreachable.dispose()
    }
  })

  it("never writes a token or secret into the logs", async () => {
    const token = await hs256()
    await agentsAs(gateway, token)
    await agentsAs(gateway, `${token}x`)
    const logs = gateway.output.stdout + gateway.output.stderr
    assert.notInclude(logs, token.split(".")[2] ?? token)
    assert.notInclude(logs, secret)
  })
})

describe("roles and tenants", () => {
  let gateway: Gateway

  beforeAll(async () => {
    gateway = await Gateway.start()
  })

  afterAll(async () => {
    await gateway?.dispose()
  })

  const newKey = async (body: object, as?: string) => {
    const answer = await gateway.post("/v1/keys", body, as === undefined ? {} : { token: as })
    assert.strictEqual(answer.status, 201, answer.text)
    return decode(CreatedKey, answer.json)
  }

  it("a user on a builder route and a builder minting an admin key get 403", async () => {
    const user = (await newKey({ role: "user" })).key
    const builder = (await newKey({ role: "builder" })).key
    const asUser = makeClient(gateway.url, user)
    const asBuilder = makeClient(gateway.url, builder)
    const build = await asUser.post("/v1/agents", { name: "x", agent_type: "chat", system_prompt: "" })
    assert.strictEqual(build.status, 403, build.text)
    assert.strictEqual(typeOf(build.json), "forbidden")
    assert.strictEqual((await asUser.get("/v1/experiments/anything")).status, 403)
    assert.strictEqual((await asBuilder.post("/v1/keys", { role: "admin" })).status, 403)
    assert.strictEqual((await asBuilder.get("/v1/audit")).status, 403)
    assert.strictEqual(
      (await asBuilder.post("/v1/agents", { name: "b", agent_type: "chat", system_prompt: "" })).status,
      201
    )
  })
})
