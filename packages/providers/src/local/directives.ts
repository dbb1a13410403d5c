/**
 * The tool-call directives the offline `local` model obeys: `call <tool_name>(<json object>)` in a
 * user message, e.g. `please call calculate({"expression":"2+2"}) and call current_time({})`. The
 * keyword is matched case-insensitively as a whole word, the tool name is `[A-Za-z_][A-Za-z0-9_.-]*`,
 * and the argument must be one JSON object (strings may contain parentheses and braces). Parsing is
 * total: text that starts like a directive but has no JSON object argument is returned as a
 * malformed directive, so the model can say why it ignored it instead of failing.
 */
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/** The argument of a well-formed directive: the parsed JSON object and its compact JSON text. */
export interface Argument {
  readonly params: { readonly [key: string]: unknown }
  readonly json: string
}

/** One `call name(…)` found in a message; `argument` is `None` when it is not a JSON object. */
export interface Directive {
  readonly name: string
  readonly argument: Option.Option<Argument>
}

const decodeJson = Schema.decodeUnknownOption(Schema.fromJsonString(Schema.Unknown))

/**
 * Every directive in `text`, in order of appearance. After a well-formed directive the scan goes
 * on after its `)`, so a `call …(` quoted inside its JSON strings is not a directive; after a
 * malformed one it goes on after its opening parenthesis.
 */
export const parseDirectives = (text: string): Array<Directive> => {
  // `call` as a whole word, the tool name, then the opening parenthesis. A fresh RegExp per call,
  // because a global one carries its scan position in `lastIndex`.
  const start = /\bcall\s+([A-Za-z_][\w.-]*)\s*\(/giu
  const directives: Array<Directive> = []
  for (let match = start.exec(text); match !== null; match = start.exec(text)) {
    const found = objectArgument(text, start.lastIndex)
    directives.push({ name: match[1] ?? "", argument: Option.map(found, ({ argument }) => argument) })
    if (Option.isSome(found)) start.lastIndex = found.value.end
  }
  return directives
}

/**
 * The JSON object starting at `from` (after whitespace), parsed, and the index after the `)` that
 * must follow it. Braces inside JSON strings do not count.
 */
const objectArgument = (
  text: string,
  from: number
): Option.Option<{ readonly argument: Argument; readonly end: number }> => {
  const open = skipSpaces(text, from)
  if (text[open] !== "{") return Option.none()
  let depth = 0
  let inString = false
  for (let index = open; index < text.length; index++) {
    const char = text[index]
    if (inString) {
      if (char === "\\") index++
      else if (char === '"') inString = false
    } else if (char === '"') {
      inString = true
    } else if (char === "{") {
      depth++
    } else if (char === "}" && --depth === 0) {
      const close = skipSpaces(text, index + 1)
      if (text[close] !== ")") return Option.none()
      return decodeJson(text.slice(open, index + 1)).pipe(
        Option.filter(Predicate.isObject),
        Option.map((params) => ({ argument: { params, json: JSON.stringify(params) }, end: close + 1 }))
      )
    }
  }
  return Option.none()
}

const skipSpaces = (text: string, from: number): number => {
  let index = from
  while (index < text.length && /\s/u.test(text[index] ?? "")) index++
  return index
}

/**
 * `json` cut into at most `pieces` consecutive parts (by code point, never splitting a surrogate
 * pair) that concatenate back to it: the `tool-params-delta`s of a streamed call.
 */
export const splitJson = (json: string, pieces = 3): Array<string> => {
  const chars = Array.from(json)
  const size = Math.max(1, Math.ceil(chars.length / pieces))
  const parts: Array<string> = []
  for (let index = 0; index < chars.length; index += size) {
    parts.push(chars.slice(index, index + size).join(""))
  }
  return parts
}
