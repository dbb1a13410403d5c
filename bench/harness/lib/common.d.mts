// Types for common.mjs, so bench/run.ts can import its helpers under `tsc -b` (strict, no allowJs).

/** Latency summary in ms, rounded to µs; `null` fields when there were no samples. */
export interface Summary {
  readonly n: number
  readonly mean: number | null
  readonly p50: number | null
  readonly p90: number | null
  readonly p99: number | null
  readonly max: number | null
}

/** `--key value` / `--key=value` / `--flag` arguments; keys in `multi` collect into arrays. */
export function parseArgs(argv: ReadonlyArray<string>, multi?: ReadonlyArray<string>): Record<string, unknown>

/** `"Name: value"` strings as a header object with lower-case names. */
export function headerObj(list?: ReadonlyArray<string>): Record<string, string>

/** Nearest-rank percentile `p` (0-100) of an ascending array; `null` when empty. */
export function pct(sorted: ArrayLike<number>, p: number): number | null

/** Count, mean, p50/p90/p99 and max of latencies in ms. */
export function summarize(lat: Iterable<number>): Summary

export function readBody(file: string): Buffer

/** VmRSS and VmHWM (peak) of a process in KiB, from `/proc/<pid>/status`; `null` when unreadable. */
export function rssKB(pid: number): { readonly rss: number | null; readonly hwm: number | null }
