import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Tool from "../src/Tool.ts"
import * as ToolPlugin from "../src/ToolPlugin.ts"

const Add = Tool.make("add", {
  description: "Adds two numbers",
  parameters: Schema.Struct({ a: Schema.Finite, b: Schema.Finite }),
  success: Schema.Finite,
  handler: ({ a, b }) => Effect.succeed(a + b)
})

describe("Tool", () => {
  it("derives the JSON Schema the model is shown from the parameters' Schema", () => {
    const schema = Tool.jsonSchema(Add)
    assert.strictEqual(schema["type"], "object")
    assert.deepStrictEqual(Object.keys(schema["properties"] ?? {}), ["a", "b"])
    assert.deepStrictEqual(schema["required"], ["a", "b"])
  })

  it.effect("runs its handler on decoded parameters", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* Add.handler({ a: 2, b: 3 }), 5)
    })
  )

  it("tells tools and plugins from look-alikes", () => {
    assert.isTrue(Tool.isTool(Add))
    assert.isFalse(Tool.isTool({ name: "add", handler: () => 1 }))
    const plugin = ToolPlugin.make({ name: "calc", version: "1.0.0", tools: [Add] })
    assert.isTrue(ToolPlugin.isToolPlugin(plugin))
    assert.isFalse(ToolPlugin.isToolPlugin({ name: "calc", version: "1.0.0", tools: [Add] }))
    assert.deepStrictEqual(Tool.namePattern.test("get_weather"), true)
    assert.deepStrictEqual(Tool.namePattern.test("get weather"), false)
  })
})
