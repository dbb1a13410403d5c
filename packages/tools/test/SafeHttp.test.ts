import * as Http from "node:http"
import * as Zlib from "node:zlib"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as SafeHttp from "../src/SafeHttp.ts"

/** A local server on 127.0.0.1 for the test's scope; `sockets` counts connections. */
const serve = (handler: Http.RequestListener) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly server: Http.Server; readonly port: number }>((resume) => {
      const server = Http.createServer(handler)
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(Effect.succeed({ server, port: typeof address === "object" && address !== null ? address.port : 0 }))
      })
    }),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

/** Test DNS: `.test` names and what they resolve to; anything else does not exist. */
const zone: Readonly<Record<string, ReadonlyArray<string>>> = {
  "allowed.test": ["127.0.0.1"],
  "localhost.test": ["127.0.0.1"],
  "mixed.test": ["93.184.215.14", "10.0.0.5"],
  "metadata.test": ["fd00:ec2::254"]
}
const resolve = (host: string) => {
  const addresses = zone[host]
  return addresses === undefined ? Effect.fail({ code: "ENOTFOUND" }) : Effect.succeed(addresses)
}

const fetchWith = (options: SafeHttp.Options, url: string, fetchOptions?: SafeHttp.FetchOptions) =>
  Effect.gen(function* () {
    const http = yield* SafeHttp.SafeHttp
    return yield* http.fetch(url, fetchOptions)
  }).pipe(Effect.provide(SafeHttp.layer({ resolve, ...options })))

const refusal = (options: SafeHttp.Options, url: string) =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(fetchWith(options, url))
    assert.strictEqual(error.reason, "refused", error.message)
    return error.message
  })

