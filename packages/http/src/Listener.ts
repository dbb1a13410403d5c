/**
 * The server every request arrives on: `node:http`, or `node:http2` over TLS when `server.tls`
 * names a certificate (HTTP/2 for clients that negotiate it, HTTPS/1.1 for the others). It listens before anything else is built,
 * so a server whose storage is unreachable at start-up still answers: until the Effect HTTP
 * stack attaches to it, `GET /v1/health` answers 503 `{status: "down", components: {storage:
 * "down"}}` and every other request 503 `unavailable`. Once the stack is there, a request goes
 * to the fast lane first (`FastLane.ts`), which serves relayed completions itself and hands
 * everything else to the stack.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { createPrivateKey, X509Certificate } from "node:crypto"
import { readFileSync } from "node:fs"
import {
  IncomingMessage,
  type ServerOptions as HttpServerOptions,
  STATUS_CODES,
  Server,
  ServerResponse
} from "node:http"
import {
  createSecureServer,
  type Http2SecureServer,
  Http2ServerRequest,
  Http2ServerResponse,
  type SecureServerOptions
} from "node:http2"
import type { Duplex } from "node:stream"
import { Identifier } from "@polyagent/runtime"
import { healthDown } from "./Api.ts"
import * as ApiError from "./ApiError.ts"
import * as Edge from "./Edge.ts"
import * as RequestLog from "./RequestLog.ts"

/** Hands a request to the full stack (the server's own `request` event). */
export type Next = (request: IncomingMessage) => void

/** Serves a request beneath the stack and answers `true`, or answers `false` to leave it to the stack. */
export type Lane = (request: IncomingMessage, response: ServerResponse, next: Next) => boolean

const noLane: Lane = () => false

/** The answer of a server that is not ready yet, or no longer; answers what to log of it. */
const notReady = (
  request: IncomingMessage | Http2ServerRequest,
  response: ServerResponse | Http2ServerResponse,
  stopping: boolean
): string => {
  const requestId = Edge.requestIdOf(request.headers["x-request-id"])
  const message = stopping
    ? "the server is shutting down; send the request to another one"
    : "the server is starting: its storage is not reachable yet"
  const body =
    request.method === "GET" && request.url?.split("?", 1)[0] === "/v1/health"
      ? healthDown
      : ApiError.envelope("unavailable", message, requestId)
  const text = JSON.stringify(body)
  // The body is not read: close the connection rather than leave it half-consumed.
  const head = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "retry-after": "1",
    "x-request-id": requestId
  }
  if (response instanceof ServerResponse) {
    response.shouldKeepAlive = false
    response.writeHead(503, head).end(text)
  } else response.writeHead(503, head).end(text)
  return requestId
}

/** Limits on what clients send, enforced by Node before a request reaches the server. */
export interface Limits {
  /** Largest request head in bytes; larger ones are answered 431. */
  readonly maxHeaderSize: number
  /** A request's head must arrive within this many ms (else 408). */
  readonly headersTimeoutMs: number
  /** A whole request, head and body, must arrive within this many ms (else 408). */
  readonly receiveTimeoutMs: number
}

/** Node's own limits (16 KB heads), with timeouts that stop slow clients within seconds. */
export const defaultLimits: Limits = { maxHeaderSize: 16_384, headersTimeoutMs: 10_000, receiveTimeoutMs: 30_000 }

/** The answer to a request Node could not parse or did not receive in time, and its log status. */
const clientErrorAnswer = (code: string | undefined): { readonly status: number; readonly message: string } => {
  switch (code) {
    case "HPE_HEADER_OVERFLOW":
      return { status: 431, message: "the request's headers are too large" }
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { status: 408, message: "the request did not arrive in time" }
    default:
      return { status: 400, message: "the request is not valid HTTP/1.1" }
  }
}

/** The servers the listener can be: `node:http`, or `node:http2` over TLS (HTTP/1.1 too) when a certificate is configured. */
export type NodeServer = Server | Http2SecureServer

