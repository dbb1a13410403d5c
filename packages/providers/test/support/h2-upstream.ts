/**
 * A Chat Completions upstream that speaks HTTP/2, for the tests of `http2: true`: cleartext with
 * prior knowledge (h2c), or TLS with ALPN (h2, and HTTP/1.1 for clients that do not offer h2).
 * It records the HTTP version of each request and counts the connections (HTTP/2 sessions or
 * HTTP/1.1 sockets) it accepted. TLS uses a self-signed certificate for 127.0.0.1 made for these
 * tests only (P-256, valid until 2126), trusted for the test's duration with
 * `tls.setDefaultCACertificates`.
 */
import { Effect } from "effect"
import { createSecureServer, createServer, type Http2ServerRequest, type Http2ServerResponse } from "node:http2"
import type { AddressInfo } from "node:net"
import * as Tls from "node:tls"

const key = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgtncMnACXS6Zg+H2G
vXmhqtMj9HmBIR5iTMGVuRr39tihRANCAAQsmvjzcE7aWjeXsTbcXR86wcZlOTAA
axid+bfkSxwPin58BZr+yxKWVU0IjCRuJBRs4JMwAyfZl8SxdC/x1cMI
-----END PRIVATE KEY-----`

const cert = `-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUHtbrcOrGuEmL2nKT0JlC987vzMEwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMzE2NDk1MFoYDzIxMjYxMTA5
MTY0OTUwWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQsmvjzcE7aWjeXsTbcXR86wcZlOTAAaxid+bfkSxwPin58BZr+yxKW
VU0IjCRuJBRs4JMwAyfZl8SxdC/x1cMIo28wbTAdBgNVHQ4EFgQU4ZK7W9NZ/hDa
F+ZvJvVCuNOzT/IwHwYDVR0jBBgwFoAU4ZK7W9NZ/hDaF+ZvJvVCuNOzT/IwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwCgYIKoZI
zj0EAwIDSAAwRQIhAKTSzIZniTyZu+xxCCmitbSu1Z4xk8joWFrH6fx6Qu5QAiAu
cYqQB+7ER8s64i0dNnAhOinAVUl+GtXUWHLzcnnbRA==
-----END CERTIFICATE-----`

/** A running upstream. */
export interface H2Upstream {
  readonly url: string
  /** The HTTP version of each request, in order: `"2.0"` or `"1.1"`. */
  readonly versions: ReadonlyArray<string>
  /** HTTP/2 sessions plus HTTP/1.1 sockets accepted. */
  readonly connections: () => number
}

/** The answer's text, non-streamed and streamed (in three chunks). */
export const h2Text = "Hello over HTTP/2"

const completion = JSON.stringify({
  id: "chatcmpl-h2",
  object: "chat.completion",
  created: 1,
  model: "gpt-4o-mini",
  choices: [{ index: 0, message: { role: "assistant", content: h2Text }, finish_reason: "stop" }],
  usage: { prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 }
})

const chunk = (content: string, finish: string | null) =>
  `data: ${JSON.stringify({
    id: "chatcmpl-h2",
    object: "chat.completion.chunk",
    created: 1,
    model: "gpt-4o-mini",
    choices: [{ index: 0, delta: { content }, finish_reason: finish }]
  })}\n\n`

const answer = (versions: Array<string>) => (req: Http2ServerRequest, res: Http2ServerResponse) => {
  versions.push(req.httpVersion)
  const parts: Array<Buffer> = []
  req.on("data", (part: Buffer) => parts.push(part))
  req.on("end", () => {
    const body: unknown = JSON.parse(Buffer.concat(parts).toString("utf8") || "{}")
    const stream = typeof body === "object" && body !== null && "stream" in body && body.stream === true
    if (!stream) {
      res.writeHead(200, { "content-type": "application/json" }).end(completion)
      return
    }
    res.writeHead(200, { "content-type": "text/event-stream" })
    res.write(chunk("Hello ", null))
    res.write(chunk("over ", null))
    res.write(chunk("HTTP/2", "stop"))
    res.end("data: [DONE]\n\n")
  })
}

/** An upstream on 127.0.0.1 for the test's scope: `tls` for h2 over TLS (and HTTP/1.1), else h2c. */
export const h2Upstream = (tls: boolean) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const versions: Array<string> = []
      let connections = 0
      const server = tls
        ? createSecureServer({ key, cert, allowHTTP1: true }, answer(versions))
        : createServer(answer(versions))
      server.on("session", () => connections++)
      if (tls)
        server.on("secureConnection", (socket: Tls.TLSSocket) => {
          if (socket.alpnProtocol !== "h2") connections++
        })
      const trusted = Tls.getCACertificates("default")
      if (tls) Tls.setDefaultCACertificates([...trusted, cert])
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const { port } = server.address() as AddressInfo
      const upstream: H2Upstream = {
        url: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
        versions,
        connections: () => connections
      }
      return { upstream, server, trusted }
    }),
    ({ server, trusted }) =>
      Effect.promise(() => {
        if (tls) Tls.setDefaultCACertificates(trusted)
        return new Promise<void>((resolve) => server.close(() => resolve()))
      })
  ).pipe(Effect.map(({ upstream }) => upstream))
