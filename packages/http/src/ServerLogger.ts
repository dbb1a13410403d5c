/**
 * How the server's log lines look and which ones are written: `log.level` (`LOG_LEVEL`) filters,
 * `log.format` (`LOG_FORMAT`) picks one of two one-line formats, and every line goes to stdout
 * (failures included, so lines stay in the order they happened; only the start-up failure that
 * stops the process is written to stderr, by `bin.ts`).
 *
 * - `text`: `2026-12-03T14:10:21.160Z INFO request method=POST route=/v1/chat status=200 …` — the
 *   time, the level, the message, then each annotation as `key=value`, quoted as JSON when the
 *   value has spaces, quotes or `=`, so a line never breaks, whatever a value holds.
 * - `json`: `{"timestamp":"…","level":"info","message":"request","method":"POST",…}` — one object
 *   per line, the annotations as top-level fields (they never replace `timestamp`, `level`,
 *   `message` or `cause`).
 *
 * A failure's cause goes into a `cause` field (Effect's pretty rendering, on one line). Log spans
 * and fiber ids are left out.
 *
 * Redaction (`Redaction.ts`): the message, every annotation and the cause are masked for personal
 * data (e-mails, phones, national ids, cards) unless `redaction.logs` is false; an annotation, or a
 * field of a logged object at any depth, named like a sensitive field (`api_key`, `signing_secret`,
 * `password`, …) is always written as `[redacted]`.
 */
import * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Formatter from "effect/Formatter"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import type * as LogLevel from "effect/LogLevel"
import * as References from "effect/References"
import { type AppConfig, Redaction } from "@polyagent/runtime"

/** The `log` section of the configuration. */
export type Settings = AppConfig.AppConfigValue["log"]

/** What a line masks: personal data in text (unless turned off) and the values of sensitive fields. */
export interface Masking {
  readonly text: boolean
  readonly sensitiveKeys: ReadonlySet<string>
}

/** Personal data masked, and the fields every schema of the server marks sensitive. */
export const defaultMasking: Masking = { text: true, sensitiveKeys: Redaction.SensitiveKeys() }

const maskText = (masking: Masking, text: string): string => (masking.text ? Redaction.redactText(text) : text)

/** An annotation's value as it may be written. */
const maskValue = (masking: Masking, key: string, value: unknown): unknown => {
  if (masking.sensitiveKeys.has(key)) return Redaction.hidden
  if (typeof value === "string") return maskText(masking, value)
  if (typeof value !== "object" || value === null) return value
  return Redaction.redactValue(value, masking.sensitiveKeys, masking.text)
}

const minimumLevel: Record<Settings["level"], LogLevel.LogLevel> = {
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  error: "Error"
}

const levelName: Record<LogLevel.LogLevel, string> = {
  All: "all",
  Trace: "trace",
  Debug: "debug",
  Info: "info",
  Warn: "warn",
  Error: "error",
  Fatal: "fatal",
  None: "none"
}

/** The message parts of one log call as one string (non-strings on one line). */
const messageText = (message: unknown): string => {
  if (typeof message === "string") return message
  const parts = Arr.ensure(message)
  let text = ""
  for (const part of parts) {
    const piece = typeof part === "string" ? part : Formatter.format(part)
    text = text === "" ? piece : `${text} ${piece}`
  }
  return text
}

const isPrimitive = (value: unknown): value is string | number | boolean =>
  typeof value === "string" || typeof value === "number" || typeof value === "boolean"

// Values that need no quotes in a text line: no spaces, quotes, `=`, control or non-ASCII characters.
const bare = /^[\w.,:/@+\-[\]*#%&()]+$/

const textValue = (value: unknown): string => {
  if (typeof value === "number" || typeof value === "boolean") return String(value)
  const text =
    typeof value === "string"
      ? value
      : Array.isArray(value) && value.every(isPrimitive)
        ? value.length === 0
          ? "[]"
          : value.join(",")
        : Formatter.format(value)
  return bare.test(text) ? text : JSON.stringify(text)
}

// A message is shown as it is unless a control character (a line break…) would break the line.
const control = /\p{Cc}/u

const textKey = (key: string): string => key.replace(/[^\w.-]/g, "_")

/** One line of the `text` format, masked by `masking`. */
export const makeFormatText = (masking: Masking) =>
  Logger.make<unknown, string>(({ cause, date, fiber, logLevel, message }) => {
    const text = maskText(masking, messageText(message))
    let line = `${date.toISOString()} ${levelName[logLevel].toUpperCase()} ${control.test(text) ? JSON.stringify(text) : text}`
    const annotations = fiber.getRef(References.CurrentLogAnnotations)
    for (const key in annotations) line += ` ${textKey(key)}=${textValue(maskValue(masking, key, annotations[key]))}`
    if (cause.reasons.length > 0) line += ` cause=${JSON.stringify(maskText(masking, Cause.pretty(cause)))}`
    return line
  })

/** One line of the `text` format, with {@link defaultMasking}. */
export const formatText = makeFormatText(defaultMasking)

const reserved = new Set(["timestamp", "level", "message", "cause"])

/** One line of the `json` format, masked by `masking`. */
export const makeFormatJson = (masking: Masking) =>
  Logger.make<unknown, string>(({ cause, date, fiber, logLevel, message }) => {
    const entry: Record<string, unknown> = {
      timestamp: date.toISOString(),
      level: levelName[logLevel],
      message: maskText(masking, messageText(message))
    }
    // Plain values (every field of a request line) take the fast path; anything else goes through
    // Effect's formatter, which survives cycles and bigints and redacts `Redacted` values.
    let plain = true
    const annotations = fiber.getRef(References.CurrentLogAnnotations)
    for (const key in annotations) {
      if (reserved.has(key)) continue
      const value = maskValue(masking, key, annotations[key])
      if (plain && !isPrimitive(value) && !(Array.isArray(value) && value.every(isPrimitive))) plain = false
      entry[key] = value
    }
    if (cause.reasons.length > 0) entry["cause"] = maskText(masking, Cause.pretty(cause))
    return plain ? JSON.stringify(entry) : Formatter.formatJson(entry)
  })

/** One line of the `json` format, with {@link defaultMasking}. */
export const formatJson = makeFormatJson(defaultMasking)

/**
 * The server's logger and minimum level, from the `log` settings: replaces Effect's default
 * logger for everything built or run under it.
 *
 * Gotchas: provide it around the whole program (`bin.ts` does), not inside `Server.layer`, so the
 * start-up summary and the shutdown lines use it too.
 */
export const layer = (
  settings: Settings,
  redaction: { readonly logs: boolean } = { logs: true }
): Layer.Layer<never> => {
  const masking: Masking = { ...defaultMasking, text: redaction.logs }
  return Layer.mergeAll(
    Logger.layer([
      Logger.withConsoleLog(settings.format === "json" ? makeFormatJson(masking) : makeFormatText(masking))
    ]),
    Layer.succeed(References.MinimumLogLevel, minimumLevel[settings.level])
  )
}
