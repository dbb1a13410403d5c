/**
 * What a relayed call used, without slowing the relay down. A non-streamed answer's `usage` is
 * read from the JSON the relay parses anyway. A streamed answer is passed on in whole SSE events
 * (a chunk's unfinished last event waits for the rest) and only the event carrying `usage` — found
 * by a byte search, never by parsing each chunk — is parsed; the relay asks upstream for it
 * (`stream_options.include_usage`) and drops it when the client did not ask. When no usage comes
 * (a stream that breaks, a server that never reports it), the usage is estimated: the prompt from
 * the request, the completion from the text already passed on, parsed only then.
 */
import { ModelCatalog, Tokens, Usage } from "@polyagent/runtime"
import * as Predicate from "effect/Predicate"
import * as Result from "effect/Result"

// ---------------------------------------------------------------------------------------------
// Usage in the wire's terms

const countOf = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) ? Math.max(0, Math.round(value)) : undefined

const get = (value: unknown, key: string): unknown =>
  Predicate.isObject(value) && Predicate.hasProperty(value, key) ? value[key] : undefined

/** A Chat Completions `usage` object as ours; `undefined` when it reports no token count. */
export const usageOfWire = (usage: unknown): Usage.Usage | undefined => {
  const prompt = countOf(get(usage, "prompt_tokens"))
  const completion = countOf(get(usage, "completion_tokens"))
  if (prompt === undefined && completion === undefined) return undefined
  return Usage.make(prompt ?? 0, completion ?? 0, {
    cached: countOf(get(get(usage, "prompt_tokens_details"), "cached_tokens")),
    reasoning: countOf(get(get(usage, "completion_tokens_details"), "reasoning_tokens"))
  })
}

// ---------------------------------------------------------------------------------------------
// Estimates

const textOf = (content: unknown): string => {
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return ""
  return content.map((part) => (typeof get(part, "text") === "string" ? String(get(part, "text")) : "")).join("")
}

/**
 * The prompt tokens of a Chat Completions request, counted as `Tokens.countMessages` counts a
 * prompt (framing, role, text of each message, the reply priming), plus the tool calls in the
 * conversation and the tools offered, as JSON. Images count nothing: an estimate.
 */
export const promptTokensOf = (body: ModelCatalog.RelayBody): number => {
  const messages = body["messages"]
  let total = Tokens.replyPriming
  if (Array.isArray(messages)) {
    for (const message of messages) {
      const role = get(message, "role")
      total += Tokens.tokensPerMessage + Tokens.countText(typeof role === "string" ? role : "")
      total += Tokens.countText(textOf(get(message, "content")))
      const calls = get(message, "tool_calls")
      if (calls !== undefined) total += Tokens.countText(JSON.stringify(calls) ?? "")
    }
  }
  const tools = body["tools"]
  if (tools !== undefined) total += Tokens.countText(JSON.stringify(tools) ?? "")
  return total
}

const decoder = new TextDecoder()

/** The `data:` payloads of the complete SSE events in `text`. */
const eventData = (text: string): Array<string> =>
  text
    .split(/\r?\n\r?\n/)
    .map((event) =>
      event
        .split(/\r?\n/)
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
        .join("\n")
    )
    .filter((data) => data !== "" && data !== "[DONE]")

const parsed = (data: string): unknown => Result.getOrUndefined(Result.try((): unknown => JSON.parse(data)))

/** The text of streamed chunks (content, reasoning, tool calls' names and arguments) as tokens. */
export const completionTokensOf = (chunks: ReadonlyArray<Uint8Array>): number => {
  let text = ""
  for (const data of eventData(chunks.map((chunk) => decoder.decode(chunk)).join(""))) {
    const choices = get(parsed(data), "choices")
    if (!Array.isArray(choices)) continue
    for (const choice of choices) {
      const delta = get(choice, "delta")
      for (const key of ["content", "reasoning_content", "reasoning", "refusal"]) {
        const value = get(delta, key)
        if (typeof value === "string") text += value
      }
      const calls = get(delta, "tool_calls")
      if (!Array.isArray(calls)) continue
      for (const call of calls) {
        const fn = get(call, "function")
        for (const key of ["name", "arguments"]) {
          const value = get(fn, key)
          if (typeof value === "string") text += value
        }
      }
    }
  }
  return text === "" ? 0 : Tokens.countText(text)
}

