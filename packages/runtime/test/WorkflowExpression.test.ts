import { assert, describe, it } from "@effect/vitest"
import * as Expression from "../src/internal/workflowExpression.ts"

const scope: Expression.Scope = {
  input: { topic: "cats", count: 3, tags: ["a", "b"] },
  steps: { analyze: "x".repeat(250), score: { value: 0.9, label: "high" }, list: [1, 2, 3] }
}

const run = (source: string, over: Expression.Scope = scope): unknown => {
  const expr = Expression.parse(source)
  if (expr instanceof Expression.ExpressionError) throw new Error(`parse failed: ${expr.reason}`)
  return Expression.evaluate(expr, over)
}

const refused = (source: string): string => {
  const expr = Expression.parse(source)
  assert.instanceOf(expr, Expression.ExpressionError, source)
  return expr instanceof Expression.ExpressionError ? expr.reason : ""
}

describe("the workflow expression language", () => {
  it("reads input and step outputs, fields, indexes and lengths", () => {
    assert.strictEqual(run("input.topic"), "cats")
    assert.strictEqual(run("input['topic']"), "cats")
    assert.strictEqual(run("input.tags[1]"), "b")
    assert.strictEqual(run("input.tags.length"), 2)
    assert.strictEqual(run("steps.analyze.output.length"), 250)
    assert.strictEqual(run("steps.score.output.value"), 0.9)
    assert.strictEqual(run("steps.list.output[0] + steps.list.output[2]"), 4)
    assert.strictEqual(run("steps.missing.output"), null)
    assert.strictEqual(run("input.nope.deeper"), null)
    assert.strictEqual(run("input.tags[9]"), null)
  })

  it("compares, combines and computes with the usual precedence", () => {
    assert.strictEqual(run("steps.analyze.output.length > 200"), true)
    assert.strictEqual(run("steps.score.output.value > 0.8 && input.count == 3"), true)
    assert.strictEqual(run("!(input.count >= 3) || false"), false)
    assert.strictEqual(run("1 + 2 * 3 - 4 / 2"), 5)
    assert.strictEqual(run("(1 + 2) * 3 % 4"), 1)
    assert.strictEqual(run("-input.count"), -3)
    assert.strictEqual(run("'a' + 1"), "a1")
    assert.strictEqual(run('"x" === "x"'), true)
    assert.strictEqual(run("null != 0"), true)
    assert.strictEqual(run("'10' < 9"), false, "no coercion between strings and numbers")
    assert.strictEqual(run("1 / 0"), null)
    assert.strictEqual(run("input.count || 7"), 3)
  })

  it("refuses names other than input and steps", () => {
    assert.match(refused("process.exit()"), /unknown name "process"/)
    assert.match(refused("globalThis"), /unknown name/)
    assert.match(refused("this.constructor"), /unknown name "this"/)
    assert.match(refused("require('fs')"), /unknown name/)
  })

  it("refuses prototype walking, however it is spelt", () => {
    assert.match(refused("input.__proto__"), /not accessible/)
    assert.match(refused("input.constructor.constructor"), /not accessible/)
    assert.match(refused("input['__proto__']"), /not accessible/)
    assert.match(refused("steps.constructor"), /not accessible/)
    assert.match(refused("input.tags.prototype"), /not accessible/)
    // Inherited members are not own data: they read as null.
    assert.strictEqual(run("input.toString"), null)
    assert.strictEqual(run("input.hasOwnProperty"), null)
    assert.strictEqual(run("input.tags.map"), null)
    assert.strictEqual(run("'abc'.length"), 3)
  })

  it("has no calls, assignments or other syntax", () => {
    assert.match(refused("input.topic()"), /unexpected "\(/)
    refused("input.topic()")
    refused("input.topic = 1")
    refused("input ? 1 : 2")
    refused("`template`")
    refused("input;1")
    refused("1 +")
    refused("(1")
    refused("'unterminated")
    refused("input[input]")
  })

  it("bounds length and depth, and survives hostile input", () => {
    assert.match(refused("(".repeat(100) + "1" + ")".repeat(100)), /nested deeper than 32/)
    assert.match(refused("!".repeat(200) + "true"), /nested deeper/)
    assert.match(refused("1" + "+1".repeat(2000)), /longer than|nested deeper/)
    assert.match(refused("input" + ".a".repeat(100)), /nested deeper/)
    assert.strictEqual(run("(((((1)))))"), 1)
    const evaluated = run("input.count * 'x'")
    assert.instanceOf(evaluated, Expression.ExpressionError)
  })

  it("renders templates, and reports the steps they read", () => {
    const template = Expression.parseTemplate(
      "Analyse: {{input.topic}} ({{ steps.score.output.label }}) {{input.tags}}"
    )
    if (template instanceof Expression.ExpressionError) throw new Error(template.reason)
    assert.strictEqual(Expression.render(template, scope), 'Analyse: cats (high) ["a","b"]')
    assert.deepStrictEqual(Expression.templateStepsRead(template), ["score"])
    assert.instanceOf(Expression.parseTemplate("{{input"), Expression.ExpressionError)
    assert.instanceOf(Expression.parseTemplate("{{ input.__proto__ }}"), Expression.ExpressionError)
    const plain = Expression.parseTemplate("no holes")
    assert.deepStrictEqual(plain, ["no holes"])
  })

  it("holds only for truthy values; a failing evaluation does not hold", () => {
    const expr = Expression.parse("input.count * 'x' > 1")
    if (expr instanceof Expression.ExpressionError) throw new Error(expr.reason)
    assert.isFalse(Expression.holds(expr, scope))
    const yes = Expression.parse("input.tags")
    if (yes instanceof Expression.ExpressionError) throw new Error(yes.reason)
    assert.isTrue(Expression.holds(yes, scope))
  })
})
