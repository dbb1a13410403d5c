/**
 * The `node:http` server every request arrives on. It listens before anything else is built,
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
import { EventEmitter } from "node:events"
import { type IncomingMessage, STATUS_CODES, Server, type ServerResponse } from "node:http"
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
const notReady = (request: IncomingMessage, response: ServerResponse, stopping: boolean): string => {
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
  response.shouldKeepAlive = false
  response.writeHead(503, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "retry-after": "1",
    "x-request-id": requestId
  })
  response.end(text)
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

/**
 * A `node:http` server whose `request` events go to its {@link Lane} first, then to its
 * listeners (the Effect HTTP stack), and are answered 503 while it has none.
 */
export class LaneServer extends Server {
  lane: Lane = noLane
  /** Runs the request lines of the answers the server makes itself, with the server's logger. */
  private readonly run: (effect: Effect.Effect<void>) => void
  /** Set once `close` is called: answers still in flight close their connection. */
  private stopping = false
  /** The answers being written, to tell them to close their connection when the server stops. */
  private readonly inFlight = new Set<ServerResponse>()

  constructor(run: (effect: Effect.Effect<void>) => void, limits: Limits = defaultLimits) {
    super({
      maxHeaderSize: limits.maxHeaderSize,
      // Node refuses a head timeout above the whole request's.
      headersTimeout: Math.min(limits.headersTimeoutMs, limits.receiveTimeoutMs),
      requestTimeout: limits.receiveTimeoutMs,
      // How often Node looks for requests past their timeouts (its default, 30 s, would let them linger).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, limits.headersTimeoutMs / 2))
    })
    this.run = run
    this.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) => this.clientError(error, socket))
  }

  /**
   * A request Node refused before it became one (a head too large, a slow client, bad HTTP):
   * answered with the envelope and a new request id — written raw, since there is no response
   * object — and logged, instead of Node's bare answer or a reset socket.
   */
  private clientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    if (error.code === "ECONNRESET" || !socket.writable) {
      socket.destroy()
      return
    }
    const { status, message } = clientErrorAnswer(error.code)
    const requestId = Identifier.makeUnsafe("req")
    const body = JSON.stringify(ApiError.envelope("invalid_request", message, requestId))
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\n` +
        "content-type: application/json\r\n" +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        `x-request-id: ${requestId}\r\n` +
        "connection: close\r\n\r\n" +
        body
    )
    this.run(
      Effect.flatMap(Clock.monotonicTimeNanos, (now) =>
        RequestLog.write({ method: "-", route: "-", status, startedAt: now, endedAt: now, requestId, facts: undefined })
      )
    )
  }

  /**
   * Stops accepting connections. Node closes the idle keep-alive connections; the busy ones
   * close after their answer (`Connection: close`), so shutdown waits only for requests in
   * flight, not for clients to hang up (or for Node's 5 s keep-alive timeout).
   */
  override close(callback?: (error?: Error) => void): this {
    this.stopping = true
    for (const response of this.inFlight) {
      if (response.headersSent) response.once("finish", () => response.socket?.end())
      else response.shouldKeepAlive = false
    }
    return super.close(callback)
  }

  override emit(event: string | symbol, ...args: Array<unknown>): boolean {
    if (event !== "request") return EventEmitter.prototype.emit.call(this, event, ...args)
    const [request, response] = args as [IncomingMessage, ServerResponse]
    if (this.stopping) response.shouldKeepAlive = false
    else {
      this.inFlight.add(response)
      response.once("close", () => this.inFlight.delete(response))
    }
    if (this.listenerCount("request") === 0) {
      const { method = "GET", url = "/" } = request
      this.run(
        Effect.flatMap(Clock.monotonicTimeNanos, (startedAt) => {
          const requestId = notReady(request, response, this.stopping)
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
    const dispatch = (replayed: IncomingMessage) => EventEmitter.prototype.emit.call(this, event, replayed, response)
    return this.lane(request, response, dispatch) || dispatch(request)
  }
}

/**
 * The server instance, shared by the layer that makes it listen (`NodeHttpServer.layer`) and
 * the layers that serve on it once storage is ready (the stack, the fast lane).
 */
export class Listener extends Context.Service<Listener, LaneServer>()("@polyagent/http/Listener") {
  /** A new server with `limits`; its own answers are logged with the logger of the context it is built in. */
  static layer(limits: Limits = defaultLimits): Layer.Layer<Listener> {
    return Layer.effect(
      Listener,
      Effect.map(Effect.context<never>(), (context) => {
        const run = Effect.runForkWith(context)
        return new LaneServer((effect) => {
          run(effect)
        }, limits)
      })
    )
  }
}
