/**
 * The floor of the gateway case: `harness/bare-proxy.mjs` (the team's shared harness), the least
 * any Node gateway can do — `node:http` in, a keep-alive agent out, bytes piped, no auth and no
 * validation. It runs on the server's CPU in front of the same fakes, and the harness measures it
 * in the same run as the fakes directly and PolyAgent, so PolyAgent's figures read as a ratio to it
 * (throughput) and as what it adds over it (latency).
 */
import { join, resolve } from "node:path"
import type { LatencySide, ThroughputSide } from "./gateway.ts"
import { freePort, type Server, startServer, waitHealthy } from "./server.ts"

const BARE_PROXY_MJS = join(resolve(import.meta.dirname, "harness"), "bare-proxy.mjs")
const STARTUP_TIMEOUT_MS = 10_000

/** A bare proxy in front of the fake upstream at `upstreamPort`, pinned to `cpu` when not `null`. */
export async function startFloor(
  adopt: (child: Server) => Server,
  upstreamPort: number,
  cpu: number | null
): Promise<{ port: number; server: Server }> {
  const port = await freePort()
  const argv = [process.execPath, BARE_PROXY_MJS, "--port", String(port)]
  argv.push("--upstream", `http://127.0.0.1:${upstreamPort}`)
  const server = adopt(
    startServer({ command: undefined, argv, cwd: resolve(import.meta.dirname), env: process.env, cpu })
  )
  // The proxy passes every path on: the fake's `/healthz` answers through it once both are up.
  await waitHealthy(server, port, STARTUP_TIMEOUT_MS, "/healthz")
  return { port, server }
}

/** What PolyAgent adds over the floor at one rate, and the floor's own figures. */
export interface FloorLatency {
  readonly floor: LatencySide
  readonly added_over_floor_p50_ms: number | null
  readonly added_over_floor_p99_ms: number | null
}

/** The floor's max throughput, and PolyAgent's as a fraction of it. */
export interface FloorThroughput {
  readonly floor: ThroughputSide
  /** gateway rps / floor rps: 1 means PolyAgent costs no more than piping bytes. */
  readonly ratio_to_floor: number | null
}

const round2 = (x: number): number => Math.round(x * 100) / 100

export const floorLatency = (floor: LatencySide, gateway: LatencySide): FloorLatency => ({
  floor,
  added_over_floor_p50_ms:
    floor.p50_ms === null || gateway.p50_ms === null ? null : round2(gateway.p50_ms - floor.p50_ms),
  added_over_floor_p99_ms:
    floor.p99_ms === null || gateway.p99_ms === null ? null : round2(gateway.p99_ms - floor.p99_ms)
})

export const floorThroughput = (floor: ThroughputSide, gateway: ThroughputSide): FloorThroughput => ({
  floor,
  ratio_to_floor:
    floor.rps === null || gateway.rps === null || floor.rps === 0
      ? null
      : Math.round((gateway.rps / floor.rps) * 1000) / 1000
})
