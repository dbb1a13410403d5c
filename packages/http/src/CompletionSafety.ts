/**
 * The safety policies on a completion written straight to Node's response (`ModelCompletion`,
 * the fast lane's and the stack's): the answer of a policy that answers itself (an escalation, a
 * refusal) in OpenAI's shape, and the output check of a model's answer — the whole JSON of a
 * non-streamed one, and the SSE bytes of a streamed one, read event by event (`data:` chunks'
 * `delta.content`), held back in the policy's window and released only once checked. The bytes
 * that pass are the upstream's own, unchanged; a disclaimer is one more chunk before the finish.
 * When no policy is on, `ModelCompletion` does not call this module at all.
 */
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { Safety, SessionProtocol } from "@polyagent/runtime"
import * as ChatCompletions from "./ChatCompletions.ts"

const encoder = new TextEncoder()
const sse = (data: string) => encoder.encode(`data: ${data}\n\n`)

/** The `safety` event `{action, category}` of a stream. */
export const safetyEvent = (decision: Safety.Decision): Uint8Array =>
  encoder.encode(`event: safety\ndata: ${JSON.stringify({ action: decision.action, category: decision.category })}\n\n`)

/** A policy's own answer (`reply`) as a completion: JSON, or the chunks of a stream with the `safety` event first. */
export const reply = (
  header: ChatCompletions.Header,
  decision: Safety.Decision,
  text: string,
  streamed: boolean
): Stream.Stream<Uint8Array> | Uint8Array =>
  streamed
    ? Stream.make(
        safetyEvent(decision),
        sse(ChatCompletions.chunk(header, { role: "assistant", content: "" })),
        sse(ChatCompletions.chunk(header, { content: text })),
        sse(ChatCompletions.chunk(header, {}, "stop")),
        sse(ChatCompletions.done)
      )
    : encoder.encode(
        JSON.stringify(ChatCompletions.completion(header, text, [], "stop", { prompt_tokens: 0, completion_tokens: 0 }))
      )

const CompletionContent = Schema.Struct({
  choices: Schema.Array(
    Schema.Struct({ message: Schema.Struct({ content: Schema.optional(Schema.NullOr(Schema.String)) }) })
  )
})
const decodeCompletion = Schema.decodeUnknownResult(CompletionContent)

/**
 * A non-streamed completion's JSON after the output check: unchanged when it passes, with the
 * disclaimer after its content when there is one; fails with `SafetyStop` when it does not pass.
 */
export const checkCompletion = (
  bytes: Uint8Array,
  guard: Safety.Guard<never>,
  disclaimer: string | undefined
): Effect.Effect<Uint8Array, Safety.SafetyStop> =>
  Effect.suspend(() => {
    const json = Result.try((): unknown => JSON.parse(new TextDecoder().decode(bytes)))
    const read = Result.isSuccess(json) ? decodeCompletion(json.success) : undefined
    const content =
      read !== undefined && Result.isSuccess(read)
        ? read.success.choices.map((c) => c.message.content ?? "").join("")
        : ""
    return Effect.map(guard.end(content), () => {
      if (disclaimer === undefined || !Result.isSuccess(json)) return bytes
      return encoder.encode(JSON.stringify(withDisclaimer(json.success, disclaimer)))
    })
  })

/** The completion `json` with `disclaimer` after the first choice's content. */
const withDisclaimer = (json: unknown, disclaimer: string): unknown => {
  if (typeof json !== "object" || json === null || !("choices" in json) || !Array.isArray(json.choices)) return json
  const [first, ...rest] = json.choices
  if (typeof first !== "object" || first === null || !("message" in first)) return json
  const message = first.message
  if (typeof message !== "object" || message === null) return json
  const content = "content" in message && typeof message.content === "string" ? message.content : ""
  return { ...json, choices: [{ ...first, message: { ...message, content: content + disclaimer } }, ...rest] }
}

/** One SSE event of the upstream's stream, and the answer's text it carries. */
export interface Piece {
  readonly bytes: Uint8Array
  readonly text: string
}

