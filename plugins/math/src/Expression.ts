/**
 * Arithmetic expressions as a model writes them ("2 * (3 + 4)^2", "sqrt(2) / 2", "max(1, pi)"),
 * read without `eval` or `Function`: the tokens of `Tokenizer.ts`, a recursive-descent parser to a
 * small syntax tree, and an evaluator over JavaScript numbers. The only names are the constants and
 * functions listed here, looked up in `Map`s, so nothing reaches a JavaScript object's
 * properties (`constructor`, `__proto__`). Input is bounded in length and nesting, every
 * intermediate value must be a finite real number, and every error names the character
 * position (counted from 0) where it arose. Pure: failures are returned as a `Result`.
 */
import { Result, Schema } from "effect"
import { type BinaryOperator, type Punctuator, type Token, tokenize } from "./Tokenizer.ts"

export type { BinaryOperator } from "./Tokenizer.ts"

/** Longest expression accepted, in UTF-16 code units. */
export const maxLength = 1000

/** Deepest nesting accepted: parentheses, function calls, unary signs and powers each add a level. */
export const maxDepth = 64

/** Why an expression was refused; `message` ends with the position, `position` counts from 0. */
export class ExpressionError extends Schema.TaggedError<ExpressionError>()("ExpressionError", {
  message: Schema.String,
  position: Schema.Int
}) {}

/** A parsed expression; constants are already replaced by their values. */
export type Expression =
  | { readonly _tag: "Literal"; readonly value: number; readonly position: number }
  | { readonly _tag: "Negate"; readonly operand: Expression; readonly position: number }
  | {
      readonly _tag: "Binary"
      readonly operator: BinaryOperator
      readonly left: Expression
      readonly right: Expression
      readonly position: number
    }
  | {
      readonly _tag: "Call"
      readonly name: string
      readonly fn: MathFunction
      readonly args: ReadonlyArray<Expression>
      readonly position: number
    }

/** A function callable from an expression; `arity` is checked when parsing. */
export interface MathFunction {
  readonly arity: { readonly min: number; readonly max: number }
  readonly apply: (...args: ReadonlyArray<number>) => number
}

const unary = (apply: (x: number) => number): MathFunction => ({ arity: { min: 1, max: 1 }, apply })
const binary = (apply: (x: number, y: number) => number): MathFunction => ({ arity: { min: 2, max: 2 }, apply })
const variadic = (apply: (...xs: ReadonlyArray<number>) => number): MathFunction => ({
  arity: { min: 1, max: Number.POSITIVE_INFINITY },
  apply
})

/** The constants, by lower-case name (names are matched case-insensitively). */
export const constants: ReadonlyMap<string, number> = new Map([
  ["pi", Math.PI],
  ["e", Math.E]
])

/** The functions, by lower-case name. Angles are in radians; `round` rounds halves away from zero. */
export const functions: ReadonlyMap<string, MathFunction> = new Map([
  ["sqrt", unary(Math.sqrt)],
  ["abs", unary(Math.abs)],
  ["round", unary((x) => Math.sign(x) * Math.round(Math.abs(x)))],
  ["floor", unary(Math.floor)],
  ["ceil", unary(Math.ceil)],
  ["trunc", unary(Math.trunc)],
  ["sign", unary(Math.sign)],
  ["exp", unary(Math.exp)],
  ["ln", unary(Math.log)],
  ["log10", unary(Math.log10)],
  ["log2", unary(Math.log2)],
  ["sin", unary(Math.sin)],
  ["cos", unary(Math.cos)],
  ["tan", unary(Math.tan)],
  ["asin", unary(Math.asin)],
  ["acos", unary(Math.acos)],
  ["atan", unary(Math.atan)],
  ["atan2", binary(Math.atan2)],
  ["hypot", binary(Math.hypot)],
  ["min", variadic(Math.min)],
  ["max", variadic(Math.max)]
])

const knownNames = [...constants.keys(), ...functions.keys()].join(", ")

const fail = (message: string, position: number) =>
  new ExpressionError({ message: `${message} at ${position}`, position })

// ---------------------------------------------------------------------------------------------
// parser
//
//   sum     := product (("+" | "-") product)*
//   product := unary (("*" | "/" | "%") unary)*
//   unary   := ("+" | "-") unary | power
//   power   := primary ("^" unary)?          right-associative; -2^2 = -(2^2), 2^-1 = 0.5
//   primary := number | constant | function "(" sum ("," sum)* ")" | "(" sum ")"

