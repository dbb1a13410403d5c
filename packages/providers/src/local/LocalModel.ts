/**
 * `local`: the offline development model. It needs no API key and no network, so PolyAgent answers
 * on a fresh machine, and it is not an AI: it answers every conversation with a fixed sentence that
 * proves the gateway handed it the whole conversation (how many user turns, the system prompt, the
 * last user message quoted). Same prompt, same answer, always. Usage is real `o200k_base` token
 * counts; the cost is zero. It streams word by word, optionally paced, to exercise SSE clients.
 *
 * It calls tools on request, so the agent tool-call loop runs offline. The rules, in order:
 * 1. The prompt ends with tool messages: the answer reports their results in order,
 *    `Local model (offline, not a real LLM) — tool results: calculate → {"result":4}; now → error: …`
 *    (the result's `modelOutput` text if it has one, else a string result as is and anything else
 *    as compact JSON; each cut at 300 characters; a failure is marked `error:`). Reason `stop`.
 * 2. Tools are offered (`tools` non-empty, tool choice not `none`; a `{ tool }` choice offers only
 *    that one; provider-defined tools never count) and the last message is a user message with
 *    directives `call <tool_name>(<json object>)` (see `directives.ts`): each directive naming an
 *    offered tool with a JSON object argument becomes a `tool-call` (id `local_call_<n>`, `n`
 *    counting on from the tool calls already in the prompt, so ids never repeat across steps),
 *    in order, and the finish reason is `tool-calls`. Other directives are ignored and named in a
 *    text part. When none is usable, the answer is rule 3's, with the ignored directives named.
 * 3. Otherwise the fixed sentence above; a directive in it is merely quoted.
 * Tool choice `required` is not enforced: without a directive there is no call.
 */
import { ModelCatalog, Tokens, Usage } from "@polyagent/runtime"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Formatter from "effect/Formatter"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as LanguageModel from "effect/ai/LanguageModel"
import * as Prompt from "effect/ai/Prompt"
import type * as Response from "effect/ai/Response"
import * as Tool from "effect/ai/Tool"
import { type Argument, parseDirectives, splitJson } from "./directives.ts"

/** The model id clients send (`"model": "local"`) and the provider name. */
export const id = "local"

/** How `GET /v1/models` lists the local model; `offline: true` and the description label it. */
export const info: ModelCatalog.ModelInfo = new ModelCatalog.ModelInfo({
  id,
  provider: "local",
  description:
    "Offline development model: deterministic, no network, not a real LLM. " +
    "It echoes the conversation (user turn count, system prompt, your last message) and answers nothing. " +
    "When tools are offered, `call <tool_name>({...json arguments...})` in your last message makes it call " +
    "that tool with those arguments (unknown tools and invalid JSON are ignored and named); " +
    "after tool results it reports them.",
  offline: true,
  capabilities: new ModelCatalog.Capabilities({ tools: true, vision: false, streaming: true, context_window: 32768 }),
  cost_per_1k_tokens: new Usage.Price({ input: 0, output: 0 }),
  price_date: null
})

/** Options of {@link make}. */
export interface Options {
  /**
   * Pause between two streamed deltas, text or tool parameters (default: none). Taken with `Effect.sleep`, so an
   * interrupted stream stops at once and `TestClock` drives it in tests.
   */
  readonly chunkDelay?: Duration.Input | undefined
}

/**
 * The local model as effect/ai's `LanguageModel`. `generateText` returns the answer in one `text`
 * part, then one `tool-call` part per call; `streamText` emits the same answer as `text-delta`
 * parts, one word each (trailing whitespace included, so the deltas concatenate to exactly the
 * `generateText` text), then per call `tool-params-start`, a few `tool-params-delta`s that
 * concatenate to the call's JSON, `tool-params-end` and `tool-call`. Both end with a `finish` part
 * (reason `tool-calls` when there are calls, else `stop`; token usage, tool-call JSON counted as
 * output). When to call which tool: see the module header.
 *
 * Gotchas: an answer made only of tool calls has no text part, and `generateObject` fails with an
 * `InvalidOutputError` because the answer is not JSON.
 */
