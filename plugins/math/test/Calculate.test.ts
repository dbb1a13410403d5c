import { assert, describe, it } from "@effect/vitest"
import { Tool } from "@polyagent/tools"
import { Effect, Schema } from "effect"
import plugin, { Calculate } from "../src/index.ts"

// As the executor runs a call: decode the model's arguments, run the handler, encode the result.
const call = (args: unknown) =>
  Schema.decodeUnknownEffect(Calculate.parameters)(args).pipe(
    Effect.flatMap(Calculate.handler),
    Effect.flatMap(Schema.encodeEffect(Calculate.success))
  )

describe("calculate", () => {
  it("is the plugin's one tool, with a valid name and no permissions", () => {
    assert.isTrue(Tool.isTool(Calculate))
    assert.strictEqual(plugin.name, "@polyagent/plugin-math")
    assert.strictEqual(plugin.version, "0.1.0")
    assert.deepStrictEqual(
      plugin.tools.map((tool) => tool.name),
      ["calculate"]
    )
    assert.isTrue(Tool.namePattern.test(Calculate.name))
    assert.deepStrictEqual(Calculate.permissions, [])
  })

  it("shows the model an object with one required string of at most 1000 characters", () => {
    const schema = Tool.jsonSchema(Calculate)
    assert.strictEqual(schema["type"], "object")
    assert.deepStrictEqual(schema["required"], ["expression"])
    assert.nestedPropertyVal(schema, "properties.expression.type", "string")
    assert.nestedPropertyVal(schema, "properties.expression.maxLength", 1000)
  })

  it.effect("answers the expression and its value", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* call({ expression: "2 * (3 + 4)^2" }), { expression: "2 * (3 + 4)^2", result: 98 })
      assert.deepStrictEqual(yield* call({ expression: "sqrt(2)^2" }), { expression: "sqrt(2)^2", result: 2 })
    })
  )

  it.effect("fails with a ToolFailure the model can act on", () =>
    Effect.gen(function* () {
      const unbalanced = yield* Effect.flip(Calculate.handler({ expression: "(1 + 2))" }))
      assert.instanceOf(unbalanced, Tool.ToolFailure)
      assert.strictEqual(unbalanced.message, 'unexpected ")" at 7')
      const byZero = yield* Effect.flip(Calculate.handler({ expression: "10 / (5 - 5)" }))
      assert.strictEqual(byZero.message, "division by zero at 3")
      const unknown = yield* Effect.flip(Calculate.handler({ expression: "constructor" }))
      assert.include(unknown.message, 'unknown name "constructor"')
    })
  )

  it.effect("refuses an expression over the limit before parsing it", () =>
    Effect.gen(function* () {
      const decoded = yield* Effect.flip(call({ expression: "1".repeat(1001) }))
      assert.notInstanceOf(decoded, Tool.ToolFailure)
      const handled = yield* Effect.flip(Calculate.handler({ expression: "1".repeat(1001) }))
      assert.strictEqual(handled.message, "expression is 1001 characters long, more than the 1000 allowed")
    })
  )
})
