/**
 * What every JSON body must be before it is parsed: valid UTF-8 (no byte replaced behind the
 * client's back), nested at most {@link maxDepth} deep, and without lone surrogates (`"\ud800"`
 * escapes that no Unicode string holds). One {@link decode}, used by the stack for every JSON
 * route (its request's `text` and `json` go through it, see {@link checkedRequest}) and by the
 * fast lane before `ChatCompletions.parseRequest`, so both refuse the same bodies with the same
 * 400 `invalid_request`.
 *
 * Cheap: Node's native UTF-8 check, then one pass over the text that counts brackets outside
 * strings and looks at `\u` escapes; the text is parsed once, afterwards, by whoever reads it.
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as HttpServerError from "effect/http/HttpServerError"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"
import { isUtf8 } from "node:buffer"

/** The deepest nesting of objects and arrays a body may have (API.md). */
export const maxDepth = 32

/** A body refused before parsing; `message` is the 400's. */
export class InvalidBody extends Schema.TaggedError<InvalidBody>()("InvalidBody", { message: Schema.String }) {}

const hexDigit = (code: number): number => {
  if (code >= 48 && code <= 57) return code - 48
  const lower = code | 0x20
  return lower >= 97 && lower <= 102 ? lower - 87 : -1
}

/** The code unit of the 4 hex digits at `at`, or -1. */
const hex4 = (text: string, at: number): number => {
  let value = 0
  for (let i = at; i < at + 4; i++) {
    const digit = hexDigit(text.charCodeAt(i))
    if (digit < 0) return -1
    value = value * 16 + digit
  }
  return value
}

const isHigh = (code: number) => code >= 0xd800 && code <= 0xdbff
const isLow = (code: number) => code >= 0xdc00 && code <= 0xdfff

/**
 * Why the JSON `text` is refused before parsing, or `undefined`: nesting deeper than
 * {@link maxDepth}, or a `\u` escape of a lone surrogate. Malformed JSON is left to the parser.
 */
export const refusal = (text: string): string | undefined => {
  let depth = 0
  let inString = false
  const length = text.length
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i)
    if (inString) {
      if (code === 0x22) inString = false
      else if (code === 0x5c) {
        if (text.charCodeAt(i + 1) !== 0x75) {
          i++
          continue
        }
        const unit = hex4(text, i + 2)
        if (isHigh(unit)) {
          if (text.charCodeAt(i + 6) !== 0x5c || text.charCodeAt(i + 7) !== 0x75 || !isLow(hex4(text, i + 8))) {
            return "the request body has a lone surrogate (an unpaired \\ud800-\\udbff escape)"
          }
          i += 11
        } else if (isLow(unit)) {
          return "the request body has a lone surrogate (an unpaired \\udc00-\\udfff escape)"
        } else i += 5
      }
    } else if (code === 0x22) inString = true
    else if (code === 0x7b || code === 0x5b) {
      if (++depth > maxDepth) return `the request body is nested deeper than ${maxDepth} levels`
    } else if (code === 0x7d || code === 0x5d) depth--
  }
  return undefined
}

/** The text of a JSON body, or why it is refused (a message for a 400). */
export const decode = (bytes: Uint8Array): Result.Result<string, string> => {
  if (!isUtf8(bytes)) return Result.fail("the request body is not valid UTF-8")
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")
  const refused = refusal(text)
  return refused === undefined ? Result.succeed(text) : Result.fail(refused)
}

/** Whether a request's body is read as JSON: a method with a body, and JSON or no content type. */
const readsJson = (request: HttpServerRequest.HttpServerRequest): boolean => {
  const method = request.method
  if (method === "GET" || method === "HEAD" || method === "OPTIONS") return false
  const type = request.headers["content-type"]
  return type === undefined || type.includes("json")
}

/**
 * `request` whose `text` and `json` go through {@link decode} first; its failures are
 * `RequestParseError`s caused by {@link InvalidBody}, which the edge answers 400. Other requests
 * are returned as they are.
 */
export const checkedRequest = (request: HttpServerRequest.HttpServerRequest): HttpServerRequest.HttpServerRequest => {
  if (!readsJson(request)) return request
  const text = Effect.flatMap(request.arrayBuffer, (buffer) => {
    const decoded = decode(new Uint8Array(buffer))
    return Result.isSuccess(decoded)
      ? Effect.succeed(decoded.success)
      : Effect.fail(
          new HttpServerError.HttpServerError({
            reason: new HttpServerError.RequestParseError({
              request,
              reason: "Parse",
              description: decoded.failure,
              cause: new InvalidBody({ message: decoded.failure })
            })
          })
        )
  })
  const json = Effect.flatMap(text, (body) =>
    Effect.try({
      try: (): Schema.Json => (body === "" ? null : JSON.parse(body)),
      catch: (cause) =>
        new HttpServerError.HttpServerError({
          reason: new HttpServerError.RequestParseError({ request, reason: "Parse", cause })
        })
    })
  )
  // A proxy, not a copy: everything else (the Node objects behind it included) stays the request's.
  return new Proxy(request, {
    get: (target, property) => {
      if (property === "text") return text
      if (property === "json") return json
      if (property === "modify") {
        return (options: Parameters<HttpServerRequest.HttpServerRequest["modify"]>[0]) =>
          checkedRequest(target.modify(options))
      }
      return Reflect.get(target, property, target)
    }
  })
}