export const make = (options?: Options): Effect.Effect<LanguageModel.LanguageModel> => {
  // An invalid or non-positive delay means no pause at all.
  const delay = Duration.fromInput(options?.chunkDelay ?? 0).pipe(Option.filter(Duration.isPositive))
  return LanguageModel.make({
    generateText: (request) =>
      Effect.map(responseMetadata, (metadata): Array<Response.PartEncoded> => {
        const reply = replyTo(request)
        const text: Array<Response.PartEncoded> = reply.text === "" ? [] : [{ type: "text", text: reply.text }]
        return [metadata, ...text, ...reply.toolCalls.map(toolCallPart), finish(reply)]
      }),
    streamText: (request) => {
      const all = streamParts(replyTo(request))
      // Unpaced, the parts go out together: one chunk, which effect/ai decodes in one go.
      if (Option.isNone(delay)) return Stream.fromEffect(responseMetadata).pipe(Stream.concat(Stream.fromIterable(all)))
      // Every delta but the first waits `chunkDelay`.
      let deltas = 0
      const paced = all.map((part) => ({ part, pause: isDelta(part) && deltas++ > 0 }))
      const parts = Stream.fromIterable(paced).pipe(
        Stream.mapEffect(({ part, pause }) =>
          pause ? Effect.as(Effect.sleep(delay.value), part) : Effect.succeed(part)
        )
      )
      return Stream.fromEffect(responseMetadata).pipe(Stream.concat(parts))
    }
  })
}

// ---------------------------------------------------------------------------------------------
// The answer

/** Longest quote of the last user message, in characters; longer ones end with an ellipsis. */
const userQuoteLimit = 500

/** Longest quote of the system prompt, in characters. */
const systemQuoteLimit = 200

/** Longest report of one tool result, in characters. */
const resultQuoteLimit = 300

const brand = "Local model (offline, not a real LLM)"

interface ToolCall extends Argument {
  readonly id: string
  readonly name: string
}

interface Reply {
  readonly text: string
  readonly toolCalls: ReadonlyArray<ToolCall>
  readonly inputTokens: number
  readonly textTokens: number
  readonly outputTokens: number
}

const replyTo = ({ prompt, tools, toolChoice }: LanguageModel.ProviderOptions): Reply => {
  const { text, toolCalls } = respond(prompt.content, offeredTools(tools, toolChoice))
  const textTokens = Tokens.countText(text)
  const callTokens = toolCalls.reduce((total, call) => total + Tokens.countText(`${call.name} ${call.json}`), 0)
  return {
    text,
    toolCalls,
    inputTokens: Tokens.countMessages(prompt.content),
    textTokens,
    outputTokens: textTokens + callTokens
  }
}

// The rules of the module header, in order.
const respond = (
  messages: ReadonlyArray<Prompt.Message>,
  offered: ReadonlySet<string>
): Pick<Reply, "text" | "toolCalls"> => {
  const results = trailingToolResults(messages)
  if (results.length > 0) return { text: resultsReport(results), toolCalls: [] }
  const last = messages.at(-1)
  const directives = offered.size > 0 && last?.role === "user" ? parseDirectives(textOf(last)) : []
  if (directives.length === 0) return { text: answer(messages), toolCalls: [] }

  const toolCalls: Array<ToolCall> = []
  const ignored: Array<string> = []
  let next = nextCallNumber(messages)
  for (const { name, argument } of directives) {
    if (!offered.has(name)) ignored.push(`call ${name}(…) (no tool of that name is offered)`)
    else if (Option.isNone(argument)) ignored.push(`call ${name}(…) (the argument is not a JSON object)`)
    else toolCalls.push({ id: `local_call_${next++}`, name, ...argument.value })
  }
  const note = ignored.length === 0 ? "" : ` Ignored ${plural(ignored.length, "directive")}: ${ignored.join("; ")}.`
  if (toolCalls.length === 0) return { text: `${answer(messages)}${note}`, toolCalls }
  return {
    text: note === "" ? "" : `${brand} — calling ${toolCalls.map((call) => call.name).join(", ")}.${note}`,
    toolCalls
  }
}

// Example: Local model (offline, not a real LLM) — 2 user messages so far. System prompt: "Be terse." You said: "what is 2+2?"
const answer = (messages: ReadonlyArray<Prompt.Message>): string => {
  const system: Array<string> = []
  const users: Array<Prompt.UserMessage> = []
  for (const message of messages) {
    if (message.role === "system") system.push(message.content)
    if (message.role === "user") users.push(message)
  }
  const sentences = [`${brand} — ${userTurns(users.length)}.`]
  if (system.length > 0) {
    sentences.push(`System prompt: "${quote(system.join("\n"), systemQuoteLimit)}"`)
  }
  const last = users.at(-1)
  if (last !== undefined) {
    const files = last.content.length - last.content.filter((part) => part.type === "text").length
    sentences.push(
      `You said: "${quote(textOf(last), userQuoteLimit)}"${files > 0 ? ` (+${plural(files, "file")}, not read)` : ""}`
    )
  }
  return sentences.join(" ")
}

const textOf = (message: Prompt.UserMessage): string =>
  message.content.flatMap((part) => (part.type === "text" ? [part.text] : [])).join("\n")

