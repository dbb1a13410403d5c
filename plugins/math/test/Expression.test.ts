import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as Expression from "../src/Expression.ts"

const value = (input: string): number => {
  const result = Expression.calculate(input)
  if (Result.isFailure(result)) return assert.fail(`${input}: ${result.failure.message}`)
  return result.success
}

const error = (input: string): Expression.ExpressionError => {
  const result = Expression.calculate(input)
  if (Result.isSuccess(result)) return assert.fail(`${input} gave ${result.success}, expected an error`)
  return result.failure
}

// The message of the error `input` gives, checked to end with the error's position.
const refusal = (input: string): string => {
  const failure = error(input)
  assert.isTrue(failure.message.endsWith(` at ${failure.position}`), `${failure.message} / ${failure.position}`)
  return failure.message
}

const known =
  "(known: pi, e, sqrt, abs, round, floor, ceil, trunc, sign, exp, ln, log10, log2, sin, cos, tan, asin, acos, atan, atan2, hypot, min, max)"

const parentheses = (n: number) => `${"(".repeat(n)}1${")".repeat(n)}`

describe("Expression", () => {
  describe("numbers", () => {
    it("reads integers, decimals and exponent notation", () => {
      assert.strictEqual(value("42"), 42)
      assert.strictEqual(value("3.25"), 3.25)
      assert.strictEqual(value(".5"), 0.5)
      assert.strictEqual(value("5."), 5)
      assert.strictEqual(value("1.5e3"), 1500)
      assert.strictEqual(value("2E-3"), 0.002)
      assert.strictEqual(value("1e+2"), 100)
    })

    it("skips whitespace, tabs and newlines", () => {
      assert.strictEqual(value(" \t1 +\n 2 "), 3)
    })

    it("refuses a literal too large for a double", () => {
      assert.strictEqual(refusal("1 + 1e400"), "number 1e400 is too large at 4")
    })

    it("rounds non-integers to 15 significant digits and leaves integers exact", () => {
      assert.strictEqual(value("0.1 + 0.2"), 0.3)
      assert.strictEqual(value("1 / 3"), 0.333333333333333)
      assert.strictEqual(value("2^53 + 1"), 9007199254740992)
      assert.strictEqual(value("2^60"), 1152921504606846976)
    })

    it("never answers minus zero", () => {
      assert.isFalse(Object.is(value("-0"), -0))
      assert.isFalse(Object.is(value("0 * -1"), -0))
      assert.isFalse(Object.is(value("round(-0.4)"), -0))
    })
  })

  describe("precedence and associativity", () => {
    it("multiplies before adding", () => {
      assert.strictEqual(value("2 + 3 * 4"), 14)
      assert.strictEqual(value("2 * 3 + 4"), 10)
      assert.strictEqual(value("10 - 6 / 2"), 7)
      assert.strictEqual(value("7 + 10 % 4"), 9)
    })

    it("groups with parentheses", () => {
      assert.strictEqual(value("(2 + 3) * 4"), 20)
      assert.strictEqual(value("((((1))))"), 1)
      assert.strictEqual(value("2 * (3 + (4 - 1)) / 3"), 4)
    })

    it("associates + - * / % to the left", () => {
      assert.strictEqual(value("10 - 4 - 3"), 3)
      assert.strictEqual(value("100 / 10 / 5"), 2)
      assert.strictEqual(value("2 * 3 % 4"), 2)
      assert.strictEqual(value("17 % 5 % 3"), 2)
    })

    it("associates ^ to the right and binds it tighter than * and unary minus", () => {
      assert.strictEqual(value("2 ^ 3 ^ 2"), 512)
      assert.strictEqual(value("(2 ^ 3) ^ 2"), 64)
      assert.strictEqual(value("2 * 3 ^ 2"), 18)
      assert.strictEqual(value("-2 ^ 2"), -4)
      assert.strictEqual(value("(-2) ^ 2"), 4)
      assert.strictEqual(value("2 ^ -1"), 0.5)
      assert.strictEqual(value("2 ^ -1 ^ 2"), 0.5)
    })

    it("reads ** as ^", () => {
      assert.strictEqual(value("2 ** 10"), 1024)
      assert.strictEqual(value("2**3**2"), 512)
    })

    it("keeps the sign of the dividend in %", () => {
      assert.strictEqual(value("-7 % 3"), -1)
      assert.strictEqual(value("7 % -3"), 1)
      assert.strictEqual(value("5.5 % 2"), 1.5)
    })
  })

  describe("unary signs", () => {
    it("negates, keeps, and stacks signs", () => {
      assert.strictEqual(value("-3"), -3)
      assert.strictEqual(value("+3"), 3)
      assert.strictEqual(value("--3"), 3)
      assert.strictEqual(value("-+-3"), 3)
      assert.strictEqual(value("2 - -3"), 5)
      assert.strictEqual(value("2 * -3"), -6)
      assert.strictEqual(value("-(2 + 3)"), -5)
      assert.strictEqual(value("-sqrt(4)"), -2)
    })
  })

  describe("constants and functions", () => {
    it("knows pi and e, in any case", () => {
      assert.strictEqual(value("pi"), 3.14159265358979)
      assert.strictEqual(value("e"), 2.71828182845905)
      assert.strictEqual(value("2 * PI"), value("2 * pi"))
      assert.strictEqual(value("E"), value("e"))
    })

    it("computes the one-argument functions", () => {
      assert.strictEqual(value("sqrt(16)"), 4)
      assert.strictEqual(value("abs(-2.5)"), 2.5)
      assert.strictEqual(value("floor(-2.5)"), -3)
      assert.strictEqual(value("ceil(2.1)"), 3)
      assert.strictEqual(value("trunc(-2.7)"), -2)
      assert.strictEqual(value("sign(-4)"), -1)
      assert.strictEqual(value("exp(0)"), 1)
      assert.strictEqual(value("ln(e)"), 1)
      assert.strictEqual(value("log10(1000)"), 3)
      assert.strictEqual(value("log2(1024)"), 10)
      assert.strictEqual(value("sin(pi / 2)"), 1)
      assert.strictEqual(value("cos(0)"), 1)
      assert.strictEqual(value("tan(pi / 4)"), 1)
      assert.strictEqual(value("asin(1)"), value("pi / 2"))
      assert.strictEqual(value("acos(1)"), 0)
      assert.strictEqual(value("atan(1) * 4"), value("pi"))
    })

    it("rounds halves away from zero", () => {
      assert.strictEqual(value("round(2.5)"), 3)
      assert.strictEqual(value("round(-2.5)"), -3)
      assert.strictEqual(value("round(2.4)"), 2)
    })

    it("computes the two-argument and variadic functions", () => {
      assert.strictEqual(value("atan2(1, 1)"), value("pi / 4"))
      assert.strictEqual(value("hypot(3, 4)"), 5)
      assert.strictEqual(value("min(3)"), 3)
      assert.strictEqual(value("min(3, -1, 2)"), -1)
      assert.strictEqual(value("max(1, 2 ^ 3, 7)"), 8)
      assert.strictEqual(value("max(min(1, 2), sqrt(9), abs(-2))"), 3)
      assert.strictEqual(value("SQRT(4)"), 2)
    })

    it("checks the number of arguments", () => {
      assert.strictEqual(refusal("sqrt(1, 2)"), "sqrt takes 1 argument, got 2 at 0")
      assert.strictEqual(refusal("1 + atan2(1)"), "atan2 takes 2 arguments, got 1 at 4")
      assert.strictEqual(refusal("hypot(1, 2, 3)"), "hypot takes 2 arguments, got 3 at 0")
      assert.strictEqual(refusal("max()"), "max takes at least 1 argument, got 0 at 0")
      assert.strictEqual(refusal("sqrt()"), "sqrt takes 1 argument, got 0 at 0")
    })

    it("wants parentheses after a function and none after a constant", () => {
      assert.strictEqual(refusal("sqrt 4"), 'expected "(" after function sqrt but found "4" at 5')
      assert.strictEqual(refusal("sqrt"), 'expected "(" after function sqrt but found end of expression at 4')
      assert.strictEqual(refusal("pi(2)"), 'unexpected "(" at 2')
    })
  })

  describe("syntax errors", () => {
    it("names the unexpected token and its position, counted from 0", () => {
      assert.strictEqual(refusal("(1 + 2))"), 'unexpected ")" at 7')
      assert.strictEqual(refusal("1 2"), 'unexpected "2" at 2')
      assert.strictEqual(refusal("2 pi"), 'unexpected "pi" at 2')
      assert.strictEqual(refusal("2(3)"), 'unexpected "(" at 1')
      assert.strictEqual(refusal("1 + * 2"), 'unexpected "*" at 4')
      assert.strictEqual(refusal("1 +"), "unexpected end of expression at 3")
      assert.strictEqual(refusal(""), "unexpected end of expression at 0")
      assert.strictEqual(refusal("   "), "unexpected end of expression at 3")
      assert.strictEqual(refusal("1..2"), 'unexpected ".2" at 2')
    })

    it("asks for the closing parenthesis or the separator", () => {
      assert.strictEqual(refusal("(1 + 2"), 'expected ")" but found end of expression at 6')
      assert.strictEqual(refusal("(1 2)"), 'expected ")" but found "2" at 3')
      assert.strictEqual(refusal("max(1 2)"), 'expected "," or ")" but found "2" at 6')
      assert.strictEqual(refusal("max(1,)"), 'unexpected ")" at 6')
      assert.strictEqual(refusal("max(1"), 'expected "," or ")" but found end of expression at 5')
    })

    it("refuses characters outside the grammar", () => {
      assert.strictEqual(refusal("1 + $"), 'unexpected character "$" at 4')
      assert.strictEqual(refusal("2 = 2"), 'unexpected character "=" at 2')
      assert.strictEqual(refusal("[1]"), 'unexpected character "[" at 0')
      assert.strictEqual(refusal('"a"'), 'unexpected character "\\"" at 0')
      assert.strictEqual(refusal("1 + 😀"), 'unexpected character "😀" at 4')
    })
  })

  describe("names", () => {
    it("knows no name but the constants and functions", () => {
      assert.strictEqual(refusal("x + 1"), `unknown name "x" ${known} at 0`)
      assert.include(error("log(100)").message, 'unknown name "log"')
      assert.include(error("Math(4)").message, 'unknown name "Math"')
    })

    it("reaches no JavaScript property through a name or a dot", () => {
      for (const name of ["constructor", "__proto__", "prototype", "toString", "valueOf", "hasOwnProperty"]) {
        assert.include(error(name).message, `unknown name "${name}"`)
        assert.include(error(`${name}(1)`).message, `unknown name "${name}"`)
      }
      assert.strictEqual(refusal("pi.constructor"), 'unexpected character "." at 2')
      assert.strictEqual(refusal("sqrt.constructor('return 1')()"), 'unexpected character "." at 4')
      assert.strictEqual(refusal("sqrt['constructor']"), 'unexpected character "[" at 4')
      assert.strictEqual(refusal("this"), `unknown name "this" ${known} at 0`)
    })
  })

  describe("arithmetic errors", () => {
    it("refuses division by zero, with / and % and a negative power of zero", () => {
      assert.strictEqual(refusal("1 / 0"), "division by zero at 2")
      assert.strictEqual(refusal("1 / (2 - 2)"), "division by zero at 2")
      assert.strictEqual(refusal("5 % 0"), "division by zero at 2")
      assert.strictEqual(refusal("0 ^ -1"), "division by zero at 2")
      assert.strictEqual(value("0 / 5"), 0)
      assert.strictEqual(value("0 ^ 0"), 1)
    })

    it("refuses overflow", () => {
      assert.strictEqual(refusal("2 ^ 10000"), "overflow: 2 ^ 10000 is too large at 2")
      assert.strictEqual(refusal("1e308 * 10"), "overflow: 1e+308 * 10 is too large at 6")
      assert.strictEqual(refusal("-1e308 - 1e308"), "overflow: -1e+308 - 1e+308 is too large at 7")
      assert.strictEqual(refusal("exp(1000)"), "overflow: exp(1000) is too large at 0")
    })

    it("refuses results that are not real numbers", () => {
      assert.strictEqual(refusal("sqrt(-1)"), "sqrt(-1) is not a real number at 0")
      assert.strictEqual(refusal("asin(2)"), "asin(2) is not a real number at 0")
      assert.strictEqual(refusal("(-8) ^ 0.5"), "-8 ^ 0.5 is not a real number at 5")
      assert.strictEqual(refusal("ln(0)"), "ln(0) is undefined (minus infinity) at 0")
      assert.strictEqual(refusal("log10(-1)"), "log10(-1) is not a real number at 0")
    })

    it("stops at the first error, left to right", () => {
      assert.strictEqual(refusal("1 / 0 + sqrt(-1)"), "division by zero at 2")
    })
  })

  describe("limits", () => {
    it(`accepts ${Expression.maxLength} characters and refuses more`, () => {
      const longest = `1${" + 1".repeat(249)}`
      assert.strictEqual(longest.length, 997)
      assert.strictEqual(value(`${longest}   `), 250)
      const tooLong = error(`${longest}    `)
      assert.strictEqual(tooLong.message, "expression is 1001 characters long, more than the 1000 allowed")
      assert.strictEqual(tooLong.position, 1000)
    })

    it(`accepts ${Expression.maxDepth} levels of nesting and refuses more`, () => {
      assert.strictEqual(value(parentheses(64)), 1)
      assert.strictEqual(refusal(parentheses(65)), "expression is nested more than 64 levels deep at 64")
      assert.strictEqual(value(`${"-".repeat(64)}1`), 1)
      assert.include(error(`${"-".repeat(65)}1`).message, "nested more than 64 levels")
      assert.include(error(`${"sqrt(".repeat(65)}1${")".repeat(65)}`).message, "nested more than 64 levels")
      assert.include(error(`2${"^2".repeat(65)}`).message, "nested more than 64 levels")
    })

    it("evaluates long flat expressions", () => {
      assert.strictEqual(value(Array.from({ length: 300 }, () => "1").join("+")), 300)
    })
  })

  describe("parse and evaluate", () => {
    it("parses to a tree with positions and evaluates it", () => {
      const parsed = Expression.parse("1 + 2 * x2")
      assert.isTrue(Result.isFailure(parsed))
      const tree = Expression.parse("-2 ^ 2")
      if (Result.isFailure(tree)) return assert.fail(tree.failure.message)
      assert.strictEqual(tree.success._tag, "Negate")
      assert.strictEqual(tree.success.position, 0)
      assert.deepStrictEqual(Expression.evaluate(tree.success), Result.succeed(-4))
    })
  })
})
