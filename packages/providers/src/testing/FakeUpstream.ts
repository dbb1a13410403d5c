/**
 * A fake model provider for tests: a plain `node:http` server on a free port of 127.0.0.1
 * that routes requests to wire-format handlers (OpenAI Chat Completions, Anthropic
 * Messages) and records every request, so tests can assert what went upstream (headers,
 * bodies) and when the client went away (an aborted request closes its connection).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

/** One request the fake received. */
export interface Received {
  readonly method: string
  readonly path: string
  readonly headers: IncomingMessage["headers"]
  readonly body: unknown
  /** Set when the client closed the connection before the answer ended. */
  closedEarlyAt?: number
  readonly receivedAt: number
}

/** Answers one request; `body` is the parsed JSON body (or `undefined`). */
export type Handler = (request: Received, response: ServerResponse) => void

/** A running fake. */
export interface FakeUpstream {
  /** e.g. `http://127.0.0.1:41234` */
  readonly url: string
  readonly received: ReadonlyArray<Received>
  /** Resolves when the `index`-th request's connection closes before its answer ended. */
  readonly closedEarly: (index: number, timeoutMs: number) => Promise<number>
  /** The TCP connections accepted so far, and those still open (keep-alive reuse, pools closing). */
  readonly connections: () => { readonly accepted: number; readonly open: number }
  readonly close: () => Promise<void>
}

/** Starts a fake with `routes` keyed `"POST /v1/chat/completions"`. Unknown routes answer 404. */
export const start = async (routes: Readonly<Record<string, Handler>>): Promise<FakeUpstream> => {
  const received: Array<Received> = []
  const sockets = new Set<import("node:net").Socket>()
  const server: Server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8")
      let body: unknown
      try {
        body = text.length === 0 ? undefined : JSON.parse(text)
      } catch {
        body = text
      }
      const path = (req.url ?? "/").split("?", 1)[0] ?? "/"
      const record: Received = { method: req.method ?? "GET", path, headers: req.headers, body, receivedAt: Date.now() }
      received.push(record)
      res.on("close", () => {
        if (!res.writableFinished) record.closedEarlyAt = Date.now()
      })
      const handler = routes[`${record.method} ${path}`]
      if (handler === undefined) {
        res
          .writeHead(404, { "content-type": "application/json" })
          .end(JSON.stringify({ error: { message: "no route" } }))
        return
      }
      handler(record, res)
    })
  })
  let accepted = 0
  server.on("connection", (socket) => {
    accepted++
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    closedEarly: async (index, timeoutMs) => {
      const deadline = Date.now() + timeoutMs
      while (Date.now() < deadline) {
        const at = received[index]?.closedEarlyAt
        if (at !== undefined) return at
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      throw new Error(`request ${index} was not closed by the client within ${timeoutMs} ms`)
    },
    connections: () => ({ accepted, open: sockets.size }),
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** Writes one server-sent event (`event` omitted when undefined). */
export const writeSse = (response: ServerResponse, data: string, event?: string): void => {
  response.write(`${event === undefined ? "" : `event: ${event}\n`}data: ${data}\n\n`)
}
