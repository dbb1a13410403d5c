/**
 * `@polyagent/plugin-http-fetch`: the `http_fetch` tool, which reads a web page, a JSON document
 * or a text file for the model. Pages become readable text (title, paragraphs, list items, link
 * text; no scripts or styles), JSON and text pass through, anything else is refused. It reaches
 * the network only through PolyAgent's `SafeHttp` client, so it cannot be pointed at private,
 * loopback or cloud-metadata addresses, and it needs the `network` permission.
 */
import { SafeHttp, Tool, ToolPlugin } from "@polyagent/tools"
import { Effect, Schema } from "effect"
import * as Html from "./internal/html.ts"

/** Characters of text answered when the model does not say, and at most. */
const defaultMaxChars = 20_000
const maxMaxChars = 100_000

/** What the model passes. */
export const HttpFetchParameters = Schema.Struct({
  url: Schema.String.annotate({ description: "The http or https URL to read" }),
  max_chars: Schema.optionalKey(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: maxMaxChars })).annotate({
      description: `Characters of text to return at most (default ${defaultMaxChars}, at most ${maxMaxChars})`
    })
  )
})

/** What the model reads back. */
export const HttpFetchResult = Schema.Struct({
  /** The URL that answered, after redirects. */
  url: Schema.String,
  status: Schema.Int,
  content_type: Schema.String,
  title: Schema.optionalKey(Schema.String),
  text: Schema.String,
  /** Whether `text` is not the whole document (cut at `max_chars` or at the download limit). */
  truncated: Schema.Boolean
})

const accept = "text/html, application/xhtml+xml, application/json, text/plain;q=0.9, text/*;q=0.8, */*;q=0.1"

/** How a response body is read: as HTML, as text, or not at all. */
const kindOf = (contentType: string, body: string): "html" | "text" | "binary" => {
  const mime = (contentType.split(";")[0] ?? "").trim().toLowerCase()
  if (mime === "") {
    if (/^\s*(<!doctype html|<html)/i.test(body)) return "html"
    return body.includes("\u0000") ? "binary" : "text"
  }
  if (mime === "text/html" || mime === "application/xhtml+xml") return "html"
  const textual =
    mime.startsWith("text/") ||
    mime.endsWith("+json") ||
    mime.endsWith("+xml") ||
    /^application\/(json|xml|javascript|ecmascript|x-javascript|yaml|x-yaml|toml|x-ndjson|ndjson|csv|graphql|sql)$/.test(
      mime
    )
  return textual ? "text" : "binary"
}

/** The first `max` characters of `text`, never half of a surrogate pair. */
const cut = (text: string, max: number): string => {
  if (text.length <= max) return text
  const code = text.charCodeAt(max - 1)
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max)
}

/** `http_fetch`: reads a URL as text for the model. */
export const httpFetch = Tool.make("http_fetch", {
  description:
    "Fetch a web page, JSON document or text file by URL (http or https) and return its readable text. " +
    "HTML is converted to plain text (title, paragraphs, list items, link text); JSON and text are returned as is. " +
    "Binary content (images, PDFs, archives) is refused. Private and internal network addresses are not reachable.",
  parameters: HttpFetchParameters,
  success: HttpFetchResult,
  permissions: ["network"],
  handler: Effect.fnUntraced(function* ({ url, max_chars }) {
    const http = yield* SafeHttp.SafeHttp
    const response = yield* http
      .fetch(url, {
        headers: {
          accept,
          "user-agent": "PolyAgent-http_fetch/0.1 (+https://www.npmjs.com/package/@polyagent/plugin-http-fetch)"
        }
      })
      .pipe(Effect.mapError((error) => new Tool.ToolFailure({ message: error.message })))
    const contentType = response.headers["content-type"] ?? ""
    const kind = kindOf(contentType, response.body)
    const page = kind === "html" ? Html.toText(response.body) : { title: undefined, text: response.body }
    if (response.status >= 400) {
      const excerpt = kind === "binary" ? "" : cut(page.text.replace(/\s+/g, " ").trim(), 300)
      return yield* new Tool.ToolFailure({
        message: `${response.url} answered HTTP ${response.status}${excerpt === "" ? "." : `: ${excerpt}`}`
      })
    }
    if (kind === "binary") {
      return yield* new Tool.ToolFailure({
        message: `${response.url} is ${contentType.split(";")[0]}, which is not text; http_fetch reads only web pages, JSON and text.`
      })
    }
    const max = max_chars ?? defaultMaxChars
    return {
      url: response.url,
      status: response.status,
      content_type: contentType,
      ...(page.title === undefined ? {} : { title: page.title }),
      text: cut(page.text, max),
      truncated: response.truncated || page.text.length > max
    }
  })
})

/** The plugin: the default export PolyAgent loads. */
export default ToolPlugin.make({ name: "http-fetch", version: "0.1.0", tools: [httpFetch] })