// ---------------------------------------------------------------------------------------------
// A streamed answer

/** Whether the client asked for usage in its stream (`stream_options.include_usage`). */
export const asksUsage = (body: ModelCatalog.RelayBody): boolean =>
  get(body["stream_options"], "include_usage") === true

const boundary = Buffer.from("\n\n")
const crlfBoundary = Buffer.from("\r\n\r\n")
const usageMarkers = [Buffer.from('"usage":{'), Buffer.from('"usage": {')]

/** An unfinished event kept back longer than this is passed on anyway: no boundary is coming. */
const maxCarry = 256 * 1024

const bufferOf = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** The end of the last complete event in `bytes` (0 when none ends there). */
const lastBoundary = (bytes: Buffer): number => {
  const lf = bytes.lastIndexOf(boundary)
  const crlf = bytes.lastIndexOf(crlfBoundary)
  return Math.max(lf === -1 ? 0 : lf + 2, crlf === -1 ? 0 : crlf + 4)
}

/**
 * The metering of one streamed answer. `pass` takes each chunk as it arrives and answers the
 * bytes to send on (whole events; `undefined` when none is complete yet), `flush` what is left at
 * the end; `usage` is what the answer used, read or estimated.
 */
export class StreamMeter {
  private carry: Buffer | undefined
  private readonly passed: Array<Uint8Array> = []
  private reported: Usage.Usage | undefined
  private received = false
  private readonly body: ModelCatalog.RelayBody
  private readonly clientAsked: boolean

  /** The meter of the answer to `body`; `clientAsked`: keep the usage event for the client. */
  constructor(body: ModelCatalog.RelayBody, clientAsked: boolean) {
    this.body = body
    this.clientAsked = clientAsked
  }

  /** The bytes of `chunk` (after what was kept back) to send on now. */
  pass(chunk: Uint8Array): Uint8Array | undefined {
    this.received = true
    const carry = this.carry
    const bytes = carry === undefined ? bufferOf(chunk) : Buffer.concat([carry, chunk])
    const cut = bytes.length > maxCarry ? bytes.length : lastBoundary(bytes)
    this.carry = cut === bytes.length ? undefined : bytes.subarray(cut)
    return cut === 0 ? undefined : this.events(bytes.subarray(0, cut))
  }

  /** What was kept back, at the end of the answer. */
  flush(): Uint8Array | undefined {
    const carry = this.carry
    this.carry = undefined
    return carry === undefined ? undefined : this.events(carry)
  }

  /**
   * What the answer used, and whether it is an estimate: the usage upstream reported; else, once
   * an answer began, the prompt and the text passed on estimated; else nothing.
   */
  usage(): readonly [Usage.Usage, boolean] {
    if (this.reported !== undefined) return [this.reported, false]
    if (!this.received) return [Usage.zero, false]
    return [Usage.make(promptTokensOf(this.body), completionTokensOf(this.passed)), true]
  }

  // Whole events: only those that mention usage are parsed, and a usage-only event the client did
  // not ask for is dropped.
  private events(bytes: Buffer): Uint8Array | undefined {
    if (usageMarkers.every((marker) => bytes.indexOf(marker) === -1)) {
      this.passed.push(bytes)
      return bytes
    }
    const kept: Array<string> = []
    for (const event of decoder.decode(bytes).split(/(?<=\r?\n\r?\n)/)) {
      const data = eventData(event)[0]
      const chunk = data === undefined ? undefined : parsed(data)
      const usage = usageOfWire(get(chunk, "usage"))
      if (usage !== undefined) this.reported = usage
      const choices = get(chunk, "choices")
      const usageOnly = usage !== undefined && Array.isArray(choices) && choices.length === 0
      if (!usageOnly || this.clientAsked) kept.push(event)
    }
    if (kept.length === 0) return undefined
    const out = Buffer.from(kept.join(""))
    this.passed.push(out)
    return out
  }
}
