/**
 * Tokens: `o200k_base` counts that match OpenAI's chat accounting, for effect/ai prompts in both
 * their encoded and decoded forms and for stored messages; special-token text counted as text.
 */
import { assert, describe, it } from "@effect/vitest"
import { Prompt } from "effect/ai"
import { countTokens, encodeChat } from "gpt-tokenizer/encoding/o200k_base"
import { type Message, unset } from "../src/Message.ts"
import * as Tokens from "../src/Tokens.ts"

// Text messages in the shape both effect/ai and gpt-tokenizer's `encodeChat` take.
const chat: ReadonlyArray<{ readonly role: "system" | "user" | "assistant"; readonly content: string }> = [
  { role: "system", content: "You are a terse assistant." },
  { role: "user", content: "What is the capital of France?" },
  { role: "assistant", content: "Paris." },
  { role: "user", content: "And of Italy? Answer in one word, please." }
]

const stored = (role: Message["role"], content: string, seq: number): Message => ({
  id: `msg_${seq}`,
  seq,
  role,
  content,
  ...unset,
  created_at: "2025-01-01T00:00:00.000Z"
})

/** What a message costs whose content is counted as `text`. */
const framed = (role: string, text: string) => Tokens.tokensPerMessage + Tokens.countText(role) + Tokens.countText(text)

describe("Tokens", () => {
  it("counts text with o200k_base", () => {
    assert.strictEqual(Tokens.countText(""), 0)
    assert.strictEqual(Tokens.countText("hello world"), 2)
  })

  it("counts a text again the same, however many texts were counted in between", () => {
    const texts = Array.from({ length: 2_000 }, (_, i) => `text number ${i} ${"word ".repeat(i % 50)}`)
    const first = texts.map(Tokens.countText)
    // Enough text to push the first ones out of the remembered counts.
    const filler = "x y z ".repeat(Tokens.countCacheChars / 64)
    for (let i = 0; i < 20; i++) Tokens.countText(`${i} ${filler}`)
    assert.deepStrictEqual(texts.map(Tokens.countText), first)
    assert.deepStrictEqual(texts.map(Tokens.countText), first)
    assert.strictEqual(first[1], countTokens("text number 1 word "))
  })

  it("counts text that spells a special token as plain text instead of failing", () => {
    const count = Tokens.countText("ignore <|endoftext|> and <|im_start|>")
    assert.isAbove(count, 4)
  })

  it("counts a text conversation exactly as OpenAI's chat format does", () => {
    assert.strictEqual(Tokens.countMessages(chat), encodeChat(chat, "gpt-4o").length)
  })

  it("counts decoded prompt messages the same as their encoded form", () => {
    assert.strictEqual(Tokens.countMessages(Prompt.make(chat).content), Tokens.countMessages(chat))
    assert.strictEqual(
      Tokens.countMessage({ role: "user", content: "one two three" }),
      Tokens.countMessage({ role: "user", content: [{ type: "text", text: "one two three" }] })
    )
  })

  it("is the reply priming plus the count of each message", () => {
    const each = chat.reduce((total, message) => total + Tokens.countMessage(message), 0)
    assert.strictEqual(Tokens.countMessages(chat), Tokens.replyPriming + each)
    assert.strictEqual(Tokens.countMessages([]), Tokens.replyPriming)
    assert.strictEqual(
      Tokens.countMessage({ role: "user", content: "hello world" }),
      Tokens.tokensPerMessage + Tokens.countText("user") + 2
    )
  })

  it("counts tool calls and results by name and JSON, files by name only", () => {
    const call: Prompt.MessageEncoded = {
      role: "assistant",
      content: [{ type: "tool-call", id: "c1", name: "get_weather", params: { city: "Paris" } }]
    }
    const result: Prompt.MessageEncoded = {
      role: "tool",
      content: [{ type: "tool-result", id: "c1", name: "get_weather", isFailure: false, result: { celsius: 21 } }]
    }
    assert.strictEqual(Tokens.countMessage(call), framed("assistant", 'get_weather {"city":"Paris"}'))
    assert.strictEqual(Tokens.countMessage(result), framed("tool", 'get_weather {"celsius":21}'))
    const file: Prompt.MessageEncoded = {
      role: "user",
      content: [{ type: "file", mediaType: "image/png", fileName: "cat.png", data: "iVBORw0KGgo=".repeat(1000) }]
    }
    assert.strictEqual(Tokens.countMessage(file), framed("user", "cat.png"))
  })

  it("counts stored messages like the prompt messages they become", () => {
    const messages = chat.map((message, index) => stored(message.role, message.content, index + 1))
    assert.strictEqual(Tokens.countStored(messages), Tokens.countMessages(chat))
  })

  it("truncates text to a number of tokens, keeping short text whole", () => {
    const text = "The quick brown fox jumps over the lazy dog. ".repeat(20)
    const cut = Tokens.truncateText(text, 10)
    assert.strictEqual(Tokens.countText(cut), 10)
    assert.isTrue(text.startsWith(cut))
    assert.strictEqual(Tokens.truncateText("short", 10), "short")
    assert.strictEqual(Tokens.truncateText("日本語のテキスト", 2).includes("\uFFFD"), false)
  })
})
