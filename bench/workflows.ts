/**
 * `node bench/workflows.ts [runs]` (after `npm run build`): starts the server with a fresh data
 * directory (embedded SQLite, the offline `local` model), stores a 5-step workflow (two model
 * steps, two transforms, one more model step), starts `runs` runs at once (1,000 by default) and
 * waits until every one has ended. Prints how many completed, runs per second from the first
 * start to the last end, and the server's resident memory (idle, peak while the runs ran, after).
 * Only 127.0.0.1 is contacted; the request loops are bounded in count and time.
 */
import { randomBytes } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { defaultCommand, freePort, startServer, waitHealthy } from "./server.ts"

const runs = Number(process.argv[2] ?? 1000)

const rssOf = (pid: number | undefined): number => {
  if (pid === undefined) return 0
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return Math.round(kb / 1024)
}

const port = await freePort()
const dataDir = mkdtempSync(join(tmpdir(), "polyagent-bench-wf-"))
const key = `pa_${randomBytes(30).toString("base64url").slice(0, 40)}`
const server = startServer({
  command: undefined,
  argv: defaultCommand(),
  cwd: resolve(import.meta.dirname, ".."),
  env: { ...process.env, GATEWAY_PORT: String(port), POLYAGENT_DATA_DIR: dataDir, POLYAGENT_ADMIN_KEY: key },
  cpu: null
})
const call = async (method: string, path: string, body?: unknown) => {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, text, json: text === "" ? undefined : JSON.parse(text) }
}
const gateway = {
  pid: server.pid,
  post: (path: string, body: unknown) => call("POST", path, body),
  get: (path: string) => call("GET", path)
}
try {
  await waitHealthy(server, port, 20_000)
  const idle = rssOf(gateway.pid)
  const created = await gateway.post("/v1/workflows", {
    name: "bench",
    steps: [
      { name: "analyze", type: "model", prompt: "Analyse: {{input.topic}}" },
      { name: "measure", type: "transform", expression: "steps.analyze.output.length" },
      { name: "generate", type: "model", prompt: "Write about {{input.topic}} in {{steps.measure.output}} words" },
      { name: "shape", type: "transform", template: "{{steps.generate.output}}" },
      { name: "review", type: "model", prompt: "Review: {{steps.shape.output}}", when: "steps.measure.output > 10" }
    ]
  })
  if (created.status !== 201) throw new Error(`workflow not stored: ${created.text}`)
  const workflowId = (created.json as { id: string }).id
  let peak = idle
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssOf(gateway.pid))
  }, 100)
  const started = performance.now()
  const ids = await Promise.all(
    Array.from({ length: runs }, async (_, i) => {
      const answer = await gateway.post(`/v1/workflows/${workflowId}/runs`, { input: { topic: `topic ${i}` } })
      if (answer.status !== 202) throw new Error(`run not started: ${answer.status} ${answer.text}`)
      return (answer.json as { id: string }).id
    })
  )
  const startedAll = performance.now()
  const pending = new Set(ids)
  const statuses = new Map<string, string>()
  const deadline = Date.now() + 600_000
  while (pending.size > 0 && Date.now() < deadline) {
    const all = [...pending]
    for (let i = 0; i < all.length; i += 100) {
      await Promise.all(
        all.slice(i, i + 100).map(async (id) => {
          const answer = await gateway.get(`/v1/workflows/runs/${id}`)
          const status = (answer.json as { status: string }).status
          if (status !== "running" && status !== "waiting") {
            statuses.set(id, status)
            pending.delete(id)
          }
        })
      )
    }
    await new Promise((done) => setTimeout(done, 200))
  }
  const ended = performance.now()
  clearInterval(sampler)
  const completed = [...statuses.values()].filter((status) => status === "completed").length
  const result = {
    runs,
    completed,
    not_ended: pending.size,
    start_s: Number(((startedAll - started) / 1000).toFixed(2)),
    total_s: Number(((ended - started) / 1000).toFixed(2)),
    runs_per_s: Number((completed / ((ended - started) / 1000)).toFixed(1)),
    rss_mb: { idle, peak, after: rssOf(gateway.pid) }
  }
  console.log(JSON.stringify(result))
} finally {
  await server.stop()
  rmSync(dataDir, { recursive: true, force: true })
}
