/**
 * A TCP proxy for fault tests: put it in front of PostgreSQL (or any server) and make the
 * server behind it disappear in the ways real networks do.
 *
 * - `pass`: forwards both ways (the start state);
 * - `refuse`: stops listening, so new connections are refused, and cuts the open ones;
 * - `cut`: resets every open connection, but keeps accepting new ones;
 * - `freeze`: keeps every connection open and accepts new ones, but forwards nothing until the
 *   next `pass` (a server stopped with SIGSTOP, a network that stopped delivering): only
 *   timeouts notice. What was sent meanwhile arrives after, as TCP would deliver it.
 */
import { once } from "node:events"
import { type AddressInfo, createConnection, createServer, type Server, type Socket } from "node:net"

export type Mode = "pass" | "refuse" | "cut" | "freeze"

interface Pair {
  readonly client: Socket
  readonly upstream: Socket
  /** What arrived while frozen, to be delivered in order when traffic passes again. */
  readonly held: Array<readonly [Socket, Buffer]>
}

export class TcpProxy {
  private server: Server | undefined
  private readonly pairs = new Set<Pair>()
  private frozen = false
  private readonly target: { readonly host: string; readonly port: number }
  readonly port: number

  private constructor(target: { readonly host: string; readonly port: number }, port: number) {
    this.target = target
    this.port = port
  }

  /** A proxy on a free port of 127.0.0.1 in front of `target`, passing traffic. */
  static async start(target: { readonly host: string; readonly port: number }): Promise<TcpProxy> {
    const probe = createServer()
    probe.listen(0, "127.0.0.1")
    await once(probe, "listening")
    const port = (probe.address() as AddressInfo).port
    probe.close()
    await once(probe, "close")
    const proxy = new TcpProxy(target, port)
    await proxy.listen()
    return proxy
  }

  private async listen(): Promise<void> {
    const server = createServer((client) => this.accept(client))
    server.listen(this.port, "127.0.0.1")
    await once(server, "listening")
    this.server = server
  }

  private accept(client: Socket): void {
    const upstream = createConnection(this.target)
    const pair: Pair = { client, upstream, held: [] }
    this.pairs.add(pair)
    const forget = () => {
      this.pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on("error", forget).on("close", forget)
    upstream.on("error", forget).on("close", forget)
    const forward = (to: Socket) => (chunk: Buffer) => {
      if (this.frozen) pair.held.push([to, chunk])
      else to.write(chunk)
    }
    client.on("data", forward(upstream))
    upstream.on("data", forward(client))
  }

  private cutAll(): void {
    for (const { client, upstream } of this.pairs) {
      client.resetAndDestroy()
      upstream.destroy()
    }
    this.pairs.clear()
  }

  /** Switches the proxy to `mode` (see the module's comment). */
  async set(mode: Mode): Promise<void> {
    this.frozen = mode === "freeze"
    if (!this.frozen) {
      for (const { held } of this.pairs) for (const [to, chunk] of held.splice(0)) to.write(chunk)
    }
    if (mode === "cut" || mode === "refuse") this.cutAll()
    if (mode === "refuse" && this.server !== undefined) {
      const server = this.server
      this.server = undefined
      server.close()
      await once(server, "close")
    }
    if ((mode === "pass" || mode === "cut" || mode === "freeze") && this.server === undefined) await this.listen()
  }

  /** Stops the proxy and cuts every connection. */
  async close(): Promise<void> {
    await this.set("refuse")
  }
}
