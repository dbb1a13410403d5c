/**
 * The gateway's hot path beneath the Effect HTTP stack. `POST /v1/chat/completions` to a model
 * whose provider speaks Chat Completions is a relay: check the key, check the body, send it
 * upstream, pass the answer back. On this machine the HttpApi stack with its middleware costs
 * about twice what the relay itself does per request (see bench/README.md), so the common
 * case is served here, straight on Node's request and response, by the same pieces the stack uses
 * (the key cache, the request schema, the model's relay, the error envelope).
 *
 * The lane takes a request only when it is that common case, and hands everything else to the
 * full stack unchanged, which answers it exactly as it would without the lane. Before the body
 * is read it needs: the route, a JSON `Content-Type`, a `Content-Length` within the body limit,
 * and a bearer key verified within `Authentication.keyCacheTtl` (the first request of a key, or
 * a bad one, goes to the stack, which verifies it and answers 401s). After reading it needs: JSON
 * that passes the request schema, naming a model with a relay (not an agent). A request that
 * fails these is replayed to the stack with the body it sent, so 400s, 404s, agents and other
 * providers are the stack's.
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { ModelCatalog } from "@polyagent/runtime"
import { type IncomingMessage, Server, type ServerResponse } from "node:http"
import { EventEmitter } from "node:events"
import { Readable } from "node:stream"
import * as Authentication from "./Authentication.ts"
import * as ChatCompletions from "./ChatCompletions.ts"
import * as Edge from "./Edge.ts"
import * as RelayResponse from "./RelayResponse.ts"

const PATH = "/v1/chat/completions"
const BEARER = "Bearer "

/** Hands a request to the full stack (the server's own `request` event). */
type Next = (request: IncomingMessage) => void

/**
 * A `node:http` server whose `request` events for the relay go through the lane first; the
 * others, and those the lane declines, reach the listeners (the Effect HTTP stack) as usual.
 */
class LaneServer extends Server {
  lane: (request: IncomingMessage, response: ServerResponse, next: Next) => boolean = () => false

  override emit(event: string | symbol, ...args: Array<unknown>): boolean {
    const dispatch = (...to: Array<unknown>) => EventEmitter.prototype.emit.call(this, event, ...to)
    if (event !== "request") return dispatch(...args)
    const [request, response] = args as [IncomingMessage, ServerResponse]
    return this.lane(request, response, (replayed) => dispatch(replayed, response)) || dispatch(...args)
  }
}

/** What the lane needs to know of the server's settings. */
export interface Options {
  readonly bodyLimit: number
}

/** `createServer` for `NodeHttpServer.layer`, with the lane in front of the stack. */
export const make = (options: Options) =>
  Effect.gen(function* () {
    const catalog = yield* ModelCatalog.ModelCatalog
    const keys = yield* Authentication.KeyCache
    // The relay's Effects run with the server's services (its logger, above all).
    const context = yield* Effect.context<never>()
    const run = Effect.runForkWith(context)

    const lane = (request: IncomingMessage, response: ServerResponse, next: Next): boolean => {
      if (request.method !== "POST" || request.url !== PATH) return false
      const headers = request.headers
      const length = Number(headers["content-length"])
      if (!(length <= options.bodyLimit) || !(headers["content-type"] ?? "").includes("json")) return false
      const authorization = headers.authorization
      if (authorization === undefined || !authorization.startsWith(BEARER)) return false
      const key = authorization.slice(BEARER.length)
      if (keys.cached(Authentication.hashKey(key), Date.now()) === undefined) return false
      readBody(request, (body) => {
        const relayed = relayOf(body)
        if (relayed === undefined) return next(replay(request, body))
        const requestId = Edge.requestIdOf(headers["x-request-id"])
        response.setHeader("x-request-id", requestId)
        const fiber = run(
          relayed.stream
            ? RelayResponse.stream(response, relayed.relay.stream(relayed.body, requestId), requestId)
            : RelayResponse.complete(response, relayed.relay.complete(relayed.body, requestId), requestId)
        )
        // A client that goes away interrupts the call, which aborts the upstream request.
        response.once("close", () => {
          if (!response.writableEnded) fiber.interruptUnsafe()
        })
      })
      return true
    }

    /** The relay and body of a request the lane serves; `undefined` for the stack's. */
    const relayOf = (text: Buffer) => {
      const parsed = ChatCompletions.parseRequest(text.toString("utf8"))
      if (Result.isFailure(parsed)) return undefined
      const { body, request } = parsed.success
      if (request.model.startsWith(ChatCompletions.agentPrefix)) return undefined
      const relay = catalog.find(request.model)?.relay
      return relay === undefined ? undefined : { relay, body, stream: request.stream === true }
    }

    return () => {
      const server = new LaneServer()
      server.lane = lane
      return server
    }
  })

/** The whole body (its length was checked against the limit already). */
const readBody = (request: IncomingMessage, then: (body: Buffer) => void): void => {
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.once("end", () => then(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)))
}

/**
 * The request again, its body read from `body`: what the stack reads of a request (method, URL,
 * headers, socket, HTTP version) is the original's.
 */
const replay = (request: IncomingMessage, body: Buffer): IncomingMessage =>
  Object.assign(Readable.from([body]), {
    method: request.method,
    url: request.url,
    headers: request.headers,
    rawHeaders: request.rawHeaders,
    httpVersion: request.httpVersion,
    httpVersionMajor: request.httpVersionMajor,
    httpVersionMinor: request.httpVersionMinor,
    socket: request.socket,
    connection: request.socket,
    complete: true,
    trailers: {},
    rawTrailers: []
  }) as unknown as IncomingMessage