describe("SafeHttp", () => {
  it.effect("refuses private, loopback, link-local and metadata IP literals", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["http://127.0.0.1/", "loopback"],
        ["http://10.1.2.3/", "private"],
        ["http://169.254.169.254/latest/meta-data/", "cloud metadata"],
        ["http://[::1]/", "loopback"],
        ["http://[::ffff:127.0.0.1]/", "IPv4-mapped"],
        ["http://[64:ff9b::a9fe:a9fe]/", "cloud metadata"],
        ["http://[fd00:ec2::254]/", "unique local"],
        ["http://2130706433/", "loopback"],
        ["http://0x7f.1/", "loopback"],
        ["https://192.168.1.1/", "private"],
        ["http://100.100.100.200/", "carrier-grade NAT"],
        ["http://0.0.0.0:8080/", "this network"]
      ]
      for (const [url, why] of cases) {
        const message = yield* refusal({}, url)
        assert.include(message, why, url)
      }
    })
  )

  it.effect("refuses names that resolve to a private address, any of them, or name one", () =>
    Effect.gen(function* () {
      assert.include(yield* refusal({}, "http://localhost.test/"), "localhost.test resolves to 127.0.0.1")
      assert.include(yield* refusal({}, "http://mixed.test/"), "mixed.test resolves to 10.0.0.5")
      assert.include(yield* refusal({}, "http://metadata.test/"), "fd00:ec2::254")
      assert.include(yield* refusal({}, "http://metadata.google.internal/computeMetadata/v1/"), "metadata")
      assert.include(yield* refusal({}, "http://LOCALHOST./"), "local machine")
    })
  )

  it.effect("refuses what is not an http(s) URL, and URLs with credentials", () =>
    Effect.gen(function* () {
      for (const url of ["file:///etc/passwd", "ftp://allowed.test/", "gopher://allowed.test/", "not a url"]) {
        const error = yield* Effect.flip(fetchWith({}, url))
        assert.strictEqual(error.reason, "invalid_url", url)
      }
      const error = yield* Effect.flip(fetchWith({ allowHosts: ["allowed.test"] }, "http://me:secret@allowed.test/"))
      assert.strictEqual(error.reason, "invalid_url")
      assert.notInclude(error.message, "secret")
    })
  )

  it.effect("fetches an allow-listed host over a connection to the address it checked", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const { port } = yield* serve((request, response) => {
        seen.push(`${request.method} ${request.url} host=${request.headers.host}`)
        response.writeHead(200, { "content-type": "text/plain; charset=utf-8", "x-thing": "yes" })
        response.end("héllo")
      })
      const response = yield* fetchWith({ allowHosts: ["allowed.test"] }, `http://allowed.test:${port}/page?q=1`)
      assert.strictEqual(response.status, 200)
      assert.strictEqual(response.body, "héllo")
      assert.isFalse(response.truncated)
      assert.strictEqual(response.url, `http://allowed.test:${port}/page?q=1`)
      assert.strictEqual(response.headers["x-thing"], "yes")
      // "allowed.test" exists only in the injected resolver: node connected to the pinned address.
      assert.deepStrictEqual(seen, [`GET /page?q=1 host=allowed.test:${port}`])
    })
  )

  it.effect("lets allow-listed networks through, and resolves a name once per hop", () =>
    Effect.gen(function* () {
      const { port } = yield* serve((_, response) => response.end("ok"))
      const byNetwork = yield* fetchWith({ allowHosts: ["127.0.0.0/8"] }, `http://127.0.0.1:${port}/`)
      assert.strictEqual(byNetwork.body, "ok")
      // A rebinding resolver: allowed the first time, metadata after. Only the first answer is used.
      let lookups = 0
      const rebinding = (_host: string) => Effect.sync(() => (lookups++ === 0 ? ["127.0.0.1"] : ["169.254.169.254"]))
      const response = yield* fetchWith(
        { allowHosts: ["127.0.0.1"], resolve: rebinding },
        `http://rebind.test:${port}/`
      )
      assert.strictEqual(response.body, "ok")
      assert.strictEqual(lookups, 1)
    })
  )

  it.effect("follows redirects, re-checking every hop, and refuses one to a private address", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const { port } = yield* serve((request, response) => {
        seen.push(request.url ?? "")
        const redirects: Record<string, string> = {
          "/start": "/middle",
          "/middle": `http://allowed.test:${port}/end`,
          "/to-literal": `http://127.0.0.1:${port}/secret`,
          "/to-name": `http://localhost.test:${port}/secret`,
          "/to-file": "file:///etc/passwd",
          "/loop": "/loop"
        }
        const location = redirects[request.url ?? ""]
        if (location !== undefined) response.writeHead(302, { location }).end()
        else response.end(`at ${request.url}`)
      })
      const options = { allowHosts: ["allowed.test"], maxRedirects: 2 }
      const base = `http://allowed.test:${port}`
      const followed = yield* fetchWith(options, `${base}/start`)
      assert.strictEqual(followed.body, "at /end")
      assert.strictEqual(followed.url, `${base}/end`)
      assert.include(yield* refusal(options, `${base}/to-literal`), "127.0.0.1 is a loopback address")
      assert.include(yield* refusal(options, `${base}/to-name`), "localhost.test resolves to 127.0.0.1")
      assert.strictEqual((yield* Effect.flip(fetchWith(options, `${base}/to-file`))).reason, "invalid_url")
      assert.notInclude(seen, "/secret")
      seen.length = 0
      assert.strictEqual((yield* Effect.flip(fetchWith(options, `${base}/loop`))).reason, "too_many_redirects")
      assert.deepStrictEqual(seen, ["/loop", "/loop", "/loop"])
    })
  )

  it.effect("turns a POST redirected with 303 into a GET, and drops credentials across origins", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const other = yield* serve((request, response) => {
        seen.push(`${request.method} ${request.url} auth=${request.headers.authorization ?? "none"}`)
        response.end("done")
      })
      const first = yield* serve((request, response) => {
        let body = ""
        request.on("data", (chunk: Buffer) => (body += chunk.toString()))
        request.on("end", () => {
          seen.push(`${request.method} ${request.url} ${body} auth=${request.headers.authorization ?? "none"}`)
          response.writeHead(303, { location: `http://127.0.0.1:${other.port}/result` }).end()
        })
      })
      const response = yield* fetchWith(
        { allowHosts: ["allowed.test", "127.0.0.1"] },
        `http://allowed.test:${first.port}/submit`,
        { method: "POST", body: "a=1", headers: { authorization: "Bearer t", "content-type": "text/plain" } }
      )
      assert.strictEqual(response.body, "done")
      assert.deepStrictEqual(seen, ["POST /submit a=1 auth=Bearer t", "GET /result auth=none"])
    })
  )

  it.effect("reads at most maxBytes of body, whole characters only, and decompresses gzip", () =>
    Effect.gen(function* () {
      const { port } = yield* serve((request, response) => {
        if (request.url === "/gzip") {
          response.writeHead(200, { "content-encoding": "gzip" }).end(Zlib.gzipSync("z".repeat(5000)))
        } else response.end(request.url === "/exact" ? "x".repeat(10) : "é".repeat(5000))
      })
      const options = { allowHosts: ["127.0.0.1"], maxBytes: 11 }
      const long = yield* fetchWith(options, `http://127.0.0.1:${port}/long`)
      assert.isTrue(long.truncated)
      assert.strictEqual(long.body, "é".repeat(5))
      const exact = yield* fetchWith({ ...options, maxBytes: 10 }, `http://127.0.0.1:${port}/exact`)
      assert.isFalse(exact.truncated)
      assert.strictEqual(exact.body, "x".repeat(10))
      const gzip = yield* fetchWith({ ...options, maxBytes: 100 }, `http://127.0.0.1:${port}/gzip`)
      assert.isTrue(gzip.truncated)
      assert.strictEqual(gzip.body, "z".repeat(100))
      assert.isUndefined(gzip.headers["content-encoding"])
    })
  )

  it.effect("times out and closes the connection", () =>
    Effect.gen(function* () {
      const requested = Promise.withResolvers<void>()
      const closed = Promise.withResolvers<void>()
      const { server, port } = yield* serve(() => requested.resolve())
      server.on("connection", (socket) => socket.on("close", () => closed.resolve()))
      const fiber = yield* fetchWith(
        { allowHosts: ["127.0.0.1"], timeout: "3 seconds" },
        `http://127.0.0.1:${port}/`
      ).pipe(Effect.flip, Effect.forkChild)
      yield* Effect.promise(() => requested.promise)
      yield* TestClock.adjust("3 seconds")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error.reason, "timeout")
      assert.include(error.message, "3s")
      yield* Effect.promise(() => closed.promise)
    })
  )

  it.effect("closes the connection when interrupted", () =>
    Effect.gen(function* () {
      const requested = Promise.withResolvers<void>()
      const closed = Promise.withResolvers<void>()
      const { server, port } = yield* serve(() => requested.resolve())
      server.on("connection", (socket) => socket.on("close", () => closed.resolve()))
      const fiber = yield* fetchWith({ allowHosts: ["127.0.0.1"] }, `http://127.0.0.1:${port}/`).pipe(Effect.forkChild)
      yield* Effect.promise(() => requested.promise)
      yield* Fiber.interrupt(fiber)
      yield* Effect.promise(() => closed.promise)
    })
  )

  it.effect("reports an unreachable server as a retryable network failure", () =>
    Effect.gen(function* () {
      const { server, port } = yield* serve((_, response) => response.end())
      yield* Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
      const error = yield* Effect.flip(fetchWith({ allowHosts: ["127.0.0.1"] }, `http://127.0.0.1:${port}/`))
      assert.strictEqual(error.reason, "network")
      assert.include(error.message, "ECONNREFUSED")
      assert.isTrue(error.retryable)
      const unknown = yield* Effect.flip(fetchWith({}, "http://nowhere.test/"))
      assert.include(unknown.message, "ENOTFOUND")
    })
  )

  it.effect("dies on an allow-list entry it cannot read", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(SafeHttp.make({ allowHosts: ["10.0.0.0/33"] }))
      assert.isTrue(Exit.hasDies(exit))
    })
  )
})