type Parsed = Expression | ExpressionError

const isError = (u: Parsed): u is ExpressionError => u instanceof ExpressionError

const describe = (token: Token): string => (token._tag === "End" ? "end of expression" : JSON.stringify(token.text))

const isSymbol = (token: Token, ...wanted: ReadonlyArray<Punctuator>): boolean =>
  token._tag === "Symbol" && wanted.includes(token.symbol)

const unexpected = (token: Token): ExpressionError => fail(`unexpected ${describe(token)}`, token.position)

/**
 * Parses `input` into an {@link Expression}. Fails on anything but the grammar above: unknown
 * names, wrong numbers of arguments, input over {@link maxLength} characters or nested deeper
 * than {@link maxDepth}.
 */
export const parse = (input: string): Result.Result<Expression, ExpressionError> => {
  if (input.length > maxLength) {
    return Result.fail(
      new ExpressionError({
        message: `expression is ${input.length} characters long, more than the ${maxLength} allowed`,
        position: maxLength
      })
    )
  }
  const tokenized = tokenize(input)
  if (Result.isFailure(tokenized)) return Result.fail(fail(tokenized.failure.message, tokenized.failure.position))
  const tokens = tokenized.success
  const end = tokens[tokens.length - 1] ?? { _tag: "End", position: input.length }
  let index = 0
  let depth = 0

  const peek = (): Token => tokens[index] ?? end
  const expect = (symbol: Punctuator): ExpressionError | undefined => {
    const token = peek()
    if (isSymbol(token, symbol)) {
      index++
      return undefined
    }
    return fail(`expected ${JSON.stringify(symbol)} but found ${describe(token)}`, token.position)
  }
  // Runs `parseInner` one nesting level deeper, refusing to go past `maxDepth`.
  const nested = (position: number, parseInner: () => Parsed): Parsed => {
    if (depth >= maxDepth) return fail(`expression is nested more than ${maxDepth} levels deep`, position)
    depth++
    const inner = parseInner()
    depth--
    return inner
  }

  const parseLeftAssociative = (operators: ReadonlyArray<BinaryOperator>, parseOperand: () => Parsed): Parsed => {
    let left = parseOperand()
    for (;;) {
      if (isError(left)) return left
      const token = peek()
      const operator = token._tag === "Symbol" ? operators.find((operator) => operator === token.symbol) : undefined
      if (operator === undefined) return left
      index++
      const right = parseOperand()
      if (isError(right)) return right
      left = { _tag: "Binary", operator, left, right, position: token.position }
    }
  }

  const parseSum = (): Parsed => parseLeftAssociative(["+", "-"], parseProduct)
  const parseProduct = (): Parsed => parseLeftAssociative(["*", "/", "%"], parseUnary)

  const parseUnary = (): Parsed => {
    const token = peek()
    if (!isSymbol(token, "+", "-")) return parsePower()
    index++
    const operand = nested(token.position, parseUnary)
    if (isError(operand) || isSymbol(token, "+")) return operand
    return { _tag: "Negate", operand, position: token.position }
  }

  const parsePower = (): Parsed => {
    const base = parsePrimary()
    const token = peek()
    if (isError(base) || !isSymbol(token, "^")) return base
    index++
    const exponent = nested(token.position, parseUnary)
    if (isError(exponent)) return exponent
    return { _tag: "Binary", operator: "^", left: base, right: exponent, position: token.position }
  }

  const parsePrimary = (): Parsed => {
    const token = peek()
    switch (token._tag) {
      case "Number":
        index++
        return { _tag: "Literal", value: token.value, position: token.position }
      case "Name":
        index++
        return parseName(token.text, token.position)
      case "Symbol":
        if (token.symbol !== "(") return unexpected(token)
        index++
        return nested(token.position, () => {
          const inner = parseSum()
          return isError(inner) ? inner : (expect(")") ?? inner)
        })
      case "End":
        return unexpected(token)
    }
  }

  const parseName = (name: string, position: number): Parsed => {
    const key = name.toLowerCase()
    const constant = constants.get(key)
    if (constant !== undefined) return { _tag: "Literal", value: constant, position }
    const fn = functions.get(key)
    if (fn === undefined) return fail(`unknown name ${JSON.stringify(name)} (known: ${knownNames})`, position)
    const open = peek()
    if (!isSymbol(open, "(")) {
      return fail(`expected "(" after function ${key} but found ${describe(open)}`, open.position)
    }
    index++
    return nested(open.position, () => {
      const args: Array<Expression> = []
      if (isSymbol(peek(), ")")) {
        index++
      } else {
        for (;;) {
          const arg = parseSum()
          if (isError(arg)) return arg
          args.push(arg)
          const separator = peek()
          if (isSymbol(separator, ",")) {
            index++
            continue
          }
          if (isSymbol(separator, ")")) {
            index++
            break
          }
          return fail(`expected "," or ")" but found ${describe(separator)}`, separator.position)
        }
      }
      if (args.length < fn.arity.min || args.length > fn.arity.max) {
        return fail(`${key} takes ${arityText(fn)}, got ${args.length}`, position)
      }
      return { _tag: "Call", name: key, fn, args, position }
    })
  }

  const expression = parseSum()
  if (isError(expression)) return Result.fail(expression)
  const rest = peek()
  if (rest._tag !== "End") return Result.fail(unexpected(rest))
  return Result.succeed(expression)
}

