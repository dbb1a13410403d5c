#!/usr/bin/env node
// LLM gateway benchmark harness. See README.md.
//
//   node run.mjs --url http://127.0.0.1:8787 --path /v1/chat/completions --body bodies/openai.json \
//       [--header 'Authorization: Bearer X']... [--pid GATEWAY_PID] [--quick] [--repeat 3]
//       [--tests latency,throughput,stream,conns] [--rates 200,500,1000] [--duration 10]
//       [--connections 64] [--tput-connections 64] [--stream-concurrency 50] [--stream-rounds 3]
//       [--conns 10000] [--loadgen-cpu 0] [--label NAME]
//       per-test overrides: --latency-url/--latency-header, --throughput-url/--throughput-header,
//                           --stream-url/--stream-header/--stream-body, --conns-url/--conns-header
//
// Prints a human table, then ONE JSON line with all figures (last line of stdout).
import { spawn, spawnSync } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs, rssKB } from "./lib/common.mjs"

const HERE = path.dirname(fileURLToPath(import.meta.url))
// This folder's own install, else the one of the repository it sits in (`bench/harness`).
const AUTOCANNON = [HERE, path.join(HERE, "../..")]
  .map((dir) => path.join(dir, "node_modules/.bin/autocannon"))
  .find((file) => fs.existsSync(file))
const MULTI = ["header", "latency-header", "throughput-header", "stream-header", "conns-header"]
const a = parseArgs(process.argv.slice(2), MULTI)
if (!a.url || a.help) {
  console.error(
    'usage: node run.mjs --url BASE --path /v1/chat/completions --body FILE [--header "K: V"]... [--pid PID] [--quick] (see README.md)'
  )
  process.exit(a.help ? 0 : 2)
}
const quick = !!a.quick
const cfg = {
  label: a.label || a.url,
  url: a.url.replace(/\/$/, ""),
  path: a.path || "/v1/chat/completions",
  body: path.resolve(a.body || path.join(HERE, "bodies/openai.json")),
  pid: a.pid ? Number(a.pid) : null,
  tests: String(a.tests || "latency,throughput,stream,conns").split(","),
  rates: String(a.rates || (quick ? "100,200" : "200,500,1000"))
    .split(",")
    .map(Number),
  duration: Number(a.duration || (quick ? 4 : 10)),
  warmup: Number(a.warmup || (quick ? 1 : 2)),
  connections: Number(a.connections || 64),
  tputConnections: Number(a["tput-connections"] || 64),
  tputDuration: Number(a["tput-duration"] || (quick ? 5 : 10)),
  streamConc: Number(a["stream-concurrency"] || (quick ? 20 : 50)),
  streamRounds: Number(a["stream-rounds"] || (quick ? 2 : 3)),
  conns: Number(a.conns || (quick ? 1000 : 10000)),
  connsTimeout: Number(a["conns-timeout"] || (quick ? 20 : 60)),
  repeat: Number(a.repeat || 1),
  cpu: a["loadgen-cpu"] ?? null
}
const hasTaskset = spawnSync("sh", ["-c", "command -v taskset"], { encoding: "utf8" }).status === 0
const hasWrk = spawnSync("sh", ["-c", "command -v wrk"], { encoding: "utf8" }).status === 0

function testOpts(t) {
  const base = (a[`${t}-url`] || cfg.url).replace(/\/$/, "")
  const headers = [...(a.header || []), ...(a[`${t}-header`] || [])]
  return { url: base + cfg.path, headers, hargs: headers.flatMap((h) => ["--header", h]) }
}

// RSS sampling of the gateway PID (VmRSS every 100 ms; VmHWM = kernel-tracked peak)
let rssPeakPhase = 0
const sampler = cfg.pid
  ? setInterval(() => {
      const r = rssKB(cfg.pid).rss
      if (r > rssPeakPhase) rssPeakPhase = r
    }, 100)
  : null
