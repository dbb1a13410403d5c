/**
 * The small, safe expression language of workflow conditions (`when`) and templates
 * (`{{steps.analyze.output}}`): a hand-written tokenizer and a Pratt parser into a tree, and an
 * evaluator over that tree. Nothing is ever handed to `eval` or `Function`.
 *
 * What an expression may say: literals (numbers, 'strings' or "strings", `true`, `false`,
 * `null`), `input` and `steps.<name>.output` with `.field` and `[index]` after them, `.length`
 * of a string or an array, comparison (`== != < <= > >=`, strict), `&& || !`, arithmetic
 * (`+ - * / %`, `+` also joins strings) and parentheses. Nothing else is reachable: only own
 * properties of plain objects and arrays are read, and `__proto__`, `prototype` and
 * `constructor` are refused when the expression is parsed.
 */
import * as Schema from "effect/Schema"

/** A parsed expression. */
export type Expr =
  | { readonly _tag: "Literal"; readonly value: string | number | boolean | null }
  | { readonly _tag: "Input" }
  | { readonly _tag: "Step"; readonly name: string }
  | { readonly _tag: "Member"; readonly object: Expr; readonly key: string | number }
  | { readonly _tag: "Unary"; readonly op: "!" | "-"; readonly operand: Expr }
  | { readonly _tag: "Binary"; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr }

type BinaryOp = "||" | "&&" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "+" | "-" | "*" | "/" | "%"

/** What an expression is evaluated over. */
export interface Scope {
  readonly input: unknown
  /** Each finished step's output, by name. */
  readonly steps: Readonly<Record<string, unknown>>
}

/**
 * An expression that cannot be parsed, or evaluated; `message` says where and why. The parser
 * throws it internally to unwind its recursion; {@link parse} and {@link evaluate} return it.
 */
export class ExpressionError extends Schema.TaggedError<ExpressionError>()("ExpressionError", {
  reason: Schema.String
}) {
  override get message(): string {
    return this.reason
  }
}

/** The longest expression accepted, in characters. */
export const maxLength = 2_000
/** The deepest nesting of parentheses, operators and accesses accepted. */
export const maxDepth = 32

type Token =
  | { readonly kind: "number"; readonly value: number; readonly at: number }
  | { readonly kind: "string"; readonly value: string; readonly at: number }
  | { readonly kind: "ident"; readonly value: string; readonly at: number }
  | { readonly kind: "op"; readonly value: string; readonly at: number }
  | { readonly kind: "end"; readonly at: number }

const forbidden = new Set(["__proto__", "prototype", "constructor"])
const operators = ["===", "!==", "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "%", "(", ")"]
const punctuation = [".", "[", "]"]

const isDigit = (c: string) => c >= "0" && c <= "9"
const isIdentStart = (c: string) => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_" || c === "$"
const isIdent = (c: string) => isIdentStart(c) || isDigit(c)

const tokenize = (source: string): Array<Token> => {
  const tokens: Array<Token> = []
  let i = 0
  while (i < source.length) {
    const c = source.charAt(i)
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++
    } else if (isDigit(c)) {
      const start = i
      while (i < source.length && isDigit(source.charAt(i))) i++
      if (source.charAt(i) === "." && isDigit(source.charAt(i + 1))) {
        i++
        while (i < source.length && isDigit(source.charAt(i))) i++
      }
      tokens.push({ kind: "number", value: Number(source.slice(start, i)), at: start })
    } else if (c === "'" || c === '"') {
      const start = i
      let value = ""
      i++
      while (i < source.length && source.charAt(i) !== c) {
        if (source.charAt(i) === "\\" && i + 1 < source.length) i++
        value += source.charAt(i)
        i++
      }
      if (i >= source.length) throw new ExpressionError({ reason: `unterminated string at ${start}` })
      i++
      tokens.push({ kind: "string", value, at: start })
    } else if (isIdentStart(c)) {
      const start = i
      while (i < source.length && isIdent(source.charAt(i))) i++
      tokens.push({ kind: "ident", value: source.slice(start, i), at: start })
    } else {
      const op = [...operators, ...punctuation].find((candidate) => source.startsWith(candidate, i))
      if (op === undefined) throw new ExpressionError({ reason: `unexpected character "${c}" at ${i}` })
      // `===` and `!==` are the same as `==` and `!=`: comparison is always strict.
      tokens.push({ kind: "op", value: op.length === 3 ? op.slice(0, 2) : op, at: i })
      i += op.length
    }
  }
  tokens.push({ kind: "end", at: source.length })
  return tokens
}

