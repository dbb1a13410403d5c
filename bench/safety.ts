/**
 * The per-request cost of the safety checks, in microseconds, measured in process (no HTTP): the
 * input check of a typical user message with every heuristic check on, the output hold-back of a
 * typical streamed answer (~300 tokens in 4-character pieces, as a model streams them), the same
 * answer as the relay's SSE read event by event, and the cost with every policy off (what every
 * request pays: one policy lookup and two flags).
 *
 *   node --conditions=@polyagent/source bench/safety.ts
 */
import { Effect, Layer, Stream } from "effect"
import { AppConfig, Audit, ModelRouter, Safety } from "@polyagent/runtime"
import { CompletionSafety } from "@polyagent/http"

const unused = () => Effect.die("unused")
const noRouter = Layer.succeed(
  ModelRouter.ModelRouter,
  ModelRouter.ModelRouter.of({
    plan: unused,
    knows: () => false,
    run: unused,
    runStream: () => Stream.die("unused"),
    call: unused,
    stream: () => Stream.die("unused")
  })
)

const serviceOf = (overrides: AppConfig.Overrides<AppConfig.AppConfigValue>) =>
  Effect.runSync(
    Effect.gen(function* () {
      const config = yield* AppConfig.make(overrides)
      const layer = Safety.layer(config.safety).pipe(Layer.provide([noRouter, Audit.layerMemory()]))
      return yield* Effect.service(Safety.Safety).pipe(Effect.provide(layer))
    })
  )

const on = serviceOf({
  safety: {
    injection: { enabled: true },
    blockedCategories: ["S1", "S2", "S9", "S11", "S14"],
    blockedPatterns: [{ name: "project_x", pattern: "project\\s+x" }],
    medical: { enabled: true }
  }
})
const off = serviceOf({})
const subject: Safety.Subject = {
  caller: { payer: { tenant: "default", keyId: "key" }, requestId: "req", sessionId: null },
  target: "req"
}
const message =
  "Can you help me plan a three-day trip to Lisbon in April? I like museums, good food and short walks, and I will travel with my parents."
const answer =
  "Here is a relaxed three-day plan for Lisbon in April. Day one: start in Baixa and walk up to the Castelo de São Jorge in the morning, then have lunch in Alfama and visit the Fado Museum. In the late afternoon take tram 28 back down and end with dinner in Chiado. Day two: spend the morning in Belém at the Jerónimos Monastery and the Belém Tower, try the pastéis de Belém, then visit the MAAT by the river. In the evening, book a table at a seafood restaurant in Cais do Sodré. Day three: go to the Gulbenkian Museum and its gardens, which are calm and easy to walk, then have a long lunch in Príncipe Real and watch the sunset from the Miradouro de São Pedro de Alcântara. April is usually mild, but bring a light jacket and an umbrella for showers. ".repeat(
    1
  )
const pieces = answer.match(/.{1,4}/gs) ?? []
const header = { id: "chatcmpl-x", object: "chat.completion.chunk", created: 1, model: "m" }
const sse = new TextEncoder().encode(
  [
    ...pieces.map((piece) =>
      JSON.stringify({ ...header, choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })
    ),
    "[DONE]"
  ]
    .map((data) => `data: ${data}\n\n`)
    .join("")
)

const time = (name: string, runs: number, body: () => void) => {
  for (let i = 0; i < Math.min(200, runs); i++) body()
  const start = process.hrtime.bigint()
  for (let i = 0; i < runs; i++) body()
  const us = Number(process.hrtime.bigint() - start) / 1000 / runs
  console.log(`${name.padEnd(58)} ${us.toFixed(1).padStart(8)} µs/request`)
}

const policyOn = on.policy("default")
time("policies off: policy lookup + flags (every request)", 200_000, () => {
  const policy = off.policy("default")
  if (policy.input || policy.output) throw new Error("expected off")
})
time("input check, all heuristics on, benign message", 5_000, () => {
  Effect.runSync(on.screen(policyOn, message, subject))
})
time(`output hold-back, ${pieces.length} pieces (~${Math.ceil(answer.length / 4)} tokens)`, 500, () => {
  const guard = on.guard<string>(policyOn, subject)
  Effect.runSync(
    Effect.andThen(
      Effect.forEach(pieces, (piece) => guard.push(piece, piece)),
      guard.end(answer)
    )
  )
})
time("relay SSE hold-back (parse + window), same answer", 300, () => {
  const guard = on.guard<CompletionSafety.Piece>(policyOn, subject)
  Effect.runSync(Stream.runDrain(CompletionSafety.guardStream(Stream.make(sse), guard, undefined, undefined)))
})
