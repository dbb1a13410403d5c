/**
 * The first step of reading an arithmetic expression (see `Expression.ts`): splitting it into
 * numbers, names and punctuation, with `**` read as `^`. It knows neither the grammar nor the
 * names of constants and functions; `Expression.parse` does. Every token and every failure
 * carries the character position (counted from 0) where it starts. Pure: failures are
 * returned as a `Result`.
 */
import { Result } from "effect"

/** A binary operator; `**` is read as `^`. */
export type BinaryOperator = "+" | "-" | "*" | "/" | "%" | "^"

/** The symbols an expression may contain besides numbers and names. */
export type Punctuator = BinaryOperator | "(" | ")" | ","

/** One token of an expression; `text` is what the input says, `**` included. */
export type Token =
  | { readonly _tag: "Number"; readonly text: string; readonly value: number; readonly position: number }
  | { readonly _tag: "Name"; readonly text: string; readonly position: number }
  | { readonly _tag: "Symbol"; readonly text: string; readonly symbol: Punctuator; readonly position: number }
  | { readonly _tag: "End"; readonly position: number }

/**
 * Why an input could not be split into tokens. `message` does not name the position; the
 * caller words it into its own error, as `Expression.parse` does.
 */
export interface TokenizeFailure {
  readonly message: string
  readonly position: number
}

const numberPattern = /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y
const namePattern = /[A-Za-z_][A-Za-z0-9_]*/y
const whitespacePattern = /\s+/y
const punctuators: ReadonlyMap<string, Punctuator> = new Map<string, Punctuator>([
  ["**", "^"],
  ["+", "+"],
  ["-", "-"],
  ["*", "*"],
  ["/", "/"],
  ["%", "%"],
  ["^", "^"],
  ["(", "("],
  [")", ")"],
  [",", ","]
])

const matchAt = (pattern: RegExp, input: string, position: number): string | undefined => {
  pattern.lastIndex = position
  return pattern.exec(input)?.[0]
}

/**
 * Splits `input` into tokens, ending with an `End` token at `input.length`. Fails on the first
 * character that starts no token, and on a number too large to be finite.
 */
export const tokenize = (input: string): Result.Result<ReadonlyArray<Token>, TokenizeFailure> => {
  const tokens: Array<Token> = []
  let position = 0
  while (position < input.length) {
    const space = matchAt(whitespacePattern, input, position)
    if (space !== undefined) {
      position += space.length
      continue
    }
    const number = matchAt(numberPattern, input, position)
    if (number !== undefined) {
      const value = Number(number)
      if (!Number.isFinite(value)) return Result.fail({ message: `number ${number} is too large`, position })
      tokens.push({ _tag: "Number", text: number, value, position })
      position += number.length
      continue
    }
    const name = matchAt(namePattern, input, position)
    if (name !== undefined) {
      tokens.push({ _tag: "Name", text: name, position })
      position += name.length
      continue
    }
    const text = input.startsWith("**", position) ? "**" : input.charAt(position)
    const symbol = punctuators.get(text)
    if (symbol === undefined) {
      const character = String.fromCodePoint(input.codePointAt(position) ?? 0)
      return Result.fail({ message: `unexpected character ${JSON.stringify(character)}`, position })
    }
    tokens.push({ _tag: "Symbol", text, symbol, position })
    position += text.length
  }
  tokens.push({ _tag: "End", position: input.length })
  return Result.succeed(tokens)
}
