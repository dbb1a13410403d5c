/**
 * What the model sees when it calls tools: results encoded by the tool's Schema, and for every
 * way a call can go wrong (unknown tool, bad arguments, missing permission, failure, crash,
 * timeout, oversized result) an error result instead of a failed turn; plus cancellation, the
 * concurrency limit, call order, and host services lent only to tools granted their permission.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Ref, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as Tool from "../src/Tool.ts"
import * as ToolExecutor from "../src/ToolExecutor.ts"
import * as ToolPlugin from "../src/ToolPlugin.ts"
import * as ToolRegistry from "../src/ToolRegistry.ts"

const add = Tool.make("add", {
  description: "Adds two numbers",
  parameters: Schema.Struct({ a: Schema.Finite, b: Schema.Finite }),
  success: Schema.Finite,
  handler: ({ a, b }) => Effect.succeed(a + b)
})

const weather = Tool.make("weather", {
  description: "Weather for a city",
  parameters: Schema.Struct({ city: Schema.String }),
  success: Schema.String,
  handler: ({ city }) => Effect.fail(new Tool.ToolFailure({ message: `no forecast for ${city}` }))
})

const explode = Tool.make("explode", {
  description: "Crashes",
  parameters: Schema.Struct({ how: Schema.Literals(["throw", "die"]) }),
  success: Schema.String,
  handler: ({ how }) => {
    if (how === "throw") throw new Error("password=hunter2")
    return Effect.die(new Error("password=hunter2"))
  }
})

const wait = Tool.make("wait", {
  description: "Waits, then answers how long it waited",
  parameters: Schema.Struct({ seconds: Schema.Finite }),
  success: Schema.Finite,
  handler: ({ seconds }) => Effect.as(Effect.sleep(`${seconds} seconds`), seconds)
})

const big = Tool.make("big", {
  description: "Returns a long text",
  parameters: Schema.Struct({ length: Schema.Int }),
  success: Schema.String,
  handler: ({ length }) => Effect.succeed("x".repeat(length))
})

// A host service, standing in for SafeHttp.
class Http extends Context.Service<Http, { readonly get: (url: string) => Effect.Effect<string> }>()("test/Http") {}

const fetchPage = Tool.make("fetch_page", {
  description: "Fetches a page",
  parameters: Schema.Struct({ url: Schema.String }),
  success: Schema.String,
  permissions: ["network"],
  handler: ({ url }) => Effect.flatMap(Http, (http) => http.get(url))
})

// Uses the host service without declaring `network`.
const sneak = Tool.make("sneak", {
  description: "Fetches a page without asking",
  parameters: Schema.Struct({ url: Schema.String }),
  success: Schema.String,
  handler: ({ url }) => Effect.flatMap(Http, (http) => http.get(url))
})

const basics = ToolPlugin.make({
  name: "basics",
  version: "1.0.0",
  tools: [add, weather, explode, wait, big, fetchPage, sneak]
})

const httpLayer = Layer.succeed(Http, { get: (url) => Effect.succeed(`<html>${url}</html>`) })

const executor = <const H extends ToolExecutor.HostServices = {}>(
  options: ToolExecutor.Options<H> = {},
  plugins: ReadonlyArray<ToolPlugin.ToolPlugin> = [basics]
) => ToolExecutor.layer(options).pipe(Layer.provide(ToolRegistry.layerPlugins(plugins)), Layer.orDie)

const run = (name: string, args: unknown, grant: ReadonlySet<Tool.Permission> = new Set()) =>
  Effect.flatMap(ToolExecutor.ToolExecutor, (e) => e.run({ id: `call-${name}`, name, arguments: args }, grant))

const busyCall = (id: string) => ({ id, name: "busy", arguments: {} })

const errorOf = (result: ToolExecutor.ToolResult) => {
  assert.strictEqual(result.status, "error", JSON.stringify(result))
  return result.status === "error" ? result.error : { type: "none", message: "" }
}

describe("ToolExecutor", () => {
  it.effect("answers the result encoded by the tool's Schema, as JSON", () =>
    Effect.gen(function* () {
      const result = yield* run("add", { a: 2, b: 3 })
      assert.deepStrictEqual(result, { id: "call-add", name: "add", status: "ok", result: "5" })
      assert.isTrue(Schema.is(ToolExecutor.ToolResult)(result))
    }).pipe(Effect.provide(executor()))
  )

  it.effect("refuses invalid arguments, naming each bad field", () =>
    Effect.gen(function* () {
      const error = errorOf(yield* run("add", { a: "2" }))
      assert.strictEqual(error.type, "invalid_arguments")
      assert.strictEqual(error.message, 'invalid arguments for tool "add": a: Expected number; b: Missing key')
      const notAnObject = errorOf(yield* run("add", "2 + 3"))
      assert.strictEqual(notAnObject.message, 'invalid arguments for tool "add": Expected object')
    }).pipe(Effect.provide(executor()))
  )

  it.effect("answers unknown_tool for a name no plugin defines", () =>
    Effect.gen(function* () {
      const result = yield* run("delete_everything", {})
      assert.deepStrictEqual(errorOf(result), {
        type: "unknown_tool",
        message: 'there is no tool named "delete_everything"'
      })
      assert.isTrue(Schema.is(ToolExecutor.ToolResult)(result))
    }).pipe(Effect.provide(executor()))
  )

  it.effect("passes a ToolFailure's message to the model", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(errorOf(yield* run("weather", { city: "Atlantis" })), {
        type: "failed",
        message: "no forecast for Atlantis"
      })
    }).pipe(Effect.provide(executor()))
  )

  it.effect("turns a thrown exception or a defect into a generic failure that shows nothing of it", () =>
    Effect.gen(function* () {
      for (const how of ["throw", "die"]) {
        const error = errorOf(yield* run("explode", { how }))
        assert.deepStrictEqual(error, { type: "failed", message: 'tool "explode" failed unexpectedly' })
      }
    }).pipe(Effect.provide(executor()))
  )

  it.effect("times out after 30 seconds by default, interrupting the handler", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(run("wait", { seconds: 60 }))
      yield* TestClock.adjust("29 seconds")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(errorOf(yield* Fiber.join(fiber)), {
        type: "timeout",
        message: 'tool "wait" did not finish within 30s'
      })
    }).pipe(Effect.provide(executor()))
  )

  it.effect("takes its timeout from options", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(run("wait", { seconds: 2 }))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(errorOf(yield* Fiber.join(fiber)).type, "timeout")
    }).pipe(Effect.provide(executor({ timeout: "1 second" })))
  )

  it.effect("interrupts the handler when the call is interrupted", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      const hang = Tool.make("hang", {
        description: "Never answers",
        parameters: Schema.Struct({}),
        success: Schema.String,
        handler: () =>
          Deferred.succeed(started, undefined).pipe(
            Effect.andThen(Effect.never),
            Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
          )
      })
      const plugin = ToolPlugin.make({ name: "hang", version: "1.0.0", tools: [hang] })
      yield* Effect.gen(function* () {
        const fiber = yield* Effect.forkChild(run("hang", {}))
        yield* Deferred.await(started)
        yield* Fiber.interrupt(fiber)
        yield* Deferred.await(interrupted)
        assert.isTrue(yield* Deferred.isDone(interrupted))
      }).pipe(Effect.provide(executor({}, [plugin])))
    })
  )

  it.effect("runs at most `concurrency` handlers at once, across calls", () =>
    Effect.gen(function* () {
      const running = yield* Ref.make(0)
      const peak = yield* Ref.make(0)
      const busy = Tool.make("busy", {
        description: "Works for a second",
        parameters: Schema.Struct({}),
        success: Schema.String,
        handler: () =>
          Effect.gen(function* () {
            const now = yield* Ref.updateAndGet(running, (n) => n + 1)
            yield* Ref.update(peak, (p) => Math.max(p, now))
            yield* Effect.sleep("1 second")
            yield* Ref.update(running, (n) => n - 1)
            return "done"
          })
      })
      const plugin = ToolPlugin.make({ name: "busy", version: "1.0.0", tools: [busy] })
      yield* Effect.gen(function* () {
        const executor = yield* ToolExecutor.ToolExecutor
        // Four calls, three of them parallel calls of one turn and one from elsewhere.
        const fiber = yield* Effect.forkChild(
          Effect.all(
            [
              executor.runAll([busyCall("a"), busyCall("b"), busyCall("c")], new Set()),
              executor.run(busyCall("d"), new Set())
            ],
            {
              concurrency: "unbounded"
            }
          )
        )
        for (let second = 0; second < 3; second++) yield* TestClock.adjust("1 second")
        const [results, lone] = yield* Fiber.join(fiber)
        assert.deepStrictEqual(
          [...results, lone].map((r) => r.status),
          ["ok", "ok", "ok", "ok"]
        )
        assert.strictEqual(yield* Ref.get(peak), 2)
      }).pipe(Effect.provide(executor({ concurrency: 2 }, [plugin])))
    })
  )

  it.effect("runAll runs calls in parallel and answers in call order", () =>
    Effect.gen(function* () {
      const executor = yield* ToolExecutor.ToolExecutor
      const fiber = yield* Effect.forkChild(
        executor.runAll(
          [
            { id: "a", name: "wait", arguments: { seconds: 3 } },
            { id: "b", name: "add", arguments: { a: 1, b: 1 } },
            { id: "c", name: "wait", arguments: { seconds: 1 } },
            { id: "d", name: "nope", arguments: {} }
          ],
          new Set()
        )
      )
      // Sequential calls would need 4 seconds.
      yield* TestClock.adjust("3 seconds")
      const results = yield* Fiber.join(fiber)
      assert.deepStrictEqual(
        results.map((r) => [r.id, r.status, r.status === "ok" ? r.result : r.error.type]),
        [
          ["a", "ok", "3"],
          ["b", "ok", "2"],
          ["c", "ok", "1"],
          ["d", "error", "unknown_tool"]
        ]
      )
    }).pipe(Effect.provide(executor()))
  )

  it.effect("refuses a result over maxResultBytes", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* run("big", { length: 1000 })).status, "ok")
      assert.deepStrictEqual(errorOf(yield* run("big", { length: 1024 })), {
        type: "result_too_large",
        message: 'tool "big" returned 1026 bytes, over the limit of 1024: ask for less'
      })
    }).pipe(Effect.provide(executor({ maxResultBytes: 1024 })))
  )

  it.effect("refuses results over 64 KiB by default", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* run("big", { length: 64 * 1024 - 2 })).status, "ok")
      assert.strictEqual(errorOf(yield* run("big", { length: 64 * 1024 })).type, "result_too_large")
    }).pipe(Effect.provide(executor()))
  )

  describe("host services", () => {
    const withHttp = executor({ hostServices: { network: [Http] } }).pipe(Layer.provide(httpLayer))

    it.effect("lends a tool the service of a permission it declares and the grant includes", () =>
      Effect.gen(function* () {
        const result = yield* run("fetch_page", { url: "https://example.com" }, new Set(["network"]))
        assert.deepStrictEqual(result, {
          id: "call-fetch_page",
          name: "fetch_page",
          status: "ok",
          result: '"<html>https://example.com</html>"'
        })
      }).pipe(Effect.provide(withHttp))
    )

    it.effect("refuses a tool whose permission the grant lacks", () =>
      Effect.gen(function* () {
        assert.deepStrictEqual(errorOf(yield* run("fetch_page", { url: "https://example.com" })), {
          type: "forbidden",
          message: 'tool "fetch_page" needs the "network" permission, which this agent does not grant'
        })
      }).pipe(Effect.provide(withHttp))
    )

    it.effect("lends nothing to a tool that did not declare the permission, even if the caller holds it", () =>
      Effect.gen(function* () {
        const error = errorOf(yield* run("sneak", { url: "https://example.com" }, new Set(["network"])))
        assert.deepStrictEqual(error, { type: "failed", message: 'tool "sneak" failed unexpectedly' })
      }).pipe(Effect.provide(withHttp), Effect.provide(httpLayer))
    )
  })

  it.effect("provides each plugin's own layer to its tools", () =>
    Effect.gen(function* () {
      class Greeting extends Context.Service<Greeting, string>()("test/Greeting") {}
      const greet = Tool.make("greet", {
        description: "Greets",
        parameters: Schema.Struct({ name: Schema.String }),
        success: Schema.String,
        handler: ({ name }) => Effect.map(Greeting, (greeting) => `${greeting}, ${name}`)
      })
      const plugin = ToolPlugin.make({
        name: "greet",
        version: "1.0.0",
        tools: [greet],
        layer: Layer.succeed(Greeting, "Hello")
      })
      const result = yield* run("greet", { name: "Ada" }).pipe(Effect.provide(executor({}, [plugin])))
      assert.deepStrictEqual(result, { id: "call-greet", name: "greet", status: "ok", result: '"Hello, Ada"' })
    })
  )
})
