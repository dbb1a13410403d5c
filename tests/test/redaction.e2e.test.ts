/**
 * `redaction.providers` and `redaction.storage` over a real socket: with them on, a fake OpenAI
 * server receives prompts with the e-mail address and the card number masked — through the relay
 * (`/v1/chat/completions`) and through effect/ai (`/v1/chat`) — and the stored conversation holds
 * them masked; with the defaults, the provider gets the text as it was sent.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { FakeUpstream, OpenAiWire } from "@polyagent/providers/testing"
import { Gateway } from "../src/harness.ts"

const EMAIL = "jane.doe@example.com"
// A Luhn-valid test card number.
const CARD = "4111 1111 1111 1111"
const message = `Please write to ${EMAIL} about card ${CARD}.`

/** Everything `fake` received, as text. */
const receivedText = (fake: FakeUpstream.FakeUpstream, from: number) =>
  JSON.stringify(fake.received.slice(from).map((request) => request.body))

describe("redaction of what goes to providers and what is stored", () => {
  let openAi: FakeUpstream.FakeUpstream
  let masked: Gateway
  let plain: Gateway

  beforeAll(async () => {
    openAi = await FakeUpstream.start(OpenAiWire.routes("/v1"))
    const env = { OPENAI_API_KEY: "sk-redaction-test", OPENAI_BASE_URL: `${openAi.url}/v1` }
    ;[masked, plain] = await Promise.all([
      Gateway.start({ env, config: "redaction:\n  providers: true\n  storage: true\n" }),
      Gateway.start({ env })
    ])
  }, 60_000)
  afterAll(async () => {
    await Promise.all([masked?.dispose(), plain?.dispose()])
    await openAi?.close()
  })

  it("masks prompts on the relay and on effect/ai, and in the stored messages", async () => {
    const from = openAi.received.length
    const completion = await masked.post("/v1/chat/completions", {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: message }]
    })
    assert.strictEqual(completion.status, 200)
    const chat = await masked.post("/v1/chat", { message, model: "gpt-4o-mini" })
    assert.strictEqual(chat.status, 200)
    const sent = receivedText(openAi, from)
    assert.lengthOf(openAi.received.slice(from), 2)
    assert.notInclude(sent, EMAIL)
    assert.notInclude(sent, "4111")
    assert.include(sent, "[email]")
    assert.include(sent, "[card]")

    const sessionId = (chat.json as { session_id: string }).session_id
    const session = await masked.get(`/v1/sessions/${sessionId}`)
    const stored = JSON.stringify(session.json)
    assert.notInclude(stored, EMAIL)
    assert.include(stored, "Please write to [email] about card [card].")
  })

  it("sends the text as it is with the defaults", async () => {
    const from = openAi.received.length
    const chat = await plain.post("/v1/chat", { message, model: "gpt-4o-mini" })
    assert.strictEqual(chat.status, 200)
    assert.include(receivedText(openAi, from), EMAIL)
  })
})
