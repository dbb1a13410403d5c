/**
 * CORS from `cors.origins`: exact origins (`https://app.example.com`) or `*` for any. A preflight
 * (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an allowed origin is answered
 * 204 with the methods and headers it may use; from another origin, 403 without CORS headers. An
 * actual request from an allowed origin gets `Access-Control-Allow-Origin`, `Vary: Origin` and the
 * headers its script may read (`X-Request-Id`, rate limits, `Retry-After`, `X-PolyAgent-Model`);
 * from another origin, nothing (its browser keeps the answer from the script).
 *
 * {@link actualHeaders} is the one place those headers are decided, for the stack (`Edge.ts`) and
 * the fast lane alike; both set them on Node's response before its head is written.
 */

/** The headers a browser script may read of an answer. */
const exposed = "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, Retry-After, X-PolyAgent-Model"
const methods = "GET, POST, PATCH, PUT, DELETE, OPTIONS"
/** How long a browser may reuse a preflight's answer, in seconds. */
const maxAgeSeconds = "600"
/** Requested headers as a browser lists them: tokens separated by commas. */
const HEADER_LIST = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/

/** The CORS policy of `cors.origins`. */
export interface Policy {
  /** Whether any origin is allowed at all (an empty list: CORS is off, no header is ever added). */
  readonly enabled: boolean
  /** The headers of an actual answer to a request from `origin`; none for another origin. */
  readonly actualHeaders: (origin: string | undefined) => Readonly<Record<string, string>> | undefined
  /** The headers of a preflight's 204 from `origin`, or `undefined` when the origin is not allowed. */
  readonly preflightHeaders: (
    origin: string,
    requestedHeaders: string | undefined
  ) => Readonly<Record<string, string>> | undefined
}

/** The policy of `origins` (`cors.origins`). */
export const make = (origins: ReadonlyArray<string>): Policy => {
  const any = origins.includes("*")
  const allowed = new Set(origins)
  const allowOrigin = (origin: string): string | undefined => (any ? "*" : allowed.has(origin) ? origin : undefined)
  // Answers differ by Origin (but for `*`): caches must keep them apart.
  const vary: Record<string, string> = any ? {} : { vary: "Origin" }
  return {
    enabled: origins.length > 0,
    actualHeaders: (origin) => {
      if (origin === undefined) return undefined
      const value = allowOrigin(origin)
      if (value === undefined) return undefined
      return { "access-control-allow-origin": value, "access-control-expose-headers": exposed, ...vary }
    },
    preflightHeaders: (origin, requestedHeaders) => {
      const value = allowOrigin(origin)
      if (value === undefined) return undefined
      const headers =
        requestedHeaders !== undefined && HEADER_LIST.test(requestedHeaders.trim())
          ? requestedHeaders.trim()
          : "authorization, content-type, x-request-id"
      return {
        "access-control-allow-origin": value,
        "access-control-allow-methods": methods,
        "access-control-allow-headers": headers,
        "access-control-max-age": maxAgeSeconds,
        ...vary
      }
    }
  }
}

/** Whether a request is a CORS preflight. */
export const isPreflight = (method: string, headers: { readonly [name: string]: unknown }): boolean =>
  method === "OPTIONS" &&
  typeof headers["origin"] === "string" &&
  typeof headers["access-control-request-method"] === "string"
