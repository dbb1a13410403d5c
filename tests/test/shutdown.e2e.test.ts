/**
 * Graceful shutdown of the real server: on SIGTERM it stops accepting, lets the turn in
 * flight finish and store itself, and exits 0; started again, the turn is there.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Session } from "@polyagent/runtime"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Schema } from "effect"
import { decode, Gateway, sseEvents } from "../src/harness.ts"

const SessionEvent = Schema.Struct({ session_id: Schema.String })

describe("SIGTERM with a turn in flight", () => {
  let configDir = ""
  let gateway: Gateway

  beforeAll(async () => {
    configDir = await mkdtemp(join(tmpdir(), "polyagent-shutdown-"))
    const config = join(configDir, "polyagent.yaml")
    // Slow chunks make the turn outlive the signal; the grace period is far longer than the turn.
    await writeFile(config, "models:\n  local:\n    chunk_delay: 100 millis\nserver:\n  shutdown_grace: 20s\n")
    gateway = await Gateway.start({ env: { POLYAGENT_CONFIG: config } })
  })

  afterAll(async () => {
    await gateway?.dispose()
    await rm(configDir, { recursive: true, force: true })
  })

  it("finishes and stores the turn, refuses new connections, exits 0", async () => {
    const response = await gateway.stream("/v1/chat/stream", { message: "finish me" })
    assert.strictEqual(response.status, 200)
    if (response.body === null) return assert.fail("the stream has no body")
    const events = sseEvents(response.body)
    const first = await events.next()
    assert.strictEqual(first.value?.event, "session")
    const second = await events.next()
    assert.strictEqual(second.value?.event, "delta")

    const url = gateway.url
    const stopping = gateway.stop()
    await new Promise((resolve) => setTimeout(resolve, 300))
    // While the turn is still streaming, the server takes no new connection.
    const refused = await fetch(`${url}/v1/health`).then(
      () => false,
      () => true
    )
    assert.isTrue(refused, "no new connection is accepted while shutting down")

    const rest = []
    for await (const event of events) rest.push(event.event)
    assert.include(rest, "delta", "the turn was still streaming when the signal came")
    assert.strictEqual(rest.at(-1), "done", `the turn must complete after SIGTERM, got ${rest.join(",")}`)
    const exited = await stopping
    assert.strictEqual(exited?.code, 0, exited?.stderr)

    await gateway.restart()
    const { session_id: sessionId } = decode(SessionEvent, first.value?.data)
    const answer = await gateway.get(`/v1/sessions/${sessionId}`)
    const session = decode(Session.Session, answer.json)
    assert.deepStrictEqual(
      session.messages.map((message) => message.role),
      ["user", "assistant"]
    )
  })
})
