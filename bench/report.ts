/**
 * The human-readable part of the bench's output: one table for the request/response scenarios,
 * one for streaming, one line for the server's memory. The JSON line after it is the contract;
 * this is for people.
 */
import type { ChatFigures, SessionFigures, StreamFigures } from "./scenarios.ts"

/** Everything the bench measured; `{ error }` for a scenario that could not run. */
export interface Results {
  readonly chat_new: ChatFigures | Failed
  readonly chat_session: SessionFigures | Failed
  readonly stream: StreamFigures | Failed
  readonly rss_mb: {
    readonly idle: number | null
    readonly peak: number | null
    readonly end: number | null
    readonly hwm: number | null
  }
  readonly server: string
  readonly pinned: { readonly server_cpu: number; readonly loadgen_cpu: number } | null
  readonly warmup_s: number
  readonly duration_s: number
  readonly startup_ms: number
  readonly node: string
  readonly cpus: number
}

export interface Failed {
  readonly error: string
}

const isFailed = (x: object): x is Failed => "error" in x

export function renderReport(results: Results): string {
  const pinning = results.pinned
    ? `server on CPU ${results.pinned.server_cpu}, load generator on CPU ${results.pinned.loadgen_cpu}`
    : "no CPU pinning"
  const heading =
    `PolyAgent bench: ${results.server}\n` +
    `node ${results.node}, ${results.cpus} CPUs, ${pinning}; ` +
    `${results.warmup_s} s warm-up + ${results.duration_s} s per scenario; server ready in ${fmt(results.startup_ms, 0)} ms`
  const chat = renderTable(
    ["POST /v1/chat", "conns", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "2xx", "errors", "RSS peak MB"],
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
      "RSS peak MB"
    ],
    [streamRow("new session each", results.stream)]
  )
  const { idle, peak, end, hwm } = results.rss_mb
  const memory = `server RSS MB: idle ${fmt(idle)}, peak under load ${fmt(peak)}, end ${fmt(end)} (VmHWM ${fmt(hwm)})`
  const notes = [memory, sessionNote(results.chat_session), errorsNote(results)].filter((line) => line !== "")
  return [heading, "", chat, "", stream, "", ...notes].join("\n")
}

function chatRow(label: string, figures: ChatFigures | Failed): Array<string> {
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
    fmt(f.rss_peak_mb)
  ]
}

function streamRow(label: string, figures: StreamFigures | Failed): Array<string> {
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
    fmt(f.rss_peak_mb)
  ]
}

const sessionNote = (figures: SessionFigures | Failed): string =>
  isFailed(figures)
    ? ""
    : `continuing sessions: ${figures.sessions} sessions, ~${figures.turns_per_session} turns each at the end`

function errorsNote(results: Results): string {
  const named: ReadonlyArray<readonly [string, ChatFigures | StreamFigures | Failed]> = [
    ["chat new", results.chat_new],
    ["chat session", results.chat_session],
    ["stream", results.stream]
  ]
  const parts = named.flatMap(([name, figures]) =>
    isFailed(figures) || figures.errors === 0 ? [] : [`${name} ${JSON.stringify(figures.statuses)}`]
  )
  const firstError = isFailed(results.stream) ? null : results.stream.first_error_event
  const detail = firstError === null ? "" : `\nfirst stream event: error: ${firstError}`
  return parts.length === 0 ? "" : `answers by status (errors present): ${parts.join("; ")}${detail}`
}

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
