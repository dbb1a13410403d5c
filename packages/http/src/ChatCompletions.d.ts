/**
 * The OpenAI Chat Completions wire format, so that the official `openai` SDK pointed at
 * `http://host:port/v1` works unchanged: the request and response schemas, and pure
 * conversions between them and effect/ai's prompt and response parts. Stateless: the
 * client sends the whole conversation every time.
 */
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Prompt from "effect/ai/Prompt"
import type * as Response from "effect/ai/Response"
import * as Tool from "effect/ai/Tool"
/** A tool call as the assistant made it. */
export declare const ToolCall: Schema.Struct<{
  readonly id: Schema.String
  readonly type: Schema.Literal<"function">
  readonly function: Schema.Struct<{
    readonly name: Schema.String
    readonly arguments: Schema.String
  }>
}>
export type ToolCallType = typeof ToolCall.Type
/** One message of the conversation, in OpenAI's shape. */
export declare const Message: Schema.Union<
  readonly [
    Schema.Struct<{
      readonly role: Schema.Literals<readonly ["system", "developer"]>
      readonly content: Schema.Union<
        readonly [
          Schema.String,
          Schema.$Array<
            Schema.Struct<{
              readonly type: Schema.Literal<"text">
              readonly text: Schema.String
            }>
          >
        ]
      >
      readonly name: Schema.optional<Schema.String>
    }>,
    Schema.Struct<{
      readonly role: Schema.Literal<"user">
      readonly content: Schema.Union<
        readonly [
          Schema.String,
          Schema.$Array<
            Schema.Union<
              readonly [
                Schema.Struct<{
                  readonly type: Schema.Literal<"text">
                  readonly text: Schema.String
                }>,
                Schema.Struct<{
                  readonly type: Schema.Literal<"image_url">
                  readonly image_url: Schema.Struct<{
                    readonly url: Schema.String
                    readonly detail: Schema.optional<Schema.String>
                  }>
                }>
              ]
            >
          >
        ]
      >
      readonly name: Schema.optional<Schema.String>
    }>,
    Schema.Struct<{
      readonly role: Schema.Literal<"assistant">
      readonly content: Schema.optional<
        Schema.NullOr<
          Schema.Union<
            readonly [
              Schema.String,
              Schema.$Array<
                Schema.Struct<{
                  readonly type: Schema.Literal<"text">
                  readonly text: Schema.String
                }>
              >
            ]
          >
        >
      >
      readonly tool_calls: Schema.optional<
        Schema.$Array<
          Schema.Struct<{
            readonly id: Schema.String
            readonly type: Schema.Literal<"function">
            readonly function: Schema.Struct<{
              readonly name: Schema.String
              readonly arguments: Schema.String
            }>
          }>
        >
      >
      readonly name: Schema.optional<Schema.String>
    }>,
    Schema.Struct<{
      readonly role: Schema.Literal<"tool">
      readonly content: Schema.Union<
        readonly [
          Schema.String,
          Schema.$Array<
            Schema.Struct<{
              readonly type: Schema.Literal<"text">
              readonly text: Schema.String
            }>
          >
        ]
      >
      readonly tool_call_id: Schema.String
    }>
  ]
