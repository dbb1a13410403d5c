#!/usr/bin/env node
// Concurrent SSE streaming test: N concurrent streams, repeated for `rounds`.
// Per stream: TTFB = time to response headers, first-event = time to first "data:" line,
// total = time until the stream ends. Counts streams that finished with [DONE]/message_stop.
//
//   node lib/stream.mjs --url http://127.0.0.1:8787/v1/chat/completions --body body.json \
//        --concurrency 50 --rounds 3 [--header 'K: V']...
// The body's "stream" field is forced to true.
import http from "node:http"
import { parseArgs, headerObj, summarize, readBody } from "./common.mjs"

const a = parseArgs(process.argv.slice(2))
const url = new URL(a.url)
const obj = JSON.parse(readBody(a.body).toString())
obj.stream = true
const body = Buffer.from(JSON.stringify(obj))
const conc = Number(a.concurrency || 50)
const rounds = Number(a.rounds || 3)
const timeout = Number(a.timeout || 60) * 1000
const headers = {
  "content-type": "application/json",
  accept: "text/event-stream",
  ...headerObj(a.header),
  "content-length": body.length
}
const agent = new http.Agent({ keepAlive: true, maxSockets: conc })

const ttfb = [],
  firstEvent = [],
  total = []
let complete = 0,
  incomplete = 0,
  errors = 0,
  non2xx = 0,
  events = 0

function one() {
  return new Promise((resolve) => {
    const t = performance.now()
    let gotFirst = false,
      buf = "",
      finished = false
    const req = http.request(
      {
        hostname: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: "POST",
        headers,
        agent,
        timeout
      },
      (res) => {
        const th = performance.now() - t
        if (res.statusCode !== 200) {
          non2xx++
          res.resume()
          res.on("end", resolve)
          return
        }
        ttfb.push(th)
        res.setEncoding("utf8")
        res.on("data", (d) => {
          if (!gotFirst && d.includes("data:")) {
            gotFirst = true
            firstEvent.push(performance.now() - t)
          }
          buf += d
          if (buf.length > 4096) buf = buf.slice(-256)
          if (buf.includes("[DONE]") || buf.includes("message_stop")) finished = true
          events += (d.match(/\ndata:|^data:/g) || []).length
        })
        res.on("end", () => {
          total.push(performance.now() - t)
          if (finished) complete++
          else incomplete++
          resolve()
        })
        res.on("error", () => {
          errors++
          resolve()
        })
      }
    )
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", () => {
      errors++
      resolve()
    })
    req.end(body)
  })
}

for (let r = 0; r < rounds; r++) await Promise.all(Array.from({ length: conc }, one))
agent.destroy()
console.log(
  JSON.stringify({
    concurrency: conc,
    rounds,
    streams: conc * rounds,
    complete,
    incomplete,
    non2xx,
    errors,
    events,
    ttfb_ms: summarize(ttfb),
    first_event_ms: summarize(firstEvent),
    total_ms: summarize(total)
  })
)
