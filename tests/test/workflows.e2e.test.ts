/**
 * `/v1/workflows` against the real server over a real socket, with the offline `local` model:
 * the example of API.md runs to the end with its outputs and cost; invalid definitions answer
 * 400 naming the step; versions; tenants; approval waits across a restart and resumes on
 * approve, reject ends the run, cancel stops it; and runs killed with SIGKILL after each step in
 * turn finish with every step run exactly once and the same output, on the embedded database
 * and on PostgreSQL.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { readFile, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { FakeUpstream, OpenAiWire } from "@polyagent/providers/testing"
import { createPgSchema, decode, ErrorEnvelope, Gateway, type PgSchema, repoRoot } from "../src/harness.ts"

const Step = Schema.Struct({
  name: Schema.String,
  status: Schema.String,
  output: Schema.Unknown,
  attempts: Schema.Number,
  cost_usd: Schema.Number,
  started_at: Schema.NullOr(Schema.String),
  finished_at: Schema.NullOr(Schema.String)
})
const Run = Schema.Struct({
  id: Schema.String,
  workflow_id: Schema.String,
  version: Schema.Number,
  status: Schema.String,
  steps: Schema.Array(Step),
  output: Schema.Unknown,
  error: Schema.NullOr(Schema.String),
  cost_usd: Schema.Number
})
type Run = typeof Run.Type
const Created = Schema.Struct({ id: Schema.String, name: Schema.String, version: Schema.Number })

const plugin = resolve(repoRoot, "tests/fixtures/test-tools-plugin.mjs")

/** A priced model (a fake OpenAI) by default, so that runs have a cost to report. */
const pricedDefault = `models:\n  default: gpt-4o-mini\nplugins: ["${plugin}"]\n`

const example = {
  name: "review-flow",
  steps: [
    { name: "analyze", type: "model", prompt: "Analyse: {{input}}" },
    { name: "generate", type: "model", prompt: "Answer using {{steps.analyze.output}}" },
    { name: "review", type: "approval", when: "steps.analyze.output.length > 200" }
  ]
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms))

const createWorkflow = async (gateway: Gateway, definition: unknown, token?: string) => {
  const answer = await gateway.post("/v1/workflows", definition, token === undefined ? {} : { token })
  assert.strictEqual(answer.status, 201, answer.text)
  return decode(Created, answer.json)
}

const startRun = async (gateway: Gateway, workflowId: string, input: unknown) => {
  const answer = await gateway.post(`/v1/workflows/${workflowId}/runs`, { input })
  assert.strictEqual(answer.status, 202, answer.text)
  const started = decode(Schema.Struct({ id: Schema.String, status: Schema.Literal("running") }), answer.json)
  return started.id
}

const readRun = async (gateway: Gateway, runId: string): Promise<Run> => {
  const answer = await gateway.get(`/v1/workflows/runs/${runId}`)
  assert.strictEqual(answer.status, 200, answer.text)
  return decode(Run, answer.json)
}

/** Polls the run until `done` holds (or fails the test after `timeoutMs`). */
const waitFor = async (gateway: Gateway, runId: string, done: (run: Run) => boolean, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const answer = await gateway.get(`/v1/workflows/runs/${runId}`).catch(() => undefined)
    if (answer?.status === 200) {
      const run = decode(Run, answer.json)
      if (done(run)) return run
    }
    if (Date.now() > deadline) throw new Error(`run ${runId} did not get there in ${timeoutMs} ms`)
    await sleep(15)
  }
}

const ended = (run: Run) => ["completed", "failed", "cancelled"].includes(run.status)

