/**
 * The human-readable part of the bench's output: one table for the request/response scenarios,
 * one for streaming, one line for the server's memory, then the gateway case (latency, throughput
 * and streaming, direct against through the gateway, the aims, and the harness's `compare.mjs`
 * table). The JSON line after it is the contract; this is for people.
 */
import type { ConnsFigures } from "./conns.ts"
import type { GatewayFigures } from "./gateway.ts"
import type { ChatFigures, SessionFigures, StreamFigures } from "./scenarios.ts"

/** Everything the bench measured; `{ error }` for a scenario that could not run, `null` for one skipped. */
export interface Results {
  /** The scenarios that were run (`--only`, `--skip`). */
  readonly scenarios: ReadonlyArray<string>
  readonly chat_new: ChatFigures | Failed | null
  readonly chat_session: SessionFigures | Failed | null
  readonly stream: StreamFigures | Failed | null
  readonly gateway: GatewayFigures | Failed | null
  /** 10,000 concurrent requests to a 5 s upstream (`conns.ts`). */
  readonly conns: ConnsFigures | Failed | null
  /** The zero-config server's memory; all `null` when none of its scenarios ran. */
  readonly rss_mb: {
    readonly idle: number | null
    readonly peak: number | null
    readonly end: number | null
    readonly hwm: number | null
  }
  readonly server: string
  /** Where the zero-config server stored: the embedded SQLite database, or PostgreSQL (`--postgres`). */
  readonly storage: "sqlite" | "postgresql"
  /** Server processes sharing the port (`--workers`, `server.workers`). */
  readonly workers: number
  readonly pinned: { readonly server_cpu: number; readonly loadgen_cpu: number } | null
  readonly warmup_s: number
  readonly duration_s: number
  /** Until the zero-config server answered `/v1/health`; `null` when none of its scenarios ran. */
  readonly startup_ms: number | null
  readonly node: string
  readonly cpus: number
}

export interface Failed {
  readonly error: string
}

const isFailed = (x: object): x is Failed => "error" in x

export function renderReport(results: Results, gatewayTable: string): string {
  const pinning = results.pinned
    ? `server on CPU ${results.pinned.server_cpu}, load generator on CPU ${results.pinned.loadgen_cpu}`
    : "no CPU pinning"
  const heading =
    `PolyAgent bench: ${results.server}\n` +
    `node ${results.node}, ${results.cpus} CPUs, ${pinning}; scenarios: ${results.scenarios.join(", ")}`
  const local = results.chat_new !== null || results.chat_session !== null || results.stream !== null
  const gateway = results.gateway === null ? [] : ["", renderGateway(results.gateway, gatewayTable)]
  const conns = results.conns === null ? [] : ["", renderConns(results.conns)]
  return [heading, ...(local ? ["", renderLocal(results)] : []), ...gateway, ...conns].join("\n")
}

/** The `conns` case: how many of 10,000 concurrent slow requests were served, and the memory it took. */
function renderConns(figures: ConnsFigures | Failed): string {
  if (isFailed(figures)) return `conns case failed: ${figures.error}`
  return [
    `Concurrency: ${figures.requests} concurrent POST /v1/chat/completions to a ${figures.upstream_latency_ms / 1000} s ` +
      `upstream, one server (ulimit -n ${figures.ulimit_n}; client gives up after ${figures.client_timeout_s} s of silence)`,
    `served ${fmt(figures.ok, 0)}, failed ${fmt(figures.failed, 0)} (${JSON.stringify(figures.errors)}); ` +
      `max in flight ${fmt(figures.max_inflight, 0)}; all answered in ${fmt(figures.total_s)} s; ` +
      `server RSS idle ${fmt(figures.rss_idle_mb)} MB, peak ${fmt(figures.rss_peak_mb)} MB (aim < 512)`
  ].join("\n")
}

function renderLocal(results: Results): string {
  const timing =
    `zero-config server (${results.storage === "sqlite" ? "embedded SQLite" : "PostgreSQL"}` +
    `${results.workers > 1 ? `, ${results.workers} workers` : ""}): ` +
    `${results.warmup_s} s warm-up + ${results.duration_s} s per scenario; ` +
    `ready in ${fmt(results.startup_ms, 0)} ms`
  const chat = renderTable(
    [
      "POST /v1/chat",
      "conns",
      "req/s",
      "p50 ms",
      "p90 ms",
      "p99 ms",
      "max ms",
      "2xx",
      "errors",
      "RSS peak MB",
      "CPU ms/req",
      "CPU %"
    ],
    [chatRow("new session each", results.chat_new), chatRow("continuing sessions", results.chat_session)]
  )
  const stream = renderTable(
    [
      "POST /v1/chat/stream (ms)",
      "conns",
      "streams/s",
      "TTFB p50",
      "TTFB p99",
      "done p50",
      "done p99",
      "done max",
      "done",
      "incomplete",
      "errors",
      "RSS peak MB",
      "CPU ms/stream",
      "CPU %"
    ],
    [streamRow("new session each", results.stream)]
  )
  const { idle, peak, end, hwm } = results.rss_mb
  const memory = `server RSS MB: idle ${fmt(idle)}, peak under load ${fmt(peak)}, end ${fmt(end)} (VmHWM ${fmt(hwm)})`
  const notes = [memory, sessionNote(results.chat_session), errorsNote(results)].filter((line) => line !== "")
  return [timing, "", chat, "", stream, "", ...notes].join("\n")
}

