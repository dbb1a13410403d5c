import { assert, describe, it } from "@effect/vitest"
import { Tool } from "@polyagent/tools"
import { Effect, Schema } from "effect"
import plugin, { WordCount } from "../src/index.ts"
import { count } from "../src/WordCount.ts"

// As PolyAgent's executor runs a call: decode the model's arguments with the parameters' Schema,
// run the handler, encode the result with the success Schema. Testing through it catches a
// handler whose result does not match its Schema.
const call = (args: unknown) =>
  Schema.decodeUnknownEffect(WordCount.parameters)(args).pipe(
    Effect.flatMap(WordCount.handler),
    Effect.flatMap(Schema.encodeEffect(WordCount.success))
  )

describe("polyagent-plugin-example", () => {
  it("is a plugin whose tool names models accept", () => {
    assert.isTrue(Tool.isTool(WordCount))
    assert.strictEqual(plugin.name, "polyagent-plugin-example")
    assert.deepStrictEqual(
      plugin.tools.map((tool) => tool.name),
      ["word_count"]
    )
    assert.isTrue(Tool.namePattern.test(WordCount.name))
    assert.deepStrictEqual(WordCount.permissions, [])
  })

  it("shows the model a JSON Schema with the text required and bounded", () => {
    const schema = Tool.jsonSchema(WordCount)
    assert.deepStrictEqual(schema["required"], ["text"])
    assert.nestedPropertyVal(schema, "properties.text.type", "string")
    assert.nestedPropertyVal(schema, "properties.text.maxLength", 100_000)
  })
})

describe("word_count", () => {
  it.effect("counts words, characters and lines", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* call({ text: "Hello, world!\nIt is 2026." }), {
        words: 5,
        characters: 25,
        lines: 2
      })
    })
  )

  it("counts characters as a reader sees them and words without spaces", () => {
    assert.strictEqual(count("café").characters, 4)
    assert.strictEqual(count("cafe\u0301").characters, 4)
    assert.strictEqual(count("👍🏽 ok").characters, 4)
    assert.strictEqual(count("👍🏽 ok").words, 1)
    assert.isAbove(count("今日は良い天気です").words, 1)
  })

  it("counts lines whatever the line breaks, and not after a final one", () => {
    assert.strictEqual(count("one").lines, 1)
    assert.strictEqual(count("one\n").lines, 1)
    assert.strictEqual(count("one\r\ntwo\rthree\nfour").lines, 4)
    assert.strictEqual(count("one\n\nthree").lines, 3)
    assert.strictEqual(count("\n").lines, 1)
  })

  it.effect("fails on empty text with a message for the model", () =>
    Effect.gen(function* () {
      const failure = yield* Effect.flip(WordCount.handler({ text: "  \n " }))
      assert.instanceOf(failure, Tool.ToolFailure)
      assert.strictEqual(failure.message, "the text is empty: pass the text to count in `text`")
    })
  )

  it.effect("refuses, before the handler runs, arguments its Schema does not accept", () =>
    Effect.gen(function* () {
      const tooLong = yield* Effect.flip(call({ text: "a".repeat(100_001) }))
      assert.notInstanceOf(tooLong, Tool.ToolFailure)
      const notText = yield* Effect.flip(call({ text: 42 }))
      assert.notInstanceOf(notText, Tool.ToolFailure)
    })
  )
})