>
export type Message = typeof Message.Type
/** A function the model may call. */
export declare const FunctionTool: Schema.Struct<{
  readonly type: Schema.Literal<"function">
  readonly function: Schema.Struct<{
    readonly name: Schema.String
    readonly description: Schema.optional<Schema.String>
    readonly parameters: Schema.optional<Schema.$Record<Schema.String, Schema.Unknown>>
    readonly strict: Schema.optional<Schema.NullOr<Schema.Boolean>>
  }>
}>
/** The request body of `POST /v1/chat/completions` (fields OpenAI knows and we do not use are ignored). */
export declare const Request: Schema.Struct<{
  readonly model: Schema.String
  readonly messages: Schema.$Array<
    Schema.Union<
      readonly [
        Schema.Struct<{
          readonly role: Schema.Literals<readonly ["system", "developer"]>
          readonly content: Schema.Union<
            readonly [
              Schema.String,
              Schema.$Array<
                Schema.Struct<{
                  readonly type: Schema.Literal<"text">
                  readonly text: Schema.String
                }>
              >
            ]
          >
          readonly name: Schema.optional<Schema.String>
        }>,
        Schema.Struct<{
          readonly role: Schema.Literal<"user">
          readonly content: Schema.Union<
            readonly [
              Schema.String,
              Schema.$Array<
                Schema.Union<
                  readonly [
                    Schema.Struct<{
                      readonly type: Schema.Literal<"text">
                      readonly text: Schema.String
                    }>,
                    Schema.Struct<{
                      readonly type: Schema.Literal<"image_url">
                      readonly image_url: Schema.Struct<{
                        readonly url: Schema.String
                        readonly detail: Schema.optional<Schema.String>
                      }>
                    }>
                  ]
                >
              >
            ]
          >
          readonly name: Schema.optional<Schema.String>
        }>,
        Schema.Struct<{
          readonly role: Schema.Literal<"assistant">
          readonly content: Schema.optional<
            Schema.NullOr<
              Schema.Union<
                readonly [
                  Schema.String,
                  Schema.$Array<
                    Schema.Struct<{
                      readonly type: Schema.Literal<"text">
                      readonly text: Schema.String
                    }>
                  >
                ]
              >
            >
          >
          readonly tool_calls: Schema.optional<
            Schema.$Array<
              Schema.Struct<{
                readonly id: Schema.String
                readonly type: Schema.Literal<"function">
                readonly function: Schema.Struct<{
                  readonly name: Schema.String
                  readonly arguments: Schema.String
                }>
              }>
            >
          >
          readonly name: Schema.optional<Schema.String>
        }>,
        Schema.Struct<{
          readonly role: Schema.Literal<"tool">
          readonly content: Schema.Union<
            readonly [
              Schema.String,
              Schema.$Array<
                Schema.Struct<{
                  readonly type: Schema.Literal<"text">
                  readonly text: Schema.String
                }>
              >
            ]
          >
          readonly tool_call_id: Schema.String
        }>
      ]
    >
  >
  readonly stream: Schema.optional<Schema.NullOr<Schema.Boolean>>
  readonly stream_options: Schema.optional<
    Schema.NullOr<
      Schema.Struct<{
        readonly include_usage: Schema.optional<Schema.Boolean>
      }>
    >
  >
  readonly tools: Schema.optional<
    Schema.$Array<
      Schema.Struct<{
        readonly type: Schema.Literal<"function">
        readonly function: Schema.Struct<{
          readonly name: Schema.String
          readonly description: Schema.optional<Schema.String>
          readonly parameters: Schema.optional<Schema.$Record<Schema.String, Schema.Unknown>>
          readonly strict: Schema.optional<Schema.NullOr<Schema.Boolean>>
        }>
      }>
    >
  >
  readonly tool_choice: Schema.optional<
    Schema.Union<
      readonly [
        Schema.Literals<readonly ["none", "auto", "required"]>,
        Schema.Struct<{
          readonly type: Schema.Literal<"function">
          readonly function: Schema.Struct<{
            readonly name: Schema.String
          }>
        }>
      ]
    >
  >
  readonly temperature: Schema.optional<Schema.NullOr<Schema.Finite>>
  readonly top_p: Schema.optional<Schema.NullOr<Schema.Finite>>
  readonly max_tokens: Schema.optional<Schema.NullOr<Schema.Int>>
  readonly max_completion_tokens: Schema.optional<Schema.NullOr<Schema.Int>>
  readonly stop: Schema.optional<Schema.NullOr<Schema.Union<readonly [Schema.String, Schema.$Array<Schema.String>]>>>
  readonly n: Schema.optional<Schema.NullOr<Schema.Literal<1>>>
  readonly user: Schema.optional<Schema.String>
}>
export type Request = typeof Request.Type
/** `model: "agent:<id>"` runs an agent. */
export declare const agentPrefix = "agent:"
/** A request body: the JSON as sent (unknown fields kept, for relays) and OpenAI's request read from it. */
export interface Parsed {
  readonly body: Readonly<Record<string, unknown>>
  readonly request: Request
}
/** The request in a body's `text`, or why there is none (a message for a 400). */
export declare const parseRequest: (text: string) => Result.Result<Parsed, string>
declare const Usage: Schema.Struct<{
  readonly prompt_tokens: Schema.Int
  readonly completion_tokens: Schema.Int
  readonly total_tokens: Schema.Int
  readonly prompt_tokens_details: Schema.optionalKey<
    Schema.Struct<{
      readonly cached_tokens: Schema.Int
    }>
  >
  readonly completion_tokens_details: Schema.optionalKey<
    Schema.Struct<{
      readonly reasoning_tokens: Schema.Int
    }>
  >
}>
export type Usage = typeof Usage.Type
/** The answer of a non-streamed call. */
export declare const Completion: Schema.Struct<{
  readonly id: Schema.String
  readonly object: Schema.Literal<"chat.completion">
  readonly created: Schema.Int
  readonly model: Schema.String
  readonly choices: Schema.$Array<
    Schema.Struct<{
      readonly index: Schema.Int
      readonly message: Schema.Struct<{
        readonly role: Schema.Literal<"assistant">
        readonly content: Schema.NullOr<Schema.String>
        readonly refusal: Schema.Null
        readonly tool_calls: Schema.optional<
          Schema.$Array<
            Schema.Struct<{
              readonly id: Schema.String
              readonly type: Schema.Literal<"function">
              readonly function: Schema.Struct<{
                readonly name: Schema.String
                readonly arguments: Schema.String
              }>
            }>
          >
        >
      }>
      readonly finish_reason: Schema.String
      readonly logprobs: Schema.Null
    }>
  >
  readonly usage: Schema.Struct<{
    readonly prompt_tokens: Schema.Int
    readonly completion_tokens: Schema.Int
    readonly total_tokens: Schema.Int
    readonly prompt_tokens_details: Schema.optionalKey<
      Schema.Struct<{
        readonly cached_tokens: Schema.Int
      }>
    >
    readonly completion_tokens_details: Schema.optionalKey<
      Schema.Struct<{
        readonly reasoning_tokens: Schema.Int
      }>
    >
  }>
}>
export type Completion = typeof Completion.Type
/** OpenAI's `finish_reason` for effect/ai's. */
export declare const finishReason: (reason: Response.FinishReason) => string
/** The conversation as effect/ai prompt messages; a tool result takes its tool's name from the call. */
export declare const toPrompt: (messages: ReadonlyArray<Message>) => Array<Prompt.MessageEncoded>
/** Tool-call arguments are JSON text; text that is not JSON is passed on as it is. */
export declare const parseArguments: (text: string) => unknown
declare const clientTool: (tool: typeof FunctionTool.Type) => Tool.Dynamic<
  string,
  {
    readonly parameters: {
      readonly [x: string]: unknown
    }
    readonly success: Schema.Unknown
    readonly failure: Schema.Never
    readonly failureMode: "error"
  },
  never