function chatRow(label: string, figures: ChatFigures | Failed | null): Array<string> {
  if (figures === null) return [label, "skipped"]
  if (isFailed(figures)) return [label, `failed: ${figures.error}`]
  const f = figures
  return [
    label,
    String(f.connections),
    fmt(f.rps),
    fmt(f.p50_ms, 2),
    fmt(f.p90_ms, 2),
    fmt(f.p99_ms, 2),
    fmt(f.max_ms, 2),
    String(f.requests),
    String(f.errors),
    fmt(f.rss_peak_mb),
    fmt(f.cpu_ms_per_req, 3),
    fmt(f.server_cpu_pct, 0)
  ]
}

function streamRow(label: string, figures: StreamFigures | Failed | null): Array<string> {
  if (figures === null) return [label, "skipped"]
  if (isFailed(figures)) return [label, `failed: ${figures.error}`]
  const f = figures
  return [
    label,
    String(f.connections),
    fmt(f.streams_per_s),
    fmt(f.ttfb_p50_ms, 2),
    fmt(f.ttfb_p99_ms, 2),
    fmt(f.done_p50_ms, 2),
    fmt(f.done_p99_ms, 2),
    fmt(f.done_max_ms, 2),
    String(f.streams),
    String(f.incomplete),
    String(f.errors),
    fmt(f.rss_peak_mb),
    fmt(f.cpu_ms_per_stream, 3),
    fmt(f.server_cpu_pct, 0)
  ]
}

const sessionNote = (figures: SessionFigures | Failed | null): string =>
  figures === null || isFailed(figures)
    ? ""
    : `continuing sessions: ${figures.sessions} sessions, ~${figures.turns_per_session} turns each at the end`

function errorsNote(results: Results): string {
  const named: ReadonlyArray<readonly [string, ChatFigures | StreamFigures | Failed | null]> = [
    ["chat new", results.chat_new],
    ["chat session", results.chat_session],
    ["stream", results.stream]
  ]
  const parts = named.flatMap(([name, figures]) =>
    figures === null || isFailed(figures) || figures.errors === 0 ? [] : [`${name} ${JSON.stringify(figures.statuses)}`]
  )
  const firstError = results.stream === null || isFailed(results.stream) ? null : results.stream.first_error_event
  const detail = firstError === null ? "" : `\nfirst stream event: error: ${firstError}`
  return parts.length === 0 ? "" : `answers by status (errors present): ${parts.join("; ")}${detail}`
}