describe("/v1/workflows", () => {
  let gateway: Gateway
  let fake: FakeUpstream.FakeUpstream

  beforeAll(async () => {
    fake = await FakeUpstream.start(OpenAiWire.routes("/v1"))
    gateway = await Gateway.start({
      config: pricedDefault,
      env: { OPENAI_API_KEY: "sk-test", OPENAI_BASE_URL: `${fake.url}/v1` }
    })
  })

  afterAll(async () => {
    await gateway?.dispose()
    await fake?.close()
  })

  it("runs the example of API.md to the end, with each step's output and the run's cost", async () => {
    const workflow = await createWorkflow(gateway, example)
    assert.match(workflow.id, /^wf_/)
    assert.strictEqual(workflow.version, 1)
    const runId = await startRun(gateway, workflow.id, "the cat sat on the mat")
    const events = await gateway.request("GET", `/v1/workflows/runs/${runId}/events`)
    assert.strictEqual(events.status, 200, events.text)
    assert.match(events.headers.get("content-type") ?? "", /text\/event-stream/)
    const run = await readRun(gateway, runId)
    assert.strictEqual(run.status, "completed")
    assert.deepStrictEqual(
      run.steps.map((step) => [step.name, step.status]),
      [
        ["analyze", "completed"],
        ["generate", "completed"],
        ["review", "skipped"]
      ]
    )
    const [analyze, generate] = run.steps
    assert.strictEqual(analyze?.output, OpenAiWire.answerText)
    assert.strictEqual(generate?.output, OpenAiWire.answerText)
    // Each prompt was rendered: the input into the first, the first step's output into the second.
    const prompts = fake.received.map((request) => OpenAiWire.lastUserText(request.body))
    assert.include(prompts, "Analyse: the cat sat on the mat")
    assert.include(prompts, `Answer using ${OpenAiWire.answerText}`)
    assert.strictEqual(run.output, generate?.output)
    assert.isAbove(run.cost_usd, 0)
    assert.closeTo(run.cost_usd, (analyze?.cost_usd ?? 0) + (generate?.cost_usd ?? 0), 1e-12)
    for (const step of [analyze, generate]) {
      assert.isNotNull(step?.started_at)
      assert.isNotNull(step?.finished_at)
      assert.strictEqual(step?.attempts, 1)
    }
    // The event stream replays the run from its start and ends with `completed`.
    const names = events.text
      .split("\n")
      .filter((line) => line.startsWith("event: "))
      .map((line) => line.slice(7))
    assert.deepStrictEqual(names, [
      "step_started",
      "step_finished",
      "step_started",
      "step_finished",
      "step_finished",
      "completed"
    ])
  })

  it("answers 400 naming the step for each kind of definition error", async () => {
    const cases: ReadonlyArray<[unknown, string, RegExp]> = [
      [{ name: "bad", steps: [{ name: "jump", type: "teleport" }] }, "jump", /unknown step type "teleport"/],
      [
        {
          name: "bad",
          steps: [
            { name: "a", type: "model", prompt: "{{steps.b.output}}" },
            { name: "b", type: "model", prompt: "{{steps.a.output}}" }
          ]
        },
        "a",
        /cycle: a → b → a/
      ],
      [{ name: "bad", steps: [{ name: "gate", type: "approval", when: "should_review" }] }, "gate", /names nothing/],
      [
        { name: "bad", steps: [{ name: "write", type: "model", prompt: "{{steps.ghost.output}}" }] },
        "write",
        /"ghost", which does not exist/
      ],
      [
        {
          name: "bad",
          steps: [
            { name: "dup", type: "sleep", duration_ms: 1 },
            { name: "dup", type: "sleep", duration_ms: 1 }
          ]
        },
        "dup",
        /used twice/
      ],
      [
        { name: "bad", steps: [{ name: "peek", type: "transform", expression: "input.constructor" }] },
        "peek",
        /not accessible/
      ]
    ]
    for (const [definition, step, reason] of cases) {
      const answer = await gateway.post("/v1/workflows", definition)
      assert.strictEqual(answer.status, 400, answer.text)
      const envelope = decode(ErrorEnvelope, answer.json)
      assert.strictEqual(envelope.error.type, "invalid_request")
      assert.include(envelope.error.message, `step "${step}"`)
      assert.match(envelope.error.message, reason)
    }
  })

  it("makes a new version of a name, and a run keeps the version it started with", async () => {
    const v1 = await createWorkflow(gateway, {
      name: "versioned",
      steps: [
        { name: "gate", type: "approval" },
        { name: "answer", type: "transform", expression: "'version one'" }
      ]
    })
    const runId = await startRun(gateway, v1.id, null)
    await waitFor(gateway, runId, (run) => run.status === "waiting")
    const v2 = await createWorkflow(gateway, {
      name: "versioned",
      steps: [{ name: "answer", type: "transform", expression: "'version two'" }]
    })
    assert.strictEqual(v2.id, v1.id)
    assert.strictEqual(v2.version, 2)
    const approved = await gateway.post(`/v1/workflows/runs/${runId}/approve`, { comment: "go" })
    assert.strictEqual(approved.status, 200, approved.text)
    const run = await waitFor(gateway, runId, ended)
    assert.strictEqual(run.version, 1)
    assert.strictEqual(run.output, "version one")
    const fresh = await waitFor(gateway, await startRun(gateway, v1.id, null), ended)
    assert.strictEqual(fresh.version, 2)
    assert.strictEqual(fresh.output, "version two")
    const listed = decode(Schema.Struct({ data: Schema.Array(Created) }), (await gateway.get("/v1/workflows")).json)
    assert.deepStrictEqual(
      listed.data.filter((entry) => entry.id === v1.id).map((entry) => entry.version),
      [2]
    )
    // Both versions and the approval are in the audit log.
    const audit = JSON.stringify((await gateway.get("/v1/audit")).json)
    assert.include(audit, `"workflow.save","target":"${v1.id}@1"`)
    assert.include(audit, `"workflow.save","target":"${v1.id}@2"`)
  })

  it("keeps tenants apart: another tenant's workflow or run answers 404", async () => {
    const workflow = await createWorkflow(gateway, { name: "private", steps: [{ name: "gate", type: "approval" }] })
    const runId = await startRun(gateway, workflow.id, null)
    const key = await gateway.post("/v1/keys", { role: "builder", tenant: "other" })
    assert.strictEqual(key.status, 201, key.text)
    const token = decode(Schema.Struct({ key: Schema.String }), key.json).key
    for (const answer of [
      await gateway.get(`/v1/workflows/${workflow.id}`, { token }),
      await gateway.post(`/v1/workflows/${workflow.id}/runs`, { input: 1 }, { token }),
      await gateway.del(`/v1/workflows/${workflow.id}`, { token }),
      await gateway.get(`/v1/workflows/runs/${runId}`, { token }),
      await gateway.request("GET", `/v1/workflows/runs/${runId}/events`, undefined, { token }),
      await gateway.post(`/v1/workflows/runs/${runId}/approve`, {}, { token }),
      await gateway.post(`/v1/workflows/runs/${runId}/cancel`, {}, { token })
    ]) {
      assert.strictEqual(answer.status, 404, answer.text)
      assert.strictEqual(decode(ErrorEnvelope, answer.json).error.type, "not_found")
    }
    const user = await gateway.post("/v1/keys", { role: "user" })
    const userToken = decode(Schema.Struct({ key: Schema.String }), user.json).key
    const refused = await gateway.post("/v1/workflows", example, { token: userToken })
    assert.strictEqual(refused.status, 403, refused.text)
    const cancelled = await gateway.post(`/v1/workflows/runs/${runId}/cancel`, {})
    assert.strictEqual(decode(Run, cancelled.json).status, "cancelled")
    const again = await gateway.post(`/v1/workflows/runs/${runId}/cancel`, {})
    assert.strictEqual(again.status, 409, again.text)
  })

  it("waits for approval across a restart and resumes on approve; reject ends a run", async () => {
    const workflow = await createWorkflow(gateway, {
      name: "approvals",
      steps: [
        { name: "draft", type: "model", model: "local", prompt: "Draft: {{input.topic}}" },
        { name: "review", type: "approval", message: "Check the draft" },
        { name: "publish", type: "transform", template: "Published: {{steps.draft.output}}" }
      ]
    })
    const approvedRun = await startRun(gateway, workflow.id, { topic: "otters" })
    const rejectedRun = await startRun(gateway, workflow.id, { topic: "weasels" })
    await waitFor(gateway, approvedRun, (run) => run.status === "waiting")
    await waitFor(gateway, rejectedRun, (run) => run.status === "waiting")
    const early = await gateway.post(`/v1/workflows/runs/${approvedRun}/cancel`, "not json")
    assert.strictEqual(early.status, 400)

    await gateway.restart()
    const stillWaiting = await readRun(gateway, approvedRun)
    assert.strictEqual(stillWaiting.status, "waiting")
    assert.deepStrictEqual(
      stillWaiting.steps.map((step) => step.status),
      ["completed", "waiting"]
    )

    const approved = await gateway.post(`/v1/workflows/runs/${approvedRun}/approve`, { comment: "lovely" })
    assert.strictEqual(approved.status, 200, approved.text)
    const done = await waitFor(gateway, approvedRun, ended)
    assert.strictEqual(done.status, "completed")
    assert.deepStrictEqual(done.steps[1]?.output, { approved: true, comment: "lovely" })
    assert.match(String(done.output), /^Published: .*Draft: otters/)
    assert.strictEqual(done.steps[0]?.attempts, 1, "the draft was not written again after the restart")

    const rejected = await gateway.post(`/v1/workflows/runs/${rejectedRun}/reject`, { comment: "no weasels" })
    assert.strictEqual(rejected.status, 200, rejected.text)
    const failed = await waitFor(gateway, rejectedRun, ended)
    assert.strictEqual(failed.status, "failed")
    assert.match(failed.error ?? "", /rejected: no weasels/)
    assert.deepStrictEqual(
      failed.steps.map((step) => step.status),
      ["completed", "rejected"]
    )
    const twice = await gateway.post(`/v1/workflows/runs/${rejectedRun}/approve`, {})
    assert.strictEqual(twice.status, 409, twice.text)
  })
})

