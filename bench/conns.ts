/**
 * The `conns` case of `npm run bench`: 10,000 concurrent requests to a slow upstream through one
 * PolyAgent process. A fake OpenAI upstream answers every request after 5 s; the shared harness's
 * `lib/conns.mjs` (`run.mjs --tests conns`) opens 10,000 keep-alive connections to the server, each
 * sending one `POST /v1/chat/completions` relayed to the fake, so all of them are in flight at the
 * gateway at once, and counts the answers within 60 s of silence per connection. The server runs
 * with the zero-config environment plus `OPENAI_API_KEY`/`OPENAI_BASE_URL`: the provider's pool is
 * its default size (`providers.openai.max_connections`), the figure this case is about. The
 * server's RSS is sampled every 100 ms by the harness.
 *
 * With `taskset`, the server on CPU 1, the fake and the load generator on CPU 0. The open-file
 * limit (`ulimit -n`) must cover one descriptor per client connection plus one per upstream
 * connection in the server: see the bench's README.
 */
import { randomBytes } from "node:crypto"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { type GatewayContext, MODEL, runHarness, startFake, startGateway } from "./gateway.ts"
import type { Server } from "./server.ts"

/** Concurrent requests, and how slow the upstream is. */
export const CONNS = 10_000
const UPSTREAM_LATENCY_MS = 5_000
/** Seconds of silence after which the client gives a connection up (the harness's `--conns-timeout`). */
const CLIENT_TIMEOUT_S = 60

/** What the `conns` case reports; folded into the bench's JSON line as `conns`. */
export interface ConnsFigures {
  readonly requests: number
  readonly upstream_latency_ms: number
  readonly client_timeout_s: number
  /** 2xx answers, and the rest (non-2xx, resets, timeouts, connections refused). */
  readonly ok: number | null
  readonly failed: number | null
  readonly connected: number | null
  readonly max_inflight: number | null
  /** From the first connection to the last answer. */
  readonly total_s: number | null
  /** The server's highest RSS during the run, and its RSS before it. */
  readonly rss_peak_mb: number | null
  readonly rss_idle_mb: number | null
  readonly errors: unknown
  readonly ulimit_n: string
}

type Json = Record<string, unknown>

const num = (j: Json, key: string): number | null => {
  const value = j[key]
  return typeof value === "number" && Number.isFinite(value) ? value : null
}

/** Runs the case; its children are stopped before it returns or throws. */
export async function connsCase(ctx: GatewayContext, ulimitN: string): Promise<ConnsFigures> {
  const children: Array<Server> = []
  const adopt = (child: Server): Server => {
    children.push(child)
    ctx.adopt(child)
    return child
  }
  try {
    const cpu0 = ctx.pinned ? 0 : null
    const cpu1 = ctx.pinned ? 1 : null
    const fake = await startFake(adopt, UPSTREAM_LATENCY_MS, cpu0)
    const adminKey = `pa_bench_${randomBytes(16).toString("hex")}`
    const gw = await startGateway(ctx, adopt, fake.port, adminKey, cpu1)
    ctx.log(`conns: fake upstream (5 s) on :${fake.port}, server on :${gw.port} (pid ${gw.server.pid})`)
    const bodyFile = join(ctx.tempDir(), "openai.json")
    writeFileSync(
      bodyFile,
      JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Say hello in one short sentence." }] })
    )
    const args = [
      ["--tests", "conns"],
      ["--url", `http://127.0.0.1:${gw.port}`],
      ["--path", "/v1/chat/completions"],
      ["--body", bodyFile],
      ["--conns", CONNS],
      ["--conns-timeout", CLIENT_TIMEOUT_S],
      ["--pid", gw.server.pid],
      ["--header", `Authorization: Bearer ${adminKey}`],
      ...(ctx.pinned ? [["--loadgen-cpu", 0]] : [])
    ].flat()
    ctx.log(`conns: ${CONNS} concurrent requests through the server (a minute at most)`)
    const j = await runHarness(ctx, adopt, "conns", (CLIENT_TIMEOUT_S + 60) * 1000, args)
    const runs = j["runs"]
    const first =
      typeof runs === "object" && runs !== null && Array.isArray((runs as Json)["conns"])
        ? ((runs as Json)["conns"] as ReadonlyArray<Json>)[0]
        : undefined
    return {
      requests: CONNS,
      upstream_latency_ms: UPSTREAM_LATENCY_MS,
      client_timeout_s: CLIENT_TIMEOUT_S,
      ok: num(j, "conns_ok"),
      failed: num(j, "conns_failed"),
      connected: num(j, "conns_connected"),
      max_inflight: num(j, "conns_max_inflight"),
      total_s: num(j, "conns_total_s"),
      rss_peak_mb: num(j, "conns_rss_peak_mb"),
      rss_idle_mb: num(j, "rss_idle_mb"),
      errors: first === undefined ? null : (first["err_codes"] ?? null),
      ulimit_n: ulimitN
    }
  } finally {
    await Promise.all(children.map((child) => child.stop()))
  }
}
