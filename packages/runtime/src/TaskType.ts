/** TEMPORARY (replaced by the `experiments` branch): task types and their detection. */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as LanguageModel from "effect/ai/LanguageModel"
import * as Schema from "effect/Schema"

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

export const detect = (text: string): TaskType => (/```|\bfunction\b|\bdef\b/.test(text) ? "code" : "chat")

export const classify = (
  _languageModel: LanguageModel.LanguageModel,
  text: string,
  _options: { readonly timeout: Duration.Duration }
): Effect.Effect<TaskType> => Effect.succeed(detect(text))
