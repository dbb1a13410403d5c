/**
 * The Chat Completions request body of one call: the model, the converted messages and tools, the
 * response format of `generateObject`, and the sampling settings of the runtime's `CallOptions`,
 * shaped by the server's quirks (which token-limit field, how high a temperature, `user` or not).
 */
import type { CallOptions } from "@polyagent/runtime"
import * as Result from "effect/Result"
import * as AiError from "effect/ai/AiError"
import type * as LanguageModel from "effect/ai/LanguageModel"
import * as OpenAiStructuredOutput from "effect/ai/OpenAiStructuredOutput"
import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions"
import type { Quirks } from "./Config.ts"
import { convertMessages } from "./convert-messages.ts"
import { convertTools } from "./convert-tools.ts"

/** A request body; `stream` and `stream_options` are added by the caller. */
export type RequestBody = Omit<ChatCompletionCreateParamsNonStreaming, "stream">

/**
 * The body asking `modelId` for the answer to `options`. Fails when the prompt holds a file the API
 * cannot take, a tool cannot be offered, or the structured-output schema has no OpenAI form.
 */
export const buildRequest = (
  modelId: string,
  options: Pick<LanguageModel.ProviderOptions, "prompt" | "tools" | "toolChoice" | "responseFormat">,
  call: CallOptions.CallOptions,
  quirks: Quirks
): Result.Result<RequestBody, AiError.AiErrorReason> => {
  const messages = convertMessages(options.prompt)
  if (Result.isFailure(messages)) return Result.fail(messages.failure)
  const tools = convertTools(options.tools, options.toolChoice, quirks)
  if (Result.isFailure(tools)) return Result.fail(tools.failure)
  const format = responseFormat(options.responseFormat, quirks)
  if (Result.isFailure(format)) return Result.fail(format.failure)
  return Result.succeed({
    model: modelId,
    messages: messages.success,
    ...tools.success,
    ...format.success,
    ...sampling(call, quirks)
  })
}

/** The `generateObject` schema transformer that matches `quirks`: OpenAI's strict subset or none. */
export const codecTransformer = (
  quirks: Pick<Quirks, "structuredOutput">
): LanguageModel.CodecTransformer | undefined =>
  quirks.structuredOutput === "json_schema" ? OpenAiStructuredOutput.toCodecOpenAI : undefined

const responseFormat = (
  format: LanguageModel.ProviderOptions["responseFormat"],
  quirks: Pick<Quirks, "structuredOutput">
): Result.Result<Pick<RequestBody, "response_format">, AiError.UnsupportedSchemaError> => {
  if (format.type === "text") return Result.succeed({})
  if (quirks.structuredOutput === "json_object") return Result.succeed({ response_format: { type: "json_object" } })
  return Result.mapBoth(
    Result.try(() => OpenAiStructuredOutput.toCodecOpenAI(format.schema).jsonSchema),
    {
      onFailure: () =>
        new AiError.UnsupportedSchemaError({ description: "the object schema has no OpenAI structured-output form" }),
      onSuccess: (schema) => ({
        response_format: {
          type: "json_schema" as const,
          json_schema: { name: schemaName(format.objectName), schema: { ...schema }, strict: true }
        }
      })
    }
  )
}

// OpenAI wants the name to match ^[a-zA-Z0-9_-]{1,64}$.
const schemaName = (name: string): string => name.replace(/[^\w-]/g, "_").slice(0, 64) || "object"

const sampling = (call: CallOptions.CallOptions, quirks: Quirks): Partial<RequestBody> => ({
  ...(call.temperature === undefined
    ? {}
    : { temperature: Math.min(Math.max(call.temperature, 0), quirks.maxTemperature) }),
  ...(call.topP === undefined ? {} : { top_p: call.topP }),
  ...(call.maxTokens === undefined ? {} : { [quirks.maxTokensParam]: call.maxTokens }),
  ...(call.stop === undefined || call.stop.length === 0 ? {} : { stop: [...call.stop] }),
  ...(call.user === undefined || !quirks.sendUser ? {} : { user: call.user })
})