const mb = (kb) => (kb == null ? null : Math.round(kb / 102.4) / 10)
function phaseStart() {
  rssPeakPhase = cfg.pid ? rssKB(cfg.pid).rss || 0 : 0
}
function phasePeak() {
  return cfg.pid ? mb(rssPeakPhase) : null
}

function runChild(cmd, args, env) {
  const full = cfg.cpu != null && hasTaskset ? ["taskset", ["-c", String(cfg.cpu), cmd, ...args]] : [cmd, args]
  return new Promise((resolve, reject) => {
    const p = spawn(full[0], full[1], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let out = "",
      err = ""
    p.stdout.on("data", (d) => (out += d))
    p.stderr.on("data", (d) => (err += d))
    p.on("close", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${err.slice(-500)}`))
    )
  })
}
const lastJSON = (out, prefix = "") => {
  const line = out
    .trim()
    .split("\n")
    .toReversed()
    .find((l) => l.startsWith(prefix + "{"))
  return JSON.parse(line.slice(prefix.length))
}
const median = (xs) => {
  const v = xs.filter((x) => x != null && Number.isFinite(x)).sort((p, q) => p - q)
  if (!v.length) return null
  const m = Math.floor(v.length / 2)
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const results = {
  label: cfg.label,
  url: cfg.url,
  path: cfg.path,
  quick,
  repeat: cfg.repeat,
  loadgen_cpu: cfg.cpu,
  node: process.version,
  started: new Date().toISOString(),
  loadavg_start: os.loadavg().map((x) => Math.round(x * 100) / 100)
}
const runs = {} // raw per-repeat results
const rows = []

async function latencyTest() {
  const o = testOpts("latency")
  for (const rate of cfg.rates) {
    const reps = []
    for (let r = 0; r < cfg.repeat; r++) {
      phaseStart()
      const j = lastJSON(
        await runChild(
          process.execPath,
          [
            path.join(HERE, "lib/loadgen.mjs"),
            "--url",
            o.url,
            "--body",
            cfg.body,
            "--rate",
            rate,
            "--duration",
            cfg.duration,
            "--warmup",
            cfg.warmup,
            "--connections",
            cfg.connections,
            ...o.hargs
          ].map(String)
        )
      )
      j.rss_peak_mb = phasePeak()
      reps.push(j)
      await sleep(500)
    }
    runs[`latency_${rate}`] = reps
    const m = (f) => median(reps.map(f))
    const k = `lat${rate}`
    Object.assign(results, {
      [`${k}_p50_ms`]: m((j) => j.latency_ms.p50),
      [`${k}_p90_ms`]: m((j) => j.latency_ms.p90),
      [`${k}_p99_ms`]: m((j) => j.latency_ms.p99),
      [`${k}_achieved_rps`]: m((j) => j.achieved_rps),
      [`${k}_errors`]: m((j) => j.errors + j.non2xx + j.unfinished),
      [`${k}_rss_peak_mb`]: m((j) => j.rss_peak_mb)
    })
    rows.push([
      `latency @${rate} rps  p50/p90/p99 ms`,
      `${results[`${k}_p50_ms`]} / ${results[`${k}_p90_ms`]} / ${results[`${k}_p99_ms`]}`,
      `achieved ${results[`${k}_achieved_rps`]} rps, errors ${results[`${k}_errors`]}`
    ])
  }
}

async function throughputTest() {
  const o = testOpts("throughput")
  const reps = []
  for (let r = 0; r < cfg.repeat; r++) {
    phaseStart()
    let j
    if (hasWrk) {
      const out = await runChild(
        "wrk",
        [
          "-t1",
          `-c${cfg.tputConnections}`,
          `-d${cfg.tputDuration}s`,
          "--timeout",
          "10s",
          "-s",
          path.join(HERE, "lib/post.lua"),
          o.url
        ],
        { BENCH_BODY: cfg.body, BENCH_HEADERS: o.headers.join("\n") }
      )
      const w = lastJSON(out, "JSON ")
      j = {
        tool: "wrk",
        rps: w.rps,
        p50_ms: w.p50_ms,
        p99_ms: w.p99_ms,
        errors: w.connect_err + w.read_err + w.write_err + w.timeout_err + w.status_err,
        requests: w.requests
      }
    } else {
      const out = await runChild(
        AUTOCANNON,
        [
          "-j",
          "-c",
          cfg.tputConnections,
          "-d",
          cfg.tputDuration,
          "-m",
          "POST",
          "-i",
          cfg.body,
          "-H",
          "content-type=application/json",
          ...o.headers.flatMap((h) => ["-H", h.replace(/:\s*/, "=")]),
          o.url
        ].map(String)
      )
      const w = JSON.parse(out)
      j = {
        tool: "autocannon",
        rps: w.requests.average,
        p50_ms: w.latency.p50,
        p99_ms: w.latency.p99,
        errors: w.errors + w.non2xx + w.timeouts,
        requests: w.requests.total
      }
    }
    j.rss_peak_mb = phasePeak()
    reps.push(j)
    await sleep(500)
  }
  runs.throughput = reps
  const m = (f) => median(reps.map(f))
  Object.assign(results, {
    tput_rps: m((j) => j.rps),
    tput_p50_ms: m((j) => j.p50_ms),
    tput_p99_ms: m((j) => j.p99_ms),
    tput_errors: m((j) => j.errors),
    tput_rss_peak_mb: m((j) => j.rss_peak_mb),
    tput_tool: reps[0].tool,
    tput_connections: cfg.tputConnections
  })
  rows.push([
    `max throughput (${reps[0].tool}, ${cfg.tputConnections} conns)`,
    `${results.tput_rps} rps`,
    `p50 ${results.tput_p50_ms} ms, p99 ${results.tput_p99_ms} ms, errors ${results.tput_errors}`
  ])
}

async function streamTest() {
  const o = testOpts("stream")
  const body = a["stream-body"] ? path.resolve(a["stream-body"]) : cfg.body
  const reps = []
  for (let r = 0; r < cfg.repeat; r++) {
    phaseStart()
    const j = lastJSON(
      await runChild(
        process.execPath,
        [
          path.join(HERE, "lib/stream.mjs"),
          "--url",
          o.url,
          "--body",
          body,
          "--concurrency",
          cfg.streamConc,
          "--rounds",
          cfg.streamRounds,
          ...o.hargs
        ].map(String)
      )
    )
    j.rss_peak_mb = phasePeak()
    reps.push(j)
    await sleep(300)
  }
  runs.stream = reps
  const m = (f) => median(reps.map(f))
  Object.assign(results, {
    stream_concurrency: cfg.streamConc,
    stream_ttfb_p50_ms: m((j) => j.ttfb_ms.p50),
    stream_ttfb_p99_ms: m((j) => j.ttfb_ms.p99),
    stream_first_event_p50_ms: m((j) => j.first_event_ms.p50),
    stream_first_event_p99_ms: m((j) => j.first_event_ms.p99),
    stream_total_p50_ms: m((j) => j.total_ms.p50),
    stream_total_p99_ms: m((j) => j.total_ms.p99),
    stream_incomplete: m((j) => j.incomplete + j.errors + j.non2xx),
    stream_rss_peak_mb: m((j) => j.rss_peak_mb)
  })
  rows.push([
    `stream x${cfg.streamConc}: TTFB p50/p99 ms`,
    `${results.stream_ttfb_p50_ms} / ${results.stream_ttfb_p99_ms}`,
    `first data: p50 ${results.stream_first_event_p50_ms}, p99 ${results.stream_first_event_p99_ms}`
  ])
  rows.push([
    `stream x${cfg.streamConc}: full stream p50/p99 ms`,
    `${results.stream_total_p50_ms} / ${results.stream_total_p99_ms}`,
    `incomplete/errors ${results.stream_incomplete}`
  ])
}

async function connsTest() {
  const o = testOpts("conns")
  const reps = []
  for (let r = 0; r < cfg.repeat; r++) {
    phaseStart()
    const args = [
      path.join(HERE, "lib/conns.mjs"),
      "--url",
      o.url,
      "--body",
      cfg.body,
      "--n",
      cfg.conns,
      "--timeout",
      cfg.connsTimeout,
      ...o.hargs
    ]
    if (cfg.pid) args.push("--pid", cfg.pid)
    const j = lastJSON(await runChild(process.execPath, args.map(String)))
    j.rss_peak_mb = phasePeak()
    reps.push(j)
    await sleep(2000) // let the gateway close/reap sockets
  }
  runs.conns = reps
  const m = (f) => median(reps.map(f))
  Object.assign(results, {
    conns_n: cfg.conns,
    conns_connected: m((j) => j.connected),
    conns_ok: m((j) => j.ok),
    conns_failed: m((j) => cfg.conns - j.ok),
    conns_max_open: m((j) => j.max_open),
    conns_max_inflight: m((j) => j.max_inflight),
    conns_total_s: m((j) => j.total_s),
    conns_rss_peak_mb: m((j) => j.rss_peak_mb)
  })
  rows.push([
    `${cfg.conns} keep-alive conns`,
    `${results.conns_ok} ok`,
    `connected ${results.conns_connected}, max open ${results.conns_max_open}, max in-flight ${results.conns_max_inflight}, ${results.conns_total_s}s, errs ${JSON.stringify(reps.map((j) => j.err_codes))}`
  ])
}

if (cfg.pid) {
  const r = rssKB(cfg.pid)
  results.rss_idle_mb = mb(r.rss)
  rows.push(["gateway RSS idle", `${results.rss_idle_mb} MB`, `pid ${cfg.pid}`])
}
const t0 = Date.now()
for (const t of cfg.tests) {
  const fn = { latency: latencyTest, throughput: throughputTest, stream: streamTest, conns: connsTest }[t]
  if (!fn) {
    console.error(`unknown test ${t}`)
    process.exit(2)
  }
  try {
    await fn()
  } catch (e) {
    console.error(`[${t}] failed: ${e.message}`)
    results[`${t}_error`] = e.message.slice(0, 300)
  }
}
if (cfg.pid) {
  const r = rssKB(cfg.pid)
  results.rss_end_mb = mb(r.rss)
  results.rss_hwm_mb = mb(r.hwm)
  results.rss_peak_load_mb =
    Math.max(
      ...["lat", "tput", "stream", "conns"].flatMap((p) =>
        Object.entries(results)
          .filter(([k, v]) => k.startsWith(p) && k.endsWith("rss_peak_mb") && v != null)
          .map(([, v]) => v)
      ),
      0
    ) || null
  rows.push([
    "gateway RSS peak under load / VmHWM",
    `${results.rss_peak_load_mb} MB`,
    `VmHWM ${results.rss_hwm_mb} MB, end ${results.rss_end_mb} MB`
  ])
}
if (sampler) clearInterval(sampler)
results.elapsed_s = Math.round((Date.now() - t0) / 100) / 10
results.loadavg_end = os.loadavg().map((x) => Math.round(x * 100) / 100)
rows.push([
  "host load average 1/5/15 min (start -> end)",
  results.loadavg_end.join(" "),
  `start ${results.loadavg_start.join(" ")}; >~1.5 on 2 cores means other work is competing`
])
results.runs = runs

const w0 = Math.max(...rows.map((r) => r[0].length), 10),
  w1 = Math.max(...rows.map((r) => String(r[1]).length), 8)
console.log(
  `\n== ${cfg.label}  (${cfg.url}${cfg.path}; repeat=${cfg.repeat}, medians; loadgen cpu=${cfg.cpu ?? "any"}; ${results.elapsed_s}s)`
)
console.log(`${"metric".padEnd(w0)}  ${"value".padEnd(w1)}  notes`)
console.log(`${"-".repeat(w0)}  ${"-".repeat(w1)}  -----`)
for (const r of rows) console.log(`${r[0].padEnd(w0)}  ${String(r[1]).padEnd(w1)}  ${r[2]}`)
console.log(JSON.stringify(results))
