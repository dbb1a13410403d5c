/**
 * Task types: what a prompt asks for, so that `model: "auto"` can send it to the model or route
 * that `routing.auto` names for that kind of work. `detect` decides by fast rules, with no model
 * call; `classify` asks a small classifier model (`routing.classifier`) and falls back to the
 * rules whenever the answer is unusable. The detected type is stored with the assistant message
 * of the turn (`Message.task_type`).
 */
import * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as LanguageModel from "effect/ai/LanguageModel"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { CallOptions } from "./CallOptions.ts"
import { signals } from "./internal/taskRules.ts"

/** The kinds of work `routing.auto` maps to models or routes. */
export const TaskType = Schema.Literals([
  "code",
  "reasoning",
  "chat",
  "translation",
  "chinese",
  "medical",
  "summarisation",
  "math"
])
export type TaskType = typeof TaskType.Type

const isTaskType = Schema.is(TaskType)

/**
 * The task type of `text` by fast rules, with no model call: microseconds for a few KB of text
 * (a prompt longer than 12,000 characters is read at its head and tail). `"chat"` when nothing
 * else matches.
 *
 * When to use: for every `model: "auto"` request without a classifier, and as the classifier's
 * fallback.
 *
 * Details: the first of these that matches wins —
 * 1. `translation`: "translate … into", "how do you say … in French", "… in Spanish?", 翻译/译成,
 *    "用英文怎么说" — whatever the text to translate is about (code translated to another
 *    programming language is `code`);
 * 2. `summarisation`: summarise/summarize/tl;dr/key points/总结/概括/摘要 with enough text to
 *    summarise (400 characters, 120 for Chinese);
 * 3. `code`: fences, stack traces, syntax of common languages, shell commands, or a technology
 *    named together with a coding word (also 代码, 报错, 编程…);
 * 4. `medical`: symptoms, dosage, medication names, diagnosis, illnesses (also in Chinese);
 * 5. `math`: arithmetic and equations, math notation, or a math word with a number or variable;
 * 6. `reasoning`, strong signals: step by step, prove, puzzle, riddle, pros and cons, 证明, 推理;
 * 7. `chinese`: most letters are Chinese characters (Japanese and Korean are not);
 * 8. `reasoning`, weak signals: a "why" question;
 * 9. `chat`.
 *
 * Gotchas: rules are heuristics; a classifier model (`classify`) handles what they miss.
 */
export const detect = (text: string): TaskType => {
  const is = signals(text)
  if (is.translation()) return "translation"
  if (is.summarisation()) return "summarisation"
  if (is.code()) return "code"
  if (is.medical()) return "medical"
  if (is.math()) return "math"
  if (is.reasoningStrong()) return "reasoning"
  if (is.isChinese()) return "chinese"
  if (is.reasoningWeak()) return "reasoning"
  return "chat"
}

/** The instruction the classifier model gets. */
export const classifierInstruction =
  `Classify the user's request into exactly one task type: ${TaskType.literals.join(", ")}. ` +
  `"chinese" means a request written in Chinese that is none of the others. ` +
  "Answer with the task type only, one lowercase word, nothing else."

/** The most of the prompt the classifier reads: its start says what is asked. */
const classifierInputChars = 2_000
/** Room for one word and some slack; a longer answer is not a type anyway. */
const classifierMaxTokens = 8

/** The task type an answer names, accepting case, punctuation, quotes and "summarization". */
export const parseAnswer = (answer: string): TaskType | undefined => {
  const word = answer
    .trim()
    .toLowerCase()
    .replace(/^["'`*\s]+|["'`*.!\s]+$/g, "")
    .replace(/summarization/, "summarisation")
  return isTaskType(word) ? word : undefined
}

/**
 * The task type of `text` as the classifier model `languageModel` names it: a short
 * instruction, the prompt's first 2,000 characters, at most 8 tokens, within `timeout`.
 *
 * When to use: for `model: "auto"` when `routing.classifier.model` is set.
 *
 * Details: anything unusable — a failed call, a timeout, an answer that is not one of the types
 * — falls back to {@link detect} and logs a warning with the reason (never the prompt or the
 * provider's text). Never fails.
 *
 * Gotchas: it adds the classifier's latency to the turn; keep `timeout` small.
 */
export const classify = Effect.fn("TaskType.classify")(function* (
  languageModel: LanguageModel.LanguageModel,
  text: string,
  options: { readonly timeout: Duration.Duration }
): Effect.fn.Return<TaskType> {
  const answer = yield* languageModel
    .generateText({
      prompt: [
        { role: "system", content: classifierInstruction },
        { role: "user", content: text.slice(0, classifierInputChars) }
      ]
    })
    .pipe(
      Effect.provideService(CallOptions, { maxTokens: classifierMaxTokens, temperature: 0 }),
      Effect.timeout(options.timeout),
      Effect.result
    )
  if (Result.isFailure(answer)) {
    const reason = Cause.isTimeoutError(answer.failure) ? "timeout" : answer.failure.reason._tag
    yield* Effect.logWarning("TaskType: the classifier failed; using the rules", { reason })
    return detect(text)
  }
  const type = parseAnswer(answer.success.text)
  if (type !== undefined) return type
  yield* Effect.logWarning("TaskType: the classifier named no task type; using the rules")
  return detect(text)
})