/** The members of either server kind that {@link install} wraps. */
interface Hooks {
  emit(event: string | symbol, ...args: Array<unknown>): boolean
  close(callback?: (error?: Error) => void): unknown
  on(event: "clientError", listener: (error: NodeJS.ErrnoException, socket: Duplex) => void): unknown
  on(event: "request", listener: () => void): unknown
  listenerCount(event: string): number
}

/** A server with the listener's behaviour, and the lane in front of its stack. */
export interface LaneServer {
  /** Serves requests before the stack (the fast lane), or leaves them to it; none by default. */
  lane: Lane
  /** The server itself, for `NodeHttpServer.layer`. */
  readonly server: NodeServer
}

/**
 * Gives `server` the listener's behaviour: its `request` events go to the {@link LaneServer.lane}
 * first (HTTP/1.x requests only: an HTTP/2 request goes to the stack), then to its listeners (the
 * Effect HTTP stack), and are answered 503 while it has none; Node's client errors are answered
 * with the envelope; `close` makes in-flight keep-alive connections close.
 */
const install = (server: NodeServer, run: (effect: Effect.Effect<void>) => void): LaneServer => {
  const hooks: Hooks = server
  const emit = hooks.emit.bind(hooks)
  const close = hooks.close.bind(hooks)
  /** Set once `close` is called: answers still in flight close their connection. */
  let stopping = false
  /** The HTTP/1 answers being written, to tell them to close their connection when the server stops. */
  const inFlight = new Set<ServerResponse>()
  const installed: LaneServer = { lane: noLane, server }

  // `node:http2` turns streams into `request` events only once a listener asks for them; this one
  // does from the start, so the server answers 503 before the stack attaches, on HTTP/2 too.
  hooks.on("request", () => {})
  const own = hooks.listenerCount("request")

  hooks.on("clientError", (error, socket) => {
    if (error.code === "ECONNRESET" || !socket.writable) {
      socket.destroy()
      return
    }
    const { status, message } = clientErrorAnswer(error.code)
    const requestId = Identifier.makeUnsafe("req")
    const body = JSON.stringify(ApiError.envelope("invalid_request", message, requestId))
    // Written raw, since there is no response object.
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\n` +
        "content-type: application/json\r\n" +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        `x-request-id: ${requestId}\r\n` +
        "connection: close\r\n\r\n" +
        body
    )
    run(
      Effect.flatMap(Clock.monotonicTimeNanos, (now) =>
        RequestLog.write({ method: "-", route: "-", status, startedAt: now, endedAt: now, requestId, facts: undefined })
      )
    )
  })

  // Node closes the idle keep-alive connections; the busy ones close after their answer
  // (`Connection: close`), so shutdown waits only for requests in flight, not for clients to hang
  // up (or for Node's 5 s keep-alive timeout). HTTP/2 sessions are closed by `NodeHttpServer`.
  hooks.close = (callback) => {
    stopping = true
    for (const response of inFlight) {
      if (response.headersSent) response.once("finish", () => response.socket?.end())
      else response.shouldKeepAlive = false
    }
    return close(callback)
  }

  hooks.emit = (event, ...args) => {
    if (event !== "request") return emit(event, ...args)
    const [request, response] = args
    if (!isRequest(request) || !isResponse(response)) return emit(event, ...args)
    if (response instanceof ServerResponse) {
      if (stopping) response.shouldKeepAlive = false
      else {
        inFlight.add(response)
        response.once("close", () => inFlight.delete(response))
      }
    }
    if (hooks.listenerCount("request") === own) {
      const { method = "GET", url = "/" } = request
      run(
        Effect.flatMap(Clock.monotonicTimeNanos, (startedAt) => {
          const requestId = notReady(request, response, stopping)
          return Effect.flatMap(Clock.monotonicTimeNanos, (endedAt) =>
            RequestLog.write({
              method,
              route: Edge.routeOf(method, url),
              status: 503,
              startedAt,
              endedAt,
              requestId,
              facts: undefined,
              expected: true
            })
          )
        })
      )
      return true
    }
    const dispatch = (replayed: IncomingMessage) => emit(event, replayed, response)
    if (request instanceof IncomingMessage && response instanceof ServerResponse) {
      return installed.lane(request, response, dispatch) || dispatch(request)
    }
    return emit(event, request, response)
  }
  return installed
}

const isRequest = (u: unknown): u is IncomingMessage | Http2ServerRequest =>
  u instanceof IncomingMessage || u instanceof Http2ServerRequest
const isResponse = (u: unknown): u is ServerResponse | Http2ServerResponse =>
  u instanceof ServerResponse || u instanceof Http2ServerResponse

/** `server.tls`'s certificate and key could not be used; the message names the key. */
export class TlsError extends Schema.TaggedError<TlsError>()("TlsError", { message: Schema.String }) {}

/** The PEM certificate and private key of `server.tls`, read from their files. */
export interface Tls {
  readonly cert: Buffer
  readonly key: Buffer
}

/** Reads `server.tls`'s files (relative to the working directory), checking each is what its key says. */
export const readTls = Effect.fn("Listener.readTls")(function* (paths: {
  readonly cert: string
  readonly key: string
}): Effect.fn.Return<Tls, TlsError> {
  const read = (key: "cert" | "key", check: (pem: Buffer) => void, what: string) =>
    Effect.try({
      try: () => readFileSync(paths[key]),
      catch: (error) =>
        new TlsError({
          message: `server.tls.${key}: cannot read ${paths[key]}: ${error instanceof Error ? error.message : "unknown error"}`
        })
    }).pipe(
      Effect.tap((pem) =>
        Effect.try({
          try: () => check(pem),
          catch: () => new TlsError({ message: `server.tls.${key}: ${paths[key]} is not ${what}` })
        })
      )
    )
  const cert = yield* read("cert", (pem) => new X509Certificate(pem), "a PEM certificate")
  const key = yield* read("key", (pem) => createPrivateKey(pem), "a PEM private key")
  return { cert, key }
})

/** A new server of the kind `tls` says, with `limits`; throws when the key does not match the certificate. */
const makeServer = (limits: Limits, tls: Tls | undefined): NodeServer => {
  const options: HttpServerOptions = {
    maxHeaderSize: limits.maxHeaderSize,
    // Node refuses a head timeout above the whole request's.
    headersTimeout: Math.min(limits.headersTimeoutMs, limits.receiveTimeoutMs),
    requestTimeout: limits.receiveTimeoutMs,
    // How often Node looks for requests past their timeouts (its default, 30 s, would let them linger).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, limits.headersTimeoutMs / 2))
  }
  if (tls === undefined) return new Server(options)
  // With `allowHTTP1`, Node applies the `node:http` options to HTTP/1.1 connections.
  const secure: SecureServerOptions & HttpServerOptions = { ...options, cert: tls.cert, key: tls.key, allowHTTP1: true }
  return createSecureServer(secure)
}

/**
 * The server instance, shared by the layer that makes it listen (`NodeHttpServer.layer`) and
 * the layers that serve on it once storage is ready (the stack, the fast lane).
 */
export class Listener extends Context.Service<Listener, LaneServer>()("@polyagent/http/Listener") {
  /**
   * A new server with `limits`, over TLS (HTTP/2 and HTTPS/1.1) when `tls` is given; its own
   * answers are logged with the logger of the context it is built in.
   */
  static layer(limits: Limits = defaultLimits, tls?: Tls): Layer.Layer<Listener, TlsError> {
    return Layer.effect(
      Listener,
      Effect.gen(function* () {
        const run = Effect.runForkWith(yield* Effect.context<never>())
        const server = yield* Effect.try({
          try: () => makeServer(limits, tls),
          catch: (error) =>
            new TlsError({
              message: `server.tls: ${error instanceof Error ? error.message : "the key does not match the certificate"}`
            })
        })
        return install(server, (effect) => {
          run(effect)
        })
      })
    )
  }
}
