/**
 * Listener's TLS set-up: `server.tls` files that cannot be read, are not PEM, or do not belong
 * together fail with a `TlsError` naming the key; a matching pair makes an HTTP/2 secure server.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { Server } from "node:http"
import { tmpdir } from "node:os"
import { Server as TlsServer } from "node:tls"
import { join } from "node:path"
import { Listener, readTls, TlsError } from "../src/Listener.ts"

const dir = mkdtempSync(join(tmpdir(), "polyagent-listener-"))
const path = (name: string) => join(dir, name)

/** A self-signed certificate and its key, as `<name>.cert.pem` and `<name>.key.pem`. */
const selfSigned = (name: string) =>
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      path(`${name}.key.pem`),
      "-out",
      path(`${name}.cert.pem`),
      "-days",
      "1",
      "-subj",
      "/CN=localhost"
    ],
    { stdio: "ignore" }
  )

/** The message of `effect`'s `TlsError`, failing the test when it succeeds or fails otherwise. */
const tlsFailure = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.flatMap(Effect.flip(effect), (error) =>
    error instanceof TlsError ? Effect.succeed(error.message) : Effect.die(error)
  )

const build = (paths: { readonly cert: string; readonly key: string }) =>
  Effect.gen(function* () {
    const tls = yield* readTls(paths)
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(Listener.layer(undefined, tls), scope)
    yield* Scope.close(scope, Exit.void)
    return context
  })

describe("Listener TLS", () => {
  beforeAll(() => {
    selfSigned("a")
    selfSigned("b")
    writeFileSync(path("junk.pem"), "not a PEM file\n")
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it.effect("names server.tls.cert when the certificate cannot be read", () =>
    Effect.gen(function* () {
      const message = yield* tlsFailure(readTls({ cert: path("missing.pem"), key: path("a.key.pem") }))
      assert.match(message, /^server\.tls\.cert: cannot read .*missing\.pem/)
    })
  )

  it.effect("names the key whose file is not PEM", () =>
    Effect.gen(function* () {
      const cert = yield* tlsFailure(readTls({ cert: path("junk.pem"), key: path("a.key.pem") }))
      assert.match(cert, /^server\.tls\.cert: .*junk\.pem is not a PEM certificate/)
      const key = yield* tlsFailure(readTls({ cert: path("a.cert.pem"), key: path("a.cert.pem") }))
      assert.match(key, /^server\.tls\.key: .*a\.cert\.pem is not a PEM private key/)
    })
  )

  it.effect("names server.tls when the key is not the certificate's", () =>
    Effect.gen(function* () {
      const message = yield* tlsFailure(build({ cert: path("a.cert.pem"), key: path("b.key.pem") }))
      assert.match(message, /^server\.tls: /)
    })
  )

  it.effect("makes a node:http2 secure server from a matching pair, a node:http one without", () =>
    Effect.gen(function* () {
      const secure = Context.get(yield* build({ cert: path("a.cert.pem"), key: path("a.key.pem") }), Listener)
      assert.instanceOf(secure.server, TlsServer)
      const plain = Context.get(yield* Effect.scoped(Layer.build(Listener.layer())), Listener)
      assert.instanceOf(plain.server, Server)
    })
  )
})
