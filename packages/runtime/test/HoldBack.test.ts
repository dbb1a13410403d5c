import { assert, describe, it } from "@effect/vitest"
import * as Tokens from "../src/Tokens.ts"
import { estimateTokens, HoldBack, type Verdict } from "../src/internal/holdBack.ts"

const unsafe = "UNSAFE-SPAN"
const check = (text: string): Verdict | undefined =>
  text.includes(unsafe) ? { action: "block", category: "test" } : undefined

/** Pushes `pieces`; answers what was released and whether it stopped. */
const run = (window: number, pieces: ReadonlyArray<string>) => {
  const holdBack = new HoldBack<string>(window, check)
  const released: Array<string> = []
  let maxHeldTokens = 0
  for (const [i, piece] of pieces.entries()) {
    const step = holdBack.push(piece, piece)
    if (step._tag === "Stop") return { released, stopped: step.verdict, maxHeldTokens }
    released.push(...step.items)
    // What is held after this push: the pieces pushed and not released.
    maxHeldTokens = Math.max(maxHeldTokens, Tokens.countText(pieces.slice(released.length, i + 1).join("")))
  }
  const end = holdBack.end(pieces.join(""))
  if (end._tag === "Stop") return { released, stopped: end.verdict, maxHeldTokens }
  released.push(...end.items)
  return { released, stopped: undefined, maxHeldTokens }
}

const words = (text: string) => text.split(/(?<= )/)

describe("hold-back window", () => {
  const answer =
    "Here is some general advice about sleep hygiene. Keep a regular schedule, avoid screens before bed, keep the room dark and cool, and limit caffeine after noon. Exercise helps too, but not right before bedtime. If problems persist for weeks, talk to a doctor."

  it("releases everything, in order, when the answer is safe", () => {
    const result = run(48, words(answer))
    assert.isUndefined(result.stopped)
    assert.strictEqual(result.released.join(""), answer)
  })

  it("stops before any part of the unsafe span is released", () => {
    const text = `${answer} Then ${unsafe} follows, and more text after it.`
    // Pieces of a few characters, as a model streams them: the span arrives across several pieces.
    const pieces = text.match(/.{1,3}/gs) ?? []
    const result = run(48, pieces)
    assert.deepStrictEqual(result.stopped, { action: "block", category: "test" })
    const client = result.released.join("")
    assert.notInclude(client, "UNSAF")
    assert.isTrue(text.startsWith(client))
    // What was held back is less than the window: the client got everything up to it.
    assert.isAtLeast(client.length, text.indexOf(unsafe) - 48 * 4)
  })

  it("stops a span that only the end check sees", () => {
    const holdBack = new HoldBack<string>(48, (_text, final) =>
      final ? { action: "refuse", category: "end" } : undefined
    )
    assert.deepStrictEqual(holdBack.push("short answer", "short answer"), { _tag: "Release", items: [] })
    assert.deepStrictEqual(holdBack.end("short answer"), {
      _tag: "Stop",
      verdict: { action: "refuse", category: "end" }
    })
  })

  it("holds fewer than 64 real tokens with the largest window, English and Chinese", () => {
    const chinese =
      "这是关于睡眠卫生的一般建议。保持规律的作息，睡前避免使用电子屏幕，保持房间黑暗凉爽，中午以后少喝咖啡。".repeat(3)
    for (const text of [answer.repeat(3), chinese]) {
      const pieces = text.match(/.{1,4}/gs) ?? []
      const result = run(63, pieces)
      assert.isUndefined(result.stopped)
      assert.isBelow(result.maxHeldTokens, 64 + Tokens.countText(pieces[0] ?? ""))
    }
  })

  it("estimates at least as many tokens as o200k_base counts", () => {
    for (const text of [
      answer,
      "这是关于睡眠卫生的一般建议。",
      "Take 10 tablets of 500 mg paracetamol every 4 hours."
    ]) {
      assert.isAtLeast(estimateTokens(text), Tokens.countText(text), text)
    }
  })

  it("releases events that carry no text with the text around them, in order", () => {
    const holdBack = new HoldBack<string>(4, check)
    const out: Array<string> = []
    for (const [item, text] of [
      ["role", ""],
      ["a", "aaaaaaaaaaaa"],
      ["b", "bbbbbbbbbbbb"],
      ["c", "cccccccccccc"]
    ] as const) {
      const step = holdBack.push(item, text)
      if (step._tag === "Release") out.push(...step.items)
    }
    const end = holdBack.end("")
    if (end._tag === "Release") out.push(...end.items)
    assert.deepStrictEqual(out, ["role", "a", "b", "c"])
  })
})
