import * as Http from "node:http"
import { assert, describe, it } from "@effect/vitest"
import { SafeHttp, Tool, ToolPlugin } from "@polyagent/tools"
import { Effect, Schema } from "effect"
import plugin, { httpFetch } from "../src/index.ts"

const page = `<!doctype html>
<html>
<head>
  <title>Caf&eacute; &amp; Bar — Menu</title>
  <style>body { color: red }</style>
  <script>var secret = "do-not-show"</script>
</head>
<body>
  <nav><a href="/">Home</a> | <a href="/menu">Menu</a></nav>
  <h1>Today&#39;s   menu</h1>
  <p>Coffee &lt;hot&gt; &amp; tea,
     served &#x2615; all day.</p>
  <ul><li>Espresso</li><li>Flat <b>white</b></li></ul>
  <script>document.write("also hidden")</script>
  <noscript>Enable JavaScript</noscript>
  <pre>line one
  indented two</pre>
  <p>Read <a href="/more">more about us</a>.</p>
</body>
</html>`

/** A local site on 127.0.0.1 for the test's scope. */
const site = Effect.acquireRelease(
  Effect.callback<{ readonly server: Http.Server; readonly base: string }>((resume) => {
    const server = Http.createServer((request, response) => {
      switch (request.url) {
        case "/page":
          return response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page)
        case "/data":
          return response.writeHead(200, { "content-type": "application/json" }).end('{"a":[1,2],"b":"x"}')
        case "/long":
          return response.writeHead(200, { "content-type": "text/plain" }).end("abcdefghij".repeat(100))
        case "/image":
          return response.writeHead(200, { "content-type": "image/png" }).end(Buffer.from([0x89, 0x50, 0x4e, 0x47]))
        case "/moved":
          return response.writeHead(301, { location: "/data" }).end()
        default:
          return response.writeHead(404, { "content-type": "text/html" }).end("<h1>Not Found</h1><p>No such page.</p>")
      }
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ server, base: `http://127.0.0.1:${port}` }))
    })
  }),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map(({ base }) => base))

/** Runs the tool as the executor would: arguments decoded, SafeHttp allowing the local site only. */
const call = (args: unknown) =>
  Schema.decodeUnknownEffect(httpFetch.parameters)(args).pipe(
    Effect.orDie,
    Effect.flatMap(httpFetch.handler),
    Effect.provide(SafeHttp.layer({ allowHosts: ["127.0.0.1"] }))
  )

const failure = (args: unknown) =>
  Effect.flip(call(args)).pipe(
    Effect.map((error) => {
      assert.instanceOf(error, Tool.ToolFailure)
      return error.message
    })
  )

describe("http_fetch", () => {
  it("is the plugin's one tool, needing the network", () => {
    assert.isTrue(ToolPlugin.isToolPlugin(plugin))
    assert.deepStrictEqual(
      plugin.tools.map((tool) => tool.name),
      ["http_fetch"]
    )
    assert.deepStrictEqual(httpFetch.permissions, ["network"])
    const schema = Tool.jsonSchema(httpFetch)
    assert.deepStrictEqual(schema["required"], ["url"])
  })

  it.effect("reads an HTML page as text: title, no scripts or styles, entities decoded", () =>
    Effect.gen(function* () {
      const base = yield* site
      const result = yield* call({ url: `${base}/page` })
      assert.strictEqual(result.status, 200)
      assert.strictEqual(result.title, "Café & Bar — Menu")
      assert.strictEqual(result.content_type, "text/html; charset=utf-8")
      assert.isFalse(result.truncated)
      assert.strictEqual(
        result.text,
        [
          "Home | Menu",
          "",
          "Today's menu",
          "",
          "Coffee <hot> & tea, served ☕ all day.",
          "",
          "- Espresso",
          "- Flat white",
          "",
          "line one",
          "  indented two",
          "",
          "Read more about us."
        ].join("\n")
      )
      for (const hidden of ["do-not-show", "also hidden", "color: red", "Enable JavaScript"]) {
        assert.notInclude(result.text, hidden)
      }
    })
  )

  it.effect("passes JSON through, after redirects, and answers the final URL", () =>
    Effect.gen(function* () {
      const base = yield* site
      const result = yield* call({ url: `${base}/moved` })
      assert.strictEqual(result.url, `${base}/data`)
      assert.strictEqual(result.text, '{"a":[1,2],"b":"x"}')
      assert.isUndefined(result.title)
    })
  )

  it.effect("cuts the text at max_chars and says so", () =>
    Effect.gen(function* () {
      const base = yield* site
      const result = yield* call({ url: `${base}/long`, max_chars: 25 })
      assert.strictEqual(result.text, "abcdefghijabcdefghijabcde")
      assert.isTrue(result.truncated)
      const whole = yield* call({ url: `${base}/long` })
      assert.strictEqual(whole.text.length, 1000)
      assert.isFalse(whole.truncated)
    })
  )

  it.effect("turns an HTTP error status into a failure the model can read", () =>
    Effect.gen(function* () {
      const base = yield* site
      assert.strictEqual(
        yield* failure({ url: `${base}/missing` }),
        `${base}/missing answered HTTP 404: Not Found No such page.`
      )
    })
  )

  it.effect("refuses private addresses and binary content with a failure, not a crash", () =>
    Effect.gen(function* () {
      const base = yield* site
      assert.include(yield* failure({ url: "http://169.254.169.254/latest/meta-data/" }), "cloud metadata")
      assert.include(yield* failure({ url: "http://10.0.0.1/" }), "private address")
      assert.include(yield* failure({ url: "file:///etc/passwd" }), "Only http and https")
      assert.include(yield* failure({ url: `${base}/image` }), "image/png, which is not text")
    })
  )
})