/** The gateway case: what the gateway adds over calling the fake upstream directly. */
function renderGateway(figures: GatewayFigures | Failed, compareTable: string): string {
  if (isFailed(figures)) return `gateway case failed: ${figures.error}`
  const { setup, throughput, stream, errors } = figures
  const heading =
    `Gateway: POST ${setup.path} (${setup.model}) -> openai provider -> fake upstream, against the fake directly\n` +
    `upstream ${setup.upstream_latency_ms} ms to first byte, streams of ${setup.stream_chunks} chunks ` +
    `${setup.chunk_interval_ms} ms apart; throughput with a ${setup.throughput_upstream_latency_ms} ms upstream\n` +
    `${setup.pinning}; servers ready in ${fmt(figures.startup_ms, 0)} ms; ${fmt(figures.elapsed_s)} s in all`
  const latency = renderTable(
    [
      `open loop, ${setup.latency_duration_s} s per rate (ms)`,
      "direct p50",
      "floor p50",
      "gateway p50",
      "added p50",
      "over floor",
      "direct p99",
      "floor p99",
      "gateway p99",
      "added p99",
      "over floor",
      "achieved rps d/f/g",
      "errors d/f/g"
    ],
    figures.latency.map((row) => [
      `@${row.rate_rps} rps`,
      fmt(row.direct.p50_ms, 2),
      fmt(row.floor.p50_ms, 2),
      fmt(row.gateway.p50_ms, 2),
      signed(row.added_p50_ms),
      signed(row.added_over_floor_p50_ms),
      fmt(row.direct.p99_ms, 2),
      fmt(row.floor.p99_ms, 2),
      fmt(row.gateway.p99_ms, 2),
      signed(row.added_p99_ms),
      signed(row.added_over_floor_p99_ms),
      `${fmt(row.direct.achieved_rps)} / ${fmt(row.floor.achieved_rps)} / ${fmt(row.gateway.achieved_rps)}`,
      `${fmt(row.direct.errors, 0)} / ${fmt(row.floor.errors, 0)} / ${fmt(row.gateway.errors, 0)}`
    ])
  )
  const tput = renderTable(
    [`max throughput (${throughput.tool}, ${throughput.connections} conns)`, "req/s", "p50 ms", "p99 ms", "errors"],
    [
      ["direct (fake alone)", ...tputCells(throughput.direct)],
      ["floor (bare-proxy.mjs)", ...tputCells(throughput.floor)],
      [
        `gateway (${fmt(throughput.ratio_to_floor, 3)}x floor, ${fmt(throughput.ratio, 3)}x direct)`,
        ...tputCells(throughput.gateway)
      ]
    ]
  )
  const streams = renderTable(
    [
      `stream x${stream.concurrency}, ${stream.rounds} rounds (ms)`,
      "direct p50",
      "gateway p50",
      "added p50",
      "direct p99",
      "gateway p99",
      "added p99"
    ],
    [
      streamDeltaRow(
        "TTFB (response headers)",
        stream.direct.ttfb_p50_ms,
        stream.gateway.ttfb_p50_ms,
        stream.added_ttfb_p50_ms,
        stream.direct.ttfb_p99_ms,
        stream.gateway.ttfb_p99_ms,
        stream.added_ttfb_p99_ms
      ),
      streamDeltaRow(
        "first data: event",
        stream.direct.first_data_p50_ms,
        stream.gateway.first_data_p50_ms,
        stream.added_first_data_p50_ms,
        stream.direct.first_data_p99_ms,
        stream.gateway.first_data_p99_ms,
        stream.added_first_data_p99_ms
      ),
      streamDeltaRow(
        "whole stream ([DONE])",
        stream.direct.total_p50_ms,
        stream.gateway.total_p50_ms,
        stream.added_total_p50_ms,
        stream.direct.total_p99_ms,
        stream.gateway.total_p99_ms,
        stream.added_total_p99_ms
      )
    ]
  )
  const aims = renderTable(
    ["aim", "measured", "aim", "met"],
    figures.aims.map((a) => [a.figure, fmt(a.value, 2), a.aim, a.met === null ? "-" : a.met ? "yes" : "NO"])
  )
  const rss = figures.rss_mb
  const notes = [
    `stream incomplete/errors: direct ${fmt(stream.direct.incomplete, 0)}, gateway ${fmt(stream.gateway.incomplete, 0)}`,
    `failed requests: direct ${errors.direct}, gateway ${errors.gateway}; ` +
      `gateway latency-test statuses (warm-up included) ${JSON.stringify(errors.gateway_latency_statuses)}`,
    ...Object.entries(errors.harness).map(([test, message]) => `run.mjs ${test} failed: ${message}`),
    ...(errors.first_error === null
      ? []
      : [
          `first error: ${errors.first_error.target}${errors.first_error.stream ? " (stream)" : ""} answered ` +
            `${errors.first_error.status}: ${errors.first_error.error_body ?? ""}`
        ]),
    `gateway RSS MB: latency/stream server idle ${fmt(rss.latency_stream_server.idle)}, peak ${fmt(rss.latency_stream_server.peak)}; ` +
      `throughput server idle ${fmt(rss.throughput_server.idle)}, peak ${fmt(rss.throughput_server.peak)}`,
    `host load average (1 min) start -> end: direct ${figures.loadavg.direct.join(" -> ")}, gateway ${figures.loadavg.gateway.join(" -> ")}`
  ]
  const compare = compareTable === "" ? [] : ["", "harness compare.mjs (direct vs gateway):", compareTable]
  return [heading, "", latency, "", tput, "", streams, "", aims, "", ...notes, ...compare].join("\n")
}

function tputCells(side: GatewayFigures["throughput"]["direct"]): Array<string> {
  return [fmt(side.rps, 0), fmt(side.p50_ms, 2), fmt(side.p99_ms, 2), fmt(side.errors, 0)]
}

function streamDeltaRow(
  label: string,
  direct50: number | null,
  gateway50: number | null,
  added50: number | null,
  direct99: number | null,
  gateway99: number | null,
  added99: number | null
): Array<string> {
  return [
    label,
    fmt(direct50, 2),
    fmt(gateway50, 2),
    signed(added50),
    fmt(direct99, 2),
    fmt(gateway99, 2),
    signed(added99)
  ]
}

const signed = (x: number | null): string => (x === null ? "-" : `${x >= 0 ? "+" : ""}${x.toFixed(2)}`)

/** Left-aligned first column, right-aligned figures; a short row (a failure) runs on unpadded. */
export function renderTable(header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.filter((r) => r.length === header.length).map((r) => (r[i] ?? "").length))
  )
  const line = (cells: ReadonlyArray<string>) =>
    cells.length < header.length
      ? cells.join("  ")
      : cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ")
  return [line(header), line(header.map((_, i) => "-".repeat(widths[i] ?? 0))), ...rows.map(line)].join("\n")
}

const fmt = (x: number | null, digits = 1): string => (x === null ? "-" : x.toFixed(digits))