// Provider-defined tools run at their provider, so the local model never calls one.
const offeredTools = (
  tools: ReadonlyArray<Tool.Any>,
  toolChoice: LanguageModel.ToolChoice<string>
): ReadonlySet<string> => {
  if (toolChoice === "none") return new Set()
  const names = tools.filter((tool) => !Tool.isProviderDefined(tool)).map((tool) => tool.name)
  return new Set(
    typeof toolChoice === "object" && "tool" in toolChoice ? names.filter((name) => name === toolChoice.tool) : names
  )
}

// The next free `local_call_<n>`: past both the number of calls so far and the highest such id seen.
const nextCallNumber = (messages: ReadonlyArray<Prompt.Message>): number => {
  let calls = 0
  let highest = 0
  for (const message of messages) {
    if (message.role !== "assistant" && message.role !== "tool") continue
    for (const part of message.content) {
      if (part.type === "tool-call") calls++
      if (part.type === "tool-call" || part.type === "tool-result") {
        const number = /^local_call_(\d+)$/u.exec(part.id)?.[1]
        if (number !== undefined) highest = Math.max(highest, Number(number))
      }
    }
  }
  return Math.max(calls, highest) + 1
}

// The results of the tool messages that end the prompt, in order.
const trailingToolResults = (messages: ReadonlyArray<Prompt.Message>): Array<Prompt.ToolResultPart> => {
  let start = messages.length
  while (start > 0 && messages[start - 1]?.role === "tool") start--
  return messages
    .slice(start)
    .flatMap((message) =>
      message.role === "tool" ? message.content.flatMap((part) => (part.type === "tool-result" ? [part] : [])) : []
    )
}

// Example: Local model (offline, not a real LLM) — tool results: calculate → {"result":4}; now → error: unknown time zone
const resultsReport = (results: ReadonlyArray<Prompt.ToolResultPart>): string => {
  const reports = results.map(
    (result) => `${result.name} → ${result.isFailure ? "error: " : ""}${quote(resultText(result), resultQuoteLimit)}`
  )
  return `${brand} — tool results: ${reports.join("; ")}`
}

// What the model would read: the tool's `modelOutput` if it has one, else the result itself.
const resultText = (result: Prompt.ToolResultPart): string => {
  if (result.modelOutput !== undefined) return Prompt.toolModelOutputToText(result.modelOutput)
  return typeof result.result === "string" ? result.result : Formatter.formatJson(result.result)
}

const userTurns = (count: number): string =>
  count === 0 ? "no user message yet" : `${plural(count, "user message")} so far`

const plural = (count: number, noun: string): string => `${count} ${noun}${count === 1 ? "" : "s"}`

// Cuts by code point, so an emoji at the limit is never split in half.
const quote = (text: string, limit: number): string => {
  const chars = Array.from(text)
  return chars.length <= limit ? text : `${chars.slice(0, limit).join("")}…`
}

// "a b  c" → ["a ", "b  ", "c"]: each word keeps the whitespace after it, so the pieces join back exactly.
const words = (text: string): Array<string> => text.split(/(?<=\s)(?=\S)/u)

// ---------------------------------------------------------------------------------------------
// Response parts

// One text block per answer, so a fixed id keeps the stream deterministic.
const textId = "local-text-0"

const streamParts = (reply: Reply): Array<Response.StreamPartEncoded> => {
  const parts: Array<Response.StreamPartEncoded> = []
  if (reply.text !== "") {
    parts.push({ type: "text-start", id: textId })
    for (const delta of words(reply.text)) parts.push({ type: "text-delta", id: textId, delta })
    parts.push({ type: "text-end", id: textId })
  }
  for (const call of reply.toolCalls) {
    parts.push({ type: "tool-params-start", id: call.id, name: call.name })
    for (const delta of splitJson(call.json)) parts.push({ type: "tool-params-delta", id: call.id, delta })
    parts.push({ type: "tool-params-end", id: call.id }, toolCallPart(call))
  }
  parts.push(finish(reply))
  return parts
}

const isDelta = (part: Response.StreamPartEncoded): boolean =>
  part.type === "text-delta" || part.type === "tool-params-delta"

const toolCallPart = (call: ToolCall): Response.ToolCallPartEncoded => ({
  type: "tool-call",
  id: call.id,
  name: call.name,
  params: call.params
})

const responseMetadata: Effect.Effect<Response.ResponseMetadataPartEncoded> = Effect.map(
  DateTime.now,
  (now): Response.ResponseMetadataPartEncoded => ({
    type: "response-metadata",
    modelId: id,
    timestamp: DateTime.formatIso(now)
  })
)

// Nothing is cached and nothing is reasoning, so those counts are a known 0, not unknown.
const finish = (reply: Reply): Response.FinishPartEncoded => ({
  type: "finish",
  reason: reply.toolCalls.length > 0 ? "tool-calls" : "stop",
  usage: {
    inputTokens: { uncached: reply.inputTokens, total: reply.inputTokens, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: reply.outputTokens, text: reply.textTokens, reasoning: 0 }
  }
})