const HeaderFields = Schema.Struct({ id: Schema.String, created: Schema.Number, model: Schema.String })
const decodeHeader = Schema.decodeUnknownResult(HeaderFields)

/**
 * A streamed completion's SSE bytes through the output check: each event is held back with the
 * text it carries until the window passes it; a failed check fails the stream with `SafetyStop`
 * before the events it read are written. At the end the whole answer is checked, the disclaimer
 * (with the `safety` event) goes before the finishing chunks, and the rest is released.
 */
export const guardStream = (
  bytes: Stream.Stream<Uint8Array, SessionProtocol.TurnError>,
  guard: Safety.Guard<Piece>,
  decision: Safety.Decision | undefined,
  disclaimer: string | undefined
): Stream.Stream<Uint8Array, SessionProtocol.TurnError> =>
  Stream.suspend(() => {
    const decoder = new TextDecoder()
    let buffer = ""
    let answer = ""
    let header: ChatCompletions.Header | undefined
    const read = (event: string): Piece => {
      const eventBytes = encoder.encode(event)
      const text = textOf(event)
      if (text !== "" && header === undefined) header = headerOf(event)
      answer += text
      return { bytes: eventBytes, text }
    }
    const pushAll = (events: ReadonlyArray<string>) =>
      Effect.map(
        Effect.forEach(events, (event) => {
          const piece = read(event)
          return guard.push(piece, piece.text)
        }),
        (released) => released.flat().map((piece) => piece.bytes)
      )
    const pieces = Stream.mapEffect(bytes, (chunk) => {
      buffer += decoder.decode(chunk, { stream: true })
      const events: Array<string> = []
      let start = 0
      for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n", start)) {
        events.push(buffer.slice(start, end + 2))
        start = end + 2
      }
      buffer = buffer.slice(start)
      return pushAll(events)
    })
    const finish = Effect.gen(function* () {
      const tail = buffer + decoder.decode()
      const last = tail.trim() === "" ? [] : yield* pushAll([tail])
      const rest = yield* guard.end(answer)
      if (disclaimer === undefined || decision === undefined) return [...last, ...rest.map((piece) => piece.bytes)]
      // The disclaimer follows the last text held, before the finish, usage and `[DONE]` events.
      const lastText = rest.findLastIndex((piece) => piece.text !== "")
      const at = lastText + 1
      const added = [
        safetyEvent(decision),
        sse(ChatCompletions.chunk(header ?? fallbackHeader, { content: disclaimer }))
      ]
      return [...last, ...rest.slice(0, at).map((p) => p.bytes), ...added, ...rest.slice(at).map((p) => p.bytes)]
    })
    return Stream.concat(Stream.flattenIterable(pieces), Stream.flattenIterable(Stream.fromEffect(finish)))
  })

/** The answer's text an SSE event carries: its `data:` chunks' `choices[].delta.content`. */
const textOf = (event: string): string => {
  let text = ""
  for (const line of event.split("\n")) {
    if (!line.startsWith("data:") || line.includes("[DONE]")) continue
    const json = Result.try((): unknown => JSON.parse(line.slice(5)))
    if (Result.isFailure(json)) continue
    const choices: unknown = Predicate.hasProperty(json.success, "choices") ? json.success.choices : undefined
    if (!Array.isArray(choices)) continue
    for (const choice of choices) {
      const delta: unknown = Predicate.hasProperty(choice, "delta") ? choice.delta : undefined
      const content: unknown = Predicate.hasProperty(delta, "content") ? delta.content : undefined
      if (typeof content === "string") text += content
    }
  }
  return text
}

const fallbackHeader: ChatCompletions.Header = { id: "chatcmpl-safety", created: 0, model: "safety" }

/** The id, created time and model of the chunk in `event`. */
const headerOf = (event: string): ChatCompletions.Header | undefined => {
  const data = event.split("\n").find((line) => line.startsWith("data:"))
  if (data === undefined) return undefined
  const json = Result.try((): unknown => JSON.parse(data.slice(5)))
  if (Result.isFailure(json)) return undefined
  const header = decodeHeader(json.success)
  return Result.isSuccess(header) ? header.success : undefined
}
