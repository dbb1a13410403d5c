/**
 * The parts of a Chat Completions answer the adapter reads, as Schemas. The SDK's types describe
 * OpenAI; compatible servers leave fields out (`object`, `finish_reason: null`, tool-call `index`),
 * add their own (`reasoning_content`, `reasoning`) and sometimes send garbage, so every answer is
 * decoded here before it is trusted. Unknown fields are ignored; every field we read may be absent
 * or null.
 */
import * as Schema from "effect/Schema"

const nullable = <S extends Schema.Top>(schema: S) => Schema.optional(Schema.NullOr(schema))

/** Token counts; `*_details` are OpenAI's cache and reasoning breakdowns. */
export const Usage = Schema.Struct({
  prompt_tokens: nullable(Schema.Number),
  completion_tokens: nullable(Schema.Number),
  total_tokens: nullable(Schema.Number),
  prompt_tokens_details: nullable(Schema.Struct({ cached_tokens: nullable(Schema.Number) })),
  completion_tokens_details: nullable(Schema.Struct({ reasoning_tokens: nullable(Schema.Number) }))
})
export type Usage = typeof Usage.Type

const ToolCall = Schema.Struct({
  id: nullable(Schema.String),
  function: Schema.Struct({ name: Schema.String, arguments: nullable(Schema.String) })
})

/** An answer's message. `reasoning_content` (DeepSeek, GLM, vLLM) and `reasoning` (OpenRouter) carry thinking. */
const Message = Schema.Struct({
  content: nullable(Schema.String),
  refusal: nullable(Schema.String),
  reasoning_content: nullable(Schema.String),
  reasoning: nullable(Schema.String),
  tool_calls: nullable(Schema.Array(ToolCall))
})

/** A complete (non-streamed) answer. */
export const ChatCompletion = Schema.Struct({
  id: nullable(Schema.String),
  model: nullable(Schema.String),
  created: nullable(Schema.Number),
  choices: Schema.Array(Schema.Struct({ message: Message, finish_reason: nullable(Schema.String) })),
  usage: nullable(Usage)
})
export type ChatCompletion = typeof ChatCompletion.Type

/** One fragment of a streamed tool call; only the first of a call carries its id and name. */
const ToolCallDelta = Schema.Struct({
  index: nullable(Schema.Number),
  id: nullable(Schema.String),
  function: nullable(Schema.Struct({ name: nullable(Schema.String), arguments: nullable(Schema.String) }))
})
export type ToolCallDelta = typeof ToolCallDelta.Type

const Delta = Schema.Struct({
  content: nullable(Schema.String),
  refusal: nullable(Schema.String),
  reasoning_content: nullable(Schema.String),
  reasoning: nullable(Schema.String),
  tool_calls: nullable(Schema.Array(ToolCallDelta))
})

/** One streamed chunk. OpenAI's usage chunk has `choices: []`; GLM puts usage on its finish chunk. */
export const ChatCompletionChunk = Schema.Struct({
  id: nullable(Schema.String),
  model: nullable(Schema.String),
  created: nullable(Schema.Number),
  choices: nullable(Schema.Array(Schema.Struct({ delta: nullable(Delta), finish_reason: nullable(Schema.String) }))),
  usage: nullable(Usage)
})
export type ChatCompletionChunk = typeof ChatCompletionChunk.Type

/** An error body: `{ "error": { "message", "type", "code", "param" } }` (code a string or a number). */
export const ErrorBody = Schema.Struct({
  message: nullable(Schema.Unknown),
  type: nullable(Schema.String),
  code: nullable(Schema.Union([Schema.String, Schema.Number])),
  param: nullable(Schema.String)
})
export type ErrorBody = typeof ErrorBody.Type