>
/** A function of the client as an effect/ai tool: its JSON Schema passed on untouched. */
export type ClientTool = ReturnType<typeof clientTool>
/** The client's functions as effect/ai tools. */
export declare const toTools: (tools: Request["tools"]) => Array<ClientTool>
/** The client's `tool_choice` in effect/ai's terms. */
export declare const toToolChoice: (choice: Request["tool_choice"]) =>
  | "auto"
  | "none"
  | "required"
  | {
      tool: string
    }
/** Usage in OpenAI's shape from effect/ai's. */
export declare const usageOf: (usage: Response.Usage) => Usage
/** What every chunk and completion of one answer carries. */
export interface Header {
  readonly id: string
  readonly created: number
  readonly model: string
}
/** A chunk of a streamed answer, as its `data:` JSON. */
export declare const chunk: (header: Header, delta: object, finishReason?: string | null) => string
/** The last chunk of a stream whose client asked for usage (`stream_options.include_usage`). */
export declare const usageChunk: (header: Header, usage: Usage) => string
/** A whole completion. */
export declare const completion: (
  header: Header,
  text: string,
  toolCalls: ReadonlyArray<ToolCallType>,
  finishReason: string,
  usage: {
    readonly prompt_tokens: number
    readonly completion_tokens: number
  }
) => Completion
/** The end of a stream. */
export declare const done = "[DONE]"
/**
 * The answer's text in the SSE bytes of a streamed completion (`data:` lines of chunks), for a
 * stream that broke off: an unfinished last line is left out.
 */
export declare const streamText: (chunks: ReadonlyArray<Uint8Array>) => string
/** The messages that follow a conversation whose answer broke off after `partial`, to continue it. */
export declare const continuation: (partial: string) => Array<Message>
export {}
//# sourceMappingURL=ChatCompletions.d.ts.map
