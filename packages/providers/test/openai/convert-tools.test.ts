/**
 * Tools and tool choice → `tools` and `tool_choice`: JSON Schema parameters, every choice mode,
 * restriction to some tools, GLM's auto-only choice, and the tools Chat Completions cannot take.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import { Tool } from "effect/ai"
import { convertTools } from "../../src/openai/convert-tools.ts"

const Weather = Tool.make("get_weather", {
  description: "The weather in a city",
  parameters: Schema.Struct({ location: Schema.String }),
  success: Schema.String
})
const Time = Tool.make("get_time", { parameters: Schema.Struct({ timezone: Schema.String }), success: Schema.String })
const StrictTime = Time.annotate(Tool.Strict, true)

const any = { toolChoice: "any" } as const

describe("convertTools", () => {
  it("sends each tool as a function with its JSON Schema and description", () => {
    const params = Result.getOrThrow(convertTools([Weather, StrictTime], "auto", any))
    assert.strictEqual(params.tool_choice, "auto")
    const [weather, time] = params.tools ?? []
    assert.deepStrictEqual(weather, {
      type: "function",
      function: {
        name: "get_weather",
        description: "The weather in a city",
        parameters: { ...Tool.getJsonSchema(Weather) }
      }
    })
    assert.deepStrictEqual(weather?.function.parameters?.["required"], ["location"])
    assert.strictEqual(time?.function.strict, true)
    assert.isUndefined(weather?.function.strict)
  })

  it("sends required and a named tool as OpenAI's tool_choice", () => {
    assert.strictEqual(Result.getOrThrow(convertTools([Weather], "required", any)).tool_choice, "required")
    assert.deepStrictEqual(Result.getOrThrow(convertTools([Weather, Time], { tool: "get_time" }, any)), {
      tools: Result.getOrThrow(convertTools([Time], "auto", any)).tools ?? [],
      tool_choice: { type: "function", function: { name: "get_time" } }
    })
  })

  it("restricts the tools to oneOf, keeping its mode", () => {
    const params = Result.getOrThrow(convertTools([Weather, Time], { mode: "required", oneOf: ["get_weather"] }, any))
    assert.deepStrictEqual(
      params.tools?.map((tool) => tool.function.name),
      ["get_weather"]
    )
    assert.strictEqual(params.tool_choice, "required")
  })

  it("sends no tools for none, or when there are none", () => {
    assert.deepStrictEqual(Result.getOrThrow(convertTools([Weather], "none", any)), {})
    assert.deepStrictEqual(Result.getOrThrow(convertTools([], "auto", any)), {})
  })

  it("asks for auto where the server knows nothing else", () => {
    const params = Result.getOrThrow(convertTools([Weather, Time], { tool: "get_time" }, { toolChoice: "auto" }))
    assert.strictEqual(params.tool_choice, "auto")
    assert.deepStrictEqual(
      params.tools?.map((tool) => tool.function.name),
      ["get_time"]
    )
  })

  it("refuses a choice of a tool not offered, and provider-defined tools", () => {
    const unknown = convertTools([Weather], { tool: "get_time" }, any)
    assert.strictEqual(Result.isFailure(unknown) ? unknown.failure._tag : undefined, "ToolConfigurationError")
    const WebSearch = Tool.providerDefined({
      id: "openai.web_search",
      customName: "web_search",
      providerName: "web_search",
      parameters: Schema.Struct({}),
      success: Schema.String
    })()
    const provided = convertTools([WebSearch], "auto", any)
    assert.strictEqual(Result.isFailure(provided) ? provided.failure.toolName : undefined, "web_search")
  })
})