const binaryPower: Record<BinaryOp, number> = {
  "||": 1,
  "&&": 2,
  "==": 3,
  "!=": 3,
  "<": 4,
  "<=": 4,
  ">": 4,
  ">=": 4,
  "+": 5,
  "-": 5,
  "*": 6,
  "/": 6,
  "%": 6
}

const isBinaryOp = (value: string): value is BinaryOp => Object.hasOwn(binaryPower, value)

const describe = (token: Token): string =>
  token.kind === "end" ? "the end" : `"${token.kind === "string" ? token.value : String(token.value)}"`

const isOp = (token: Token, value: string) => token.kind === "op" && token.value === value

/** Parses `source`; throws {@link ExpressionError} (callers use {@link parse}). */
const parseOrThrow = (source: string): Expr => {
  if (source.length > maxLength) throw new ExpressionError({ reason: `longer than ${maxLength} characters` })
  const tokens = tokenize(source)
  let position = 0
  const peek = (): Token => tokens[position] ?? { kind: "end", at: source.length }
  const next = (): Token => {
    const token = peek()
    position++
    return token
  }
  const expectOp = (value: string) => {
    const token = next()
    if (!isOp(token, value))
      throw new ExpressionError({ reason: `expected "${value}" at ${token.at}, found ${describe(token)}` })
  }
  const deeper = (depth: number) => {
    if (depth > maxDepth) throw new ExpressionError({ reason: `nested deeper than ${maxDepth}` })
    return depth + 1
  }

  const property = (name: string, at: number): string => {
    if (forbidden.has(name)) throw new ExpressionError({ reason: `"${name}" is not accessible (at ${at})` })
    return name
  }

  /** `.field` and `[index]` after a value. */
  const accesses = (object: Expr, depth: number): Expr => {
    let result = object
    for (let d = depth; ; d = deeper(d)) {
      const token = peek()
      if (isOp(token, ".")) {
        next()
        const name = next()
        if (name.kind !== "ident") throw new ExpressionError({ reason: `expected a field name at ${name.at}` })
        result = { _tag: "Member", object: result, key: property(name.value, name.at) }
      } else if (isOp(token, "[")) {
        next()
        const key = next()
        if (key.kind === "number" && Number.isInteger(key.value)) {
          result = { _tag: "Member", object: result, key: key.value }
        } else if (key.kind === "string") {
          result = { _tag: "Member", object: result, key: property(key.value, key.at) }
        } else {
          throw new ExpressionError({ reason: `expected an index or a quoted field name at ${key.at}` })
        }
        expectOp("]")
      } else {
        return result
      }
    }
  }

  const primary = (depth: number): Expr => {
    const token = next()
    switch (token.kind) {
      case "number":
        return { _tag: "Literal", value: token.value }
      case "string":
        return accesses({ _tag: "Literal", value: token.value }, depth)
      case "ident": {
        switch (token.value) {
          case "true":
            return { _tag: "Literal", value: true }
          case "false":
            return { _tag: "Literal", value: false }
          case "null":
            return { _tag: "Literal", value: null }
          case "input":
            return accesses({ _tag: "Input" }, depth)
          case "steps": {
            expectOp(".")
            const name = next()
            if (name.kind !== "ident")
              throw new ExpressionError({ reason: `expected a step name after "steps." at ${name.at}` })
            return accesses({ _tag: "Step", name: property(name.value, name.at) }, depth)
          }
          default:
            throw new ExpressionError({
              reason: `unknown name "${token.value}" at ${token.at}: an expression reads only input and steps`
            })
        }
      }
      case "op": {
        if (token.value === "(") {
          const inner = expression(0, deeper(depth))
          expectOp(")")
          return accesses(inner, depth)
        }
        if (token.value === "!" || token.value === "-") {
          return { _tag: "Unary", op: token.value, operand: expression(7, deeper(depth)) }
        }
        throw new ExpressionError({ reason: `unexpected ${describe(token)} at ${token.at}` })
      }
      case "end":
        throw new ExpressionError({ reason: "the expression ends too early" })
    }
  }

  const expression = (minPower: number, depth: number): Expr => {
    let left = primary(deeper(depth))
    for (;;) {
      const token = peek()
      if (token.kind !== "op" || !isBinaryOp(token.value) || binaryPower[token.value] <= minPower) return left
      const op = token.value
      next()
      const right = expression(binaryPower[op], deeper(depth))
      left = { _tag: "Binary", op, left, right }
    }
  }

  const tree = expression(0, 0)
  const rest = peek()
  if (rest.kind !== "end") throw new ExpressionError({ reason: `unexpected ${describe(rest)} at ${rest.at}` })
  return tree
}

