/**
 * The request body: messages and tools in, sampling settings shaped by the quirks, and the response
 * format of structured output (strict JSON Schema for OpenAI, JSON mode for GLM and the like).
 */
import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import { Prompt, Tool } from "effect/ai"
import { openAiQuirks, type Quirks } from "../../src/openai/Config.ts"
import { buildRequest } from "../../src/openai/request.ts"

const Weather = Tool.make("get_weather", {
  parameters: Schema.Struct({ location: Schema.String }),
  success: Schema.String
})

const options = (overrides: Partial<Parameters<typeof buildRequest>[1]> = {}): Parameters<typeof buildRequest>[1] => ({
  prompt: Prompt.make("hi"),
  tools: [],
  toolChoice: "auto",
  responseFormat: { type: "text" },
  ...overrides
})

const glmLike: Quirks = {
  ...openAiQuirks,
  maxTokensParam: "max_tokens",
  maxTemperature: 1,
  sendUser: false,
  structuredOutput: "json_object"
}

describe("buildRequest", () => {
  it("asks the model with the converted messages and tools", () => {
    const body = Result.getOrThrow(buildRequest("gpt-4o", options({ tools: [Weather] }), {}, openAiQuirks))
    assert.strictEqual(body.model, "gpt-4o")
    assert.deepStrictEqual(body.messages, [{ role: "user", content: "hi" }])
    assert.deepStrictEqual(
      body.tools?.map((tool) => (tool.type === "function" ? tool.function.name : tool.type)),
      ["get_weather"]
    )
    assert.strictEqual(body.tool_choice, "auto")
    assert.isUndefined(body.temperature)
    assert.isUndefined(body.response_format)
  })

  it("sends the sampling settings under the fields the server knows, within its range", () => {
    const call = { temperature: 1.7, topP: 0.5, maxTokens: 300, stop: ["END"], user: "u-1" }
    const openai = Result.getOrThrow(buildRequest("gpt-4o", options(), call, openAiQuirks))
    assert.deepStrictEqual(
      [openai.temperature, openai.top_p, openai.max_completion_tokens, openai.max_tokens, openai.stop, openai.user],
      [1.7, 0.5, 300, undefined, ["END"], "u-1"]
    )
    const glm = Result.getOrThrow(buildRequest("glm-4.6", options(), call, glmLike))
    assert.deepStrictEqual(
      [glm.temperature, glm.max_completion_tokens, glm.max_tokens, glm.user],
      [1, undefined, 300, undefined]
    )
    const negative = Result.getOrThrow(buildRequest("gpt-4o", options(), { temperature: -1 }, openAiQuirks))
    assert.strictEqual(negative.temperature, 0)
  })

  it("asks for strict JSON Schema output on OpenAI and JSON mode elsewhere", () => {
    const schema = Schema.Struct({ city: Schema.String, celsius: Schema.Number })
    const json = options({ responseFormat: { type: "json", objectName: "weather report", schema } })
    const strict = Result.getOrThrow(buildRequest("gpt-4o", json, {}, openAiQuirks)).response_format
    assert.strictEqual(strict?.type, "json_schema")
    if (strict?.type === "json_schema") {
      assert.strictEqual(strict.json_schema.name, "weather_report")
      assert.isTrue(strict.json_schema.strict)
      assert.strictEqual(strict.json_schema.schema?.["type"], "object")
    }
    assert.deepStrictEqual(Result.getOrThrow(buildRequest("glm-4.6", json, {}, glmLike)).response_format, {
      type: "json_object"
    })
  })

  it("fails on what cannot be sent", () => {
    const video = options({
      prompt: Prompt.make([{ role: "user", content: [{ type: "file", mediaType: "video/mp4", data: "AAAA" }] }])
    })
    const failed = buildRequest("gpt-4o", video, {}, openAiQuirks)
    assert.strictEqual(Result.isFailure(failed) ? failed.failure._tag : undefined, "InvalidUserInputError")
    const notAnObject = options({ responseFormat: { type: "json", objectName: "n", schema: Schema.Number } })
    const unsupported = buildRequest("gpt-4o", notAnObject, {}, openAiQuirks)
    assert.strictEqual(Result.isFailure(unsupported) ? unsupported.failure._tag : undefined, "UnsupportedSchemaError")
  })
})
