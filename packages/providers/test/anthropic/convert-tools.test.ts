/**
 * `convertTools` and `convertToolChoice`: tools become client tools with a JSON Schema
 * `input_schema`, each tool choice maps to Anthropic's, and no tools means neither field.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import { Tool } from "effect/ai"
import { convertToolChoice, convertTools } from "../../src/anthropic/convert-tools.ts"

const GetWeather = Tool.make("get_weather", {
  description: "The weather in a city",
  parameters: Schema.Struct({ city: Schema.String })
})

const Ping = Tool.make("ping")

describe("convertTools", () => {
  it("sends each tool with its description and its parameters' JSON Schema as input_schema", () => {
    const result = convertTools([GetWeather, Ping], "auto")
    assert.isTrue(Result.isSuccess(result))
    if (Result.isFailure(result)) return
    assert.deepStrictEqual(result.success.tools, [
      {
        name: "get_weather",
        description: "The weather in a city",
        input_schema: {
          type: "object",
          properties: { city: { type: "string" } },
          required: ["city"],
          additionalProperties: true
        }
      },
      { name: "ping", input_schema: { type: "object", additionalProperties: false } }
    ])
    assert.deepStrictEqual(result.success.toolChoice, { type: "auto" })
  })

  it("sends neither tools nor tool_choice when the call offers no tools", () => {
    assert.deepStrictEqual(Result.getOrUndefined(convertTools([], "none")), { tools: undefined, toolChoice: undefined })
  })

  it("marks a tool annotated with Tool.Strict as strict", () => {
    const strict = convertTools([GetWeather.annotate(Tool.Strict, true)], "auto")
    assert.strictEqual(Result.getOrUndefined(strict)?.tools?.[0]?.strict, true)
  })

  it("refuses provider-defined tools, which this adapter cannot run", () => {
    const WebSearch = Tool.providerDefined({
      id: "anthropic.web_search_20250305",
      customName: "AnthropicWebSearch",
      providerName: "web_search",
      args: Schema.Struct({})
    })({})
    const result = convertTools([WebSearch], "auto")
    assert.isTrue(Result.isFailure(result))
    if (Result.isFailure(result)) assert.strictEqual(result.failure._tag, "ToolConfigurationError")
  })
})

describe("convertToolChoice", () => {
  it("maps every effect/ai tool choice to Anthropic's", () => {
    assert.deepStrictEqual(convertToolChoice("auto"), { type: "auto" })
    assert.deepStrictEqual(convertToolChoice("required"), { type: "any" })
    assert.deepStrictEqual(convertToolChoice("none"), { type: "none" })
    assert.deepStrictEqual(convertToolChoice({ tool: "get_weather" }), { type: "tool", name: "get_weather" })
    assert.deepStrictEqual(convertToolChoice({ oneOf: ["get_weather"] }), { type: "auto" })
    assert.deepStrictEqual(convertToolChoice({ oneOf: ["get_weather"], mode: "required" }), { type: "any" })
  })
})