const plural = (n: number) => (n === 1 ? "argument" : "arguments")

const arityText = (fn: MathFunction): string => {
  const { min, max } = fn.arity
  if (max === Number.POSITIVE_INFINITY) return `at least ${min} ${plural(min)}`
  return `${max} ${plural(max)}`
}

// ---------------------------------------------------------------------------------------------
// evaluation

type Evaluated = number | ExpressionError

const logarithms: ReadonlySet<string> = new Set(["ln", "log10", "log2"])

const applyBinary = (operator: BinaryOperator, left: number, right: number): number => {
  switch (operator) {
    case "+":
      return left + right
    case "-":
      return left - right
    case "*":
      return left * right
    case "/":
      return left / right
    case "%":
      return left % right
    case "^":
      return left ** right
  }
}

const evaluateNode = (node: Expression): Evaluated => {
  switch (node._tag) {
    case "Literal":
      return node.value
    case "Negate": {
      const operand = evaluateNode(node.operand)
      return typeof operand === "number" ? -operand : operand
    }
    case "Binary": {
      const left = evaluateNode(node.left)
      if (typeof left !== "number") return left
      const right = evaluateNode(node.right)
      if (typeof right !== "number") return right
      const dividesByZero =
        ((node.operator === "/" || node.operator === "%") && right === 0) ||
        (node.operator === "^" && left === 0 && right < 0)
      if (dividesByZero) return fail("division by zero", node.position)
      const value = applyBinary(node.operator, left, right)
      const text = `${left} ${node.operator} ${right}`
      if (Number.isNaN(value)) return fail(`${text} is not a real number`, node.position)
      if (!Number.isFinite(value)) return fail(`overflow: ${text} is too large`, node.position)
      return value
    }
    case "Call": {
      const args: Array<number> = []
      for (const arg of node.args) {
        const value = evaluateNode(arg)
        if (typeof value !== "number") return value
        args.push(value)
      }
      const value = node.fn.apply(...args)
      const text = `${node.name}(${args.join(", ")})`
      if (Number.isNaN(value)) return fail(`${text} is not a real number`, node.position)
      if (value === Number.NEGATIVE_INFINITY && logarithms.has(node.name)) {
        return fail(`${text} is undefined (minus infinity)`, node.position)
      }
      if (!Number.isFinite(value)) return fail(`overflow: ${text} is too large`, node.position)
      return value
    }
  }
}

/** Evaluates a parsed expression; fails on division by zero, overflow and results that are not real. */
export const evaluate = (expression: Expression): Result.Result<number, ExpressionError> => {
  const value = evaluateNode(expression)
  return typeof value === "number" ? Result.succeed(value) : Result.fail(value)
}

/**
 * Parses and evaluates `input`. A result that is not an integer is rounded to 15 significant
 * digits, as calculators do, so `0.1 + 0.2` gives `0.3`; integers are left exact.
 */
export const calculate = (input: string): Result.Result<number, ExpressionError> =>
  Result.flatMap(parse(input), evaluate).pipe(
    // `+ 0` turns -0 into 0.
    Result.map((value) => (Number.isInteger(value) ? value + 0 : Number(value.toPrecision(15))))
  )
