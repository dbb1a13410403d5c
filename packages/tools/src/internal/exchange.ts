/**
 * One HTTP request of `SafeHttp` — one hop of a redirect chain — made over a connection to an
 * address checked beforehand: the request names the original host (Host header, TLS SNI and
 * certificate check) but node's `lookup` is replaced by one that answers the pinned address,
 * so DNS is not asked again between the check and the connect. The body is read up to a
 * bound and decompressed if the server compressed it; interruption destroys the socket.
 */
import * as Http from "node:http"
import * as Https from "node:https"
import { isIP, type LookupFunction } from "node:net"
import type { Readable } from "node:stream"
import { TextDecoder } from "node:util"
import * as Zlib from "node:zlib"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"

/** The request methods `SafeHttp` sends. */
export type Method = "GET" | "HEAD" | "POST"

/** One request to send to `address`, which was checked for `url`'s host. */
export interface Hop {
  readonly url: URL
  readonly address: string
  readonly method: Method
  readonly headers: Readonly<Record<string, string>>
  readonly body: string | undefined
  readonly maxBytes: number
}

/** What one hop answered; a redirect's body is not read. */
export interface HopResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  /** The `Location` of a redirect (301, 302, 303, 307, 308), as sent. */
  readonly location: string | undefined
  readonly body: string
  readonly truncated: boolean
}

/** The connection or the response failed; `detail` is for a message (an error code, never data). */
export class ExchangeFailure extends Data.TaggedError("ExchangeFailure")<{ readonly detail: string }> {}

const redirectStatuses: ReadonlySet<number> = new Set([301, 302, 303, 307, 308])

/** Lower-case header names; repeated headers joined by ", " as RFC 9110 allows. */
const flattenHeaders = (headers: Http.IncomingHttpHeaders): Record<string, string> => {
  const flat: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value
  }
  return flat
}

/** The decoder of the `charset` of a content type; UTF-8 when absent or unknown. */
const decoderFor = (contentType: string | undefined): TextDecoder => {
  const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? "")?.[1]
  try {
    return new TextDecoder(charset ?? "utf-8")
  } catch {
    return new TextDecoder("utf-8")
  }
}

/** The body as sent, decompressed when the server used gzip, deflate or brotli. */
const decodedBody = (response: Http.IncomingMessage, encoding: string | undefined): Readable | undefined => {
  switch ((encoding ?? "identity").trim().toLowerCase()) {
    case "identity":
      return response
    case "gzip":
    case "x-gzip":
      return response.pipe(Zlib.createGunzip())
    case "deflate":
      return response.pipe(Zlib.createInflate())
    case "br":
      return response.pipe(Zlib.createBrotliDecompress())
    default:
      return undefined
  }
}

const describe = (error: unknown): string =>
  Predicate.hasProperty(error, "code") && Predicate.isString(error.code) ? error.code : "connection failed"

/**
 * Sends `hop` and reads the answer: at most `maxBytes` of (decompressed) body, decoded as
 * text; `truncated` when there was more, in which case the connection is dropped.
 */
export const exchange = (hop: Hop): Effect.Effect<HopResponse, ExchangeFailure> =>
  Effect.callback<HopResponse, ExchangeFailure>((resume) => {
    const family = isIP(hop.address) === 6 ? 6 : 4
    const lookup: LookupFunction = (_hostname, options, callback) => {
      if (options.all === true) callback(null, [{ address: hop.address, family }])
      else callback(null, hop.address, family)
    }
    const client = hop.url.protocol === "https:" ? Https : Http
    // agent: false: a fresh connection per hop, never a pooled socket to another address.
    const request = client.request(hop.url, { method: hop.method, headers: hop.headers, lookup, agent: false })
    const fail = (error: unknown) => resume(Effect.fail(new ExchangeFailure({ detail: describe(error) })))
    request.on("error", fail)
    request.on("response", (response) => {
      const status = response.statusCode ?? 0
      const headers = flattenHeaders(response.headers)
      const location = redirectStatuses.has(status) ? headers["location"] : undefined
      if (location !== undefined || hop.method === "HEAD") {
        response.destroy()
        return resume(Effect.succeed({ status, headers, location, body: "", truncated: false }))
      }
      const body = decodedBody(response, headers["content-encoding"])
      if (body === undefined) {
        request.destroy()
        return resume(Effect.fail(new ExchangeFailure({ detail: "unsupported content-encoding" })))
      }
      if (body !== response) {
        delete headers["content-encoding"]
        delete headers["content-length"]
      }
      const chunks: Array<Buffer> = []
      let size = 0
      const finish = (truncated: boolean) => {
        const text = decoderFor(headers["content-type"]).decode(Buffer.concat(chunks), { stream: truncated })
        resume(Effect.succeed({ status, headers, location, body: text, truncated }))
      }
      body.on("data", (chunk: Buffer) => {
        const room = hop.maxBytes - size
        if (chunk.length <= room) {
          chunks.push(chunk)
          size += chunk.length
          return
        }
        chunks.push(chunk.subarray(0, room))
        size = hop.maxBytes
        request.destroy()
        body.destroy()
        finish(true)
      })
      body.on("end", () => finish(false))
      body.on("error", fail)
      response.on("error", fail)
    })
    request.end(hop.body)
    return Effect.sync(() => request.destroy())
  })
