// Shared helpers for the bench tools (no dependencies).
import fs from "node:fs"

export function parseArgs(argv, multi = ["header"]) {
  const out = { _: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith("--")) {
      out._.push(a)
      continue
    }
    let k = a.slice(2),
      v
    const eq = k.indexOf("=")
    if (eq !== -1) {
      v = k.slice(eq + 1)
      k = k.slice(0, eq)
    } else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) v = argv[++i]
    else v = true
    if (multi.includes(k)) (out[k] ||= []).push(v)
    else out[k] = v
  }
  return out
}

// "Name: value" strings -> object; later entries override earlier ones (case-insensitive).
export function headerObj(list = []) {
  const h = {}
  for (const s of list) {
    const i = s.indexOf(":")
    if (i < 1) throw new Error(`bad --header ${s}`)
    const k = s.slice(0, i).trim().toLowerCase()
    h[k] = s.slice(i + 1).trim()
  }
  return h
}

export function pct(sorted, p) {
  if (!sorted.length) return null
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]
}

const r = (x) => (x == null ? null : Math.round(x * 1000) / 1000)

export function summarize(lat) {
  const s = Float64Array.from(lat).sort()
  let sum = 0
  for (const x of s) sum += x
  return {
    n: s.length,
    mean: r(s.length ? sum / s.length : null),
    p50: r(pct(s, 50)),
    p90: r(pct(s, 90)),
    p99: r(pct(s, 99)),
    max: r(s[s.length - 1])
  }
}

export function readBody(file) {
  return fs.readFileSync(file)
}

export function rssKB(pid) {
  try {
    const t = fs.readFileSync(`/proc/${pid}/status`, "utf8")
    const rss = /VmRSS:\s+(\d+)/.exec(t),
      hwm = /VmHWM:\s+(\d+)/.exec(t)
    return { rss: rss ? Number(rss[1]) : null, hwm: hwm ? Number(hwm[1]) : null }
  } catch {
    return { rss: null, hwm: null }
  }
}