/** Parses an expression, or says why it cannot be. */
export const parse = (source: string): Expr | ExpressionError => {
  try {
    return parseOrThrow(source)
  } catch (error) {
    if (error instanceof ExpressionError) return error
    // A stack overflow on hostile input is a refusal like any other.
    return new ExpressionError({ reason: "the expression is too complex" })
  }
}

/** The steps an expression reads, in order of appearance. */
export const stepsRead = (expr: Expr): Array<string> => {
  switch (expr._tag) {
    case "Literal":
    case "Input":
      return []
    case "Step":
      return [expr.name]
    case "Member":
      return stepsRead(expr.object)
    case "Unary":
      return stepsRead(expr.operand)
    case "Binary":
      return [...stepsRead(expr.left), ...stepsRead(expr.right)]
  }
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** `object[key]`, for own data of plain objects, arrays and strings only; `null` when absent. */
const member = (object: unknown, key: string | number): unknown => {
  if (key === "length" && (typeof object === "string" || Array.isArray(object))) return object.length
  if (Array.isArray(object) && typeof key === "number") return key >= 0 && key < object.length ? object[key] : null
  if (isPlainObject(object) && typeof key === "string" && Object.hasOwn(object, key)) return object[key] ?? null
  return null
}

const truthy = (value: unknown): boolean =>
  !(value === false || value === null || value === undefined || value === 0 || value === "" || Number.isNaN(value))

const equal = (left: unknown, right: unknown): boolean => {
  if (left === right) return true
  if (typeof left !== "object" || typeof right !== "object" || left === null || right === null) return false
  return JSON.stringify(left) === JSON.stringify(right)
}

const compare = (op: "<" | "<=" | ">" | ">=", left: unknown, right: unknown): boolean => {
  const both =
    (typeof left === "number" && typeof right === "number") || (typeof left === "string" && typeof right === "string")
  if (!both) return false
  switch (op) {
    case "<":
      return left < right
    case "<=":
      return left <= right
    case ">":
      return left > right
    case ">=":
      return left >= right
  }
}

const arithmetic = (op: "-" | "*" | "/" | "%", left: unknown, right: unknown): unknown => {
  if (typeof left !== "number" || typeof right !== "number") {
    throw new ExpressionError({ reason: `"${op}" needs two numbers` })
  }
  switch (op) {
    case "-":
      return left - right
    case "*":
      return left * right
    case "/":
      return right === 0 ? null : left / right
    case "%":
      return right === 0 ? null : left % right
  }
}

const evaluateOrThrow = (expr: Expr, scope: Scope): unknown => {
  switch (expr._tag) {
    case "Literal":
      return expr.value
    case "Input":
      return scope.input ?? null
    case "Step":
      return Object.hasOwn(scope.steps, expr.name) ? { output: scope.steps[expr.name] ?? null } : null
    case "Member":
      return member(evaluateOrThrow(expr.object, scope), expr.key)
    case "Unary": {
      const operand = evaluateOrThrow(expr.operand, scope)
      if (expr.op === "!") return !truthy(operand)
      if (typeof operand !== "number") throw new ExpressionError({ reason: `"-" needs a number` })
      return -operand
    }
    case "Binary": {
      if (expr.op === "&&") {
        const left = evaluateOrThrow(expr.left, scope)
        return truthy(left) ? evaluateOrThrow(expr.right, scope) : left
      }
      if (expr.op === "||") {
        const left = evaluateOrThrow(expr.left, scope)
        return truthy(left) ? left : evaluateOrThrow(expr.right, scope)
      }
      const left = evaluateOrThrow(expr.left, scope)
      const right = evaluateOrThrow(expr.right, scope)
      switch (expr.op) {
        case "==":
          return equal(left, right)
        case "!=":
          return !equal(left, right)
        case "<":
        case "<=":
        case ">":
        case ">=":
          return compare(expr.op, left, right)
        case "+":
          if (typeof left === "number" && typeof right === "number") return left + right
          if (typeof left === "string" || typeof right === "string") return `${show(left)}${show(right)}`
          throw new ExpressionError({ reason: `"+" needs two numbers or a string` })
        default:
          return arithmetic(expr.op, left, right)
      }
    }
  }
}

/** The value of `expr` over `scope`, or why it has none (arithmetic on what is not a number). */
export const evaluate = (expr: Expr, scope: Scope): unknown => {
  try {
    return evaluateOrThrow(expr, scope)
  } catch (error) {
    if (error instanceof ExpressionError) return error
    return new ExpressionError({ reason: "the expression could not be evaluated" })
  }
}

/** Whether a condition holds: its value is truthy (an evaluation error counts as false). */
export const holds = (expr: Expr, scope: Scope): boolean => {
  const value = evaluate(expr, scope)
  return !(value instanceof ExpressionError) && truthy(value)
}

/** A value as template text: strings as they are, anything else as JSON. */
export const show = (value: unknown): string =>
  typeof value === "string" ? value : value === undefined ? "" : JSON.stringify(value)

/** A template: literal text and `{{ expression }}` holes, in order. */
export type Template = ReadonlyArray<string | Expr>

/** Parses `{{ … }}` holes of `source`; an unclosed or invalid hole is an error. */
export const parseTemplate = (source: string): Template | ExpressionError => {
  const parts: Array<string | Expr> = []
  let rest = source
  for (;;) {
    const open = rest.indexOf("{{")
    if (open < 0) {
      if (rest !== "") parts.push(rest)
      return parts
    }
    if (open > 0) parts.push(rest.slice(0, open))
    const close = rest.indexOf("}}", open + 2)
    if (close < 0) return new ExpressionError({ reason: `"{{" without "}}"` })
    const parsed = parse(rest.slice(open + 2, close))
    if (parsed instanceof ExpressionError) return parsed
    parts.push(parsed)
    rest = rest.slice(close + 2)
  }
}

/** The text of a template over `scope`: each hole's value shown, an unevaluable one as empty. */
export const render = (template: Template, scope: Scope): string =>
  template
    .map((part) => {
      if (typeof part === "string") return part
      const value = evaluate(part, scope)
      return value instanceof ExpressionError ? "" : show(value)
    })
    .join("")

/** The steps a template reads. */
export const templateStepsRead = (template: Template): Array<string> =>
  template.flatMap((part) => (typeof part === "string" ? [] : stepsRead(part)))