/** A five-step workflow: models, tool calls that count themselves in a file, a transform. */
const countedFlow = (file: string) => ({
  name: "counted",
  steps: [
    { name: "m1", type: "model", prompt: "First: {{input.topic}}" },
    { name: "t1", type: "tool", tool: "tick", arguments: { file, id: "t1-{{input.n}}", delay_ms: 150 } },
    { name: "x", type: "transform", expression: "steps.m1.output.length + steps.t1.output.id.length" },
    { name: "m2", type: "model", prompt: "Second: {{steps.x.output}}" },
    { name: "t2", type: "tool", tool: "tick", arguments: { file, id: "t2-{{input.n}}", delay_ms: 150 } }
  ]
})

/** Runs the workflow once whole, then once per step killed right after it; answers how many kills the runs survived. */
const killAfterEachStep = async (database: "embedded" | "postgres"): Promise<number> => {
  let schema: PgSchema | undefined
  if (database === "postgres") schema = await createPgSchema()
  const gateway = await Gateway.start({
    config: `plugins: ["${plugin}"]\n`,
    ...(schema === undefined ? {} : { postgresUrl: schema.url })
  })
  try {
    const file = join(gateway.dataDir, "ticks.txt")
    await writeFile(file, "")
    const workflow = await createWorkflow(gateway, countedFlow(file))
    const names = countedFlow(file).steps.map((step) => step.name)
    const reference = await waitFor(gateway, await startRun(gateway, workflow.id, { topic: "kills", n: 0 }), ended)
    assert.strictEqual(reference.status, "completed", reference.error ?? "")
    for (let k = 0; k < names.length; k++) {
      const runId = await startRun(gateway, workflow.id, { topic: "kills", n: k + 1 })
      await waitFor(gateway, runId, (run) =>
        run.steps.some((step) => step.name === names[k] && step.status === "completed")
      )
      await gateway.crashAndRestart()
      const run = await waitFor(gateway, runId, ended, 60_000)
      assert.strictEqual(run.status, "completed", `killed after ${names[k]}: ${run.error}`)
      assert.deepStrictEqual(
        run.steps.map((step) => [step.name, step.status]),
        names.map((name) => [name, "completed"])
      )
      // The steps that had finished before the kill never ran again; the one running at the kill
      // (at most one, a later one) was started again: activities are at-least-once.
      run.steps.forEach((step, i) => {
        if (i <= k) assert.strictEqual(step.attempts, 1, `killed after ${names[k]}: ${step.name} ran again`)
        else assert.include([1, 2], step.attempts, `killed after ${names[k]}: ${step.name}`)
      })
      assert.isAtMost(run.steps.filter((step) => step.attempts > 1).length, 1)
      assert.deepStrictEqual(run.output, { id: `t2-${k + 1}` })
      assert.strictEqual(run.steps[3]?.output, reference.steps[3]?.output, "the same answer as the run never killed")
    }
    // What the tool steps did, counted by the tool itself: once per step and run, kills or not.
    const ticks = (await readFile(file, "utf8")).split("\n").filter((line) => line !== "")
    const expected = [0, 1, 2, 3, 4, 5].flatMap((n) => [`t1-${n}`, `t2-${n}`])
    assert.deepStrictEqual([...ticks].sort(), [...expected].sort(), "each tool step ran exactly once per run")
    return names.length
  } finally {
    await gateway.dispose()
    await schema?.drop()
  }
}

describe("workflow runs killed with SIGKILL after each step", () => {
  it("finish on the embedded database with every step run once", async () => {
    assert.strictEqual(await killAfterEachStep("embedded"), 5)
  }, 240_000)
  it("finish on PostgreSQL with every step run once", async () => {
    assert.strictEqual(await killAfterEachStep("postgres"), 5)
  }, 300_000)
})
