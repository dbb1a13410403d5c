/**
 * The `word_count` tool: counts the words, characters and lines of a text, which models do
 * badly by themselves. It is the example plugin's one tool, so it shows each part of a tool:
 * Schemas for what the model sends and gets back (with descriptions the model reads and a
 * length bound it is shown), a handler that is an Effect, and a `ToolFailure` for input the
 * tool refuses. Counting follows `Intl.Segmenter`, so accents, emoji and languages written
 * without spaces (Japanese, Chinese, Thai) are counted as people count them.
 */
import { Tool } from "@polyagent/tools"
import { Effect, Schema } from "effect"

/** The longest text accepted, in UTF-16 code units; the model is shown it as `maxLength`. */
export const maxLength = 100_000

/** What the model sends. `Schema.Struct`, because models call tools with a JSON object. */
export const WordCountParameters = Schema.Struct({
  text: Schema.String.check(Schema.isMaxLength(maxLength)).annotate({ description: "The text to count" })
})

/** What the model gets back. */
export const WordCountResult = Schema.Struct({
  words: Schema.Int.annotate({ description: "Words, numbers included; punctuation is not a word" }),
  characters: Schema.Int.annotate({ description: "Characters as a reader sees them: é and 👍🏽 are one each" }),
  lines: Schema.Int.annotate({ description: "Lines; a final line break does not start another line" })
})
export type WordCountResult = typeof WordCountResult.Type

const words = new Intl.Segmenter("en", { granularity: "word" })
const graphemes = new Intl.Segmenter("en", { granularity: "grapheme" })

const countWhere = <A>(items: Iterable<A>, predicate: (item: A) => boolean): number => {
  let count = 0
  for (const item of items) if (predicate(item)) count++
  return count
}

/** Counts `text`; a pure function, so the tool's logic is tested without running the tool. */
export const count = (text: string): WordCountResult => ({
  words: countWhere(words.segment(text), (segment) => segment.isWordLike === true),
  characters: countWhere(graphemes.segment(text), () => true),
  lines: text === "" ? 0 : text.replace(/(?:\r\n|\r|\n)$/, "").split(/\r\n|\r|\n/).length
})

/**
 * Counts the words, characters and lines of a text. Needs no permissions: a tool that reaches
 * the network would declare `permissions: ["network"]` and use `SafeHttp`.
 */
export const WordCount = Tool.make("word_count", {
  description:
    "Counts the words, characters and lines of a text. Use it whenever an answer depends on the length of a text.",
  parameters: WordCountParameters,
  success: WordCountResult,
  handler: ({ text }) =>
    // Decoding has already bounded the length; this refusal is a tool's own rule, phrased for the model.
    text.trim() === ""
      ? Effect.fail(new Tool.ToolFailure({ message: "the text is empty: pass the text to count in `text`" }))
      : Effect.succeed(count(text))
})
