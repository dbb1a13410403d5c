/**
 * The connection pool of one provider: one undici `Pool` to the upstream's origin, sized and set
 * up by the configuration (`providers.<name>.max_connections` and `providers.<name>.http2`, or the
 * same keys on a catalogue entry). The relay (`openai/relay.ts`) and the provider's SDK client
 * (`sdkFetch`) send every request of the provider over it, so the limit is the provider's.
 *
 * Sizing: over HTTP/1.1 a connection carries one request at a time (pipelining 1, keep-alive), so
 * the pool size is how many requests can wait on the upstream at once; requests beyond it wait in
 * the pool's queue, and their timeouts start only once they have a connection. Each connection is
 * a file descriptor, beside the client's own connection to the gateway: see the README for
 * `ulimit -n`. Over HTTP/2 each connection multiplexes up to 100 requests (undici's default
 * `maxConcurrentStreams`), and another one opens only when those are busy.
 */
import { AppConfig } from "@polyagent/runtime"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Agent, type Dispatcher, fetch, Pool } from "undici"

/** How a provider's pool connects. */
export interface Settings {
  /** Connections kept to the origin at most; requests beyond wait in the pool's queue. */
  readonly maxConnections: number
  /**
   * HTTP/2 to the upstream: over `https` negotiated by ALPN (an upstream that only speaks HTTP/1.1
   * still gets HTTP/1.1), over plain `http` with prior knowledge (h2c), which an HTTP/1.1-only
   * upstream refuses.
   */
  readonly http2: boolean
}

/** The default pool, from `AppConfig.upstreamDefaults`: 4,096 HTTP/1.1 connections (see there why). */
export const defaults: Settings = {
  maxConnections: AppConfig.upstreamDefaults.max_connections,
  http2: AppConfig.upstreamDefaults.http2
}

/** How long a connection may take to open at most, whatever the request timeout. */
const connectTimeoutMs = 10_000

/**
 * A keep-alive pool to `url`'s origin that lives as long as the scope; closing the scope destroys
 * it with its connections. `timeoutMs` bounds the wait for the response headers and then for each
 * chunk of the body (`Infinity`: no bound), and the opening of a connection (10 s at most).
 *
 * When to use: once per provider (base URL, timeout and settings), shared by its relay and SDK.
 *
 * Gotchas: the timeouts start when a request is written to a connection, not when it enters the
 * queue, so a request that waits for a free connection does not time out for that alone.
 */
export const make = (url: URL, timeoutMs: number, settings: Settings): Effect.Effect<Pool, never, Scope.Scope> => {
  // undici takes whole milliseconds, 0 for no timeout at all.
  const timeout = Number.isFinite(timeoutMs) ? Math.max(1, Math.ceil(timeoutMs)) : 0
  const options = {
    connections: settings.maxConnections,
    pipelining: 1,
    connectTimeout: timeout === 0 ? connectTimeoutMs : Math.min(timeout, connectTimeoutMs),
    headersTimeout: timeout,
    bodyTimeout: timeout,
    allowH2: settings.http2,
    // HTTP/2 without TLS (h2c, prior knowledge). undici's `Pool` reads this top-level option (it
    // ignores `h2Options.useH2c`), which its types leave out: hence a variable, not a literal.
    useH2c: settings.http2 && url.protocol === "http:"
  }
  return Effect.acquireRelease(
    Effect.sync(() => new Pool(url.origin, options)),
    (pool) => Effect.promise(() => pool.destroy())
  )
}

/**
 * A keep-alive agent to any origin, with the timeouts of {@link make}, that lives as long as the
 * scope: for the calls of tenants that bring their own base URL (`TenantProviderKeys`). It makes
 * no connection until used.
 */
export const makeAgent = (timeoutMs: number): Effect.Effect<Agent, never, Scope.Scope> => {
  const timeout = Number.isFinite(timeoutMs) ? Math.max(1, Math.ceil(timeoutMs)) : 0
  return Effect.acquireRelease(
    Effect.sync(
      () =>
        new Agent({
          connections: defaults.maxConnections,
          connectTimeout: timeout === 0 ? connectTimeoutMs : Math.min(timeout, connectTimeoutMs),
          headersTimeout: timeout,
          bodyTimeout: timeout
        })
    ),
    (agent) => Effect.promise(() => agent.destroy())
  )
}

/**
 * The options that make an `openai` or `@anthropic-ai/sdk` client send over `pool`: undici's own
 * `fetch` (Node's built-in one bundles another undici, which refuses this one's pools) with the
 * pool as its dispatcher. Nothing without a pool: the SDK then uses the global `fetch`.
 *
 * Gotchas: the SDKs call `fetch` with a URL string and a JSON body; a `Request` object is sent by
 * its URL alone, and a body other than a string or bytes (a form upload) is refused.
 */
export const sdkFetch = (
  pool: Dispatcher | undefined
): { readonly fetch?: (input: string | URL | Request, init?: RequestInit) => Promise<Response> } =>
  pool === undefined ? {} : { fetch: (input, init) => fetchOver(pool, input, init) }

const fetchOver = (pool: Dispatcher, input: string | URL | Request, init: RequestInit | undefined) => {
  const body = init?.body ?? null
  if (body !== null && typeof body !== "string" && !(body instanceof Uint8Array)) {
    return Promise.reject(new TypeError("only string and byte bodies are sent over a provider's pool"))
  }
  return fetch(input instanceof Request ? input.url : input, {
    method: init?.method ?? "GET",
    headers: [...new Headers(init?.headers)],
    body,
    signal: init?.signal ?? null,
    dispatcher: pool
  })
}
