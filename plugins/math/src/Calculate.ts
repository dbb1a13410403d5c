/**
 * The `calculate` tool: evaluates an arithmetic expression with the safe evaluator of
 * `Expression` so the model stops doing arithmetic in its head. A refused expression becomes a
 * `ToolFailure` whose message names the problem and its position, for the model to fix.
 */
import { Tool } from "@polyagent/tools"
import { Effect, Result, Schema } from "effect"
import * as Expression from "./Expression.ts"

/** The tool's parameters. */
export const CalculateParameters = Schema.Struct({
  expression: Schema.String.check(Schema.isMaxLength(Expression.maxLength)).annotate({
    description: "The expression, e.g. `2 * (3 + 4)^2` or `sqrt(2) / 2` or `max(1.5e3, 2^10)`"
  })
})

/** The tool's result: the expression as given and its value. */
export const CalculateResult = Schema.Struct({
  expression: Schema.String,
  result: Schema.Finite
})

/** Evaluates an arithmetic expression exactly; needs no permissions. */
export const Calculate = Tool.make("calculate", {
  description: [
    "Evaluates an arithmetic expression and returns its value. Use it for any arithmetic instead of computing in your head.",
    "Numbers: 42, 3.14, 1.5e-3. Operators: + - * / % (remainder) ^ (power, right-associative; ** works too), unary minus, parentheses.",
    `Constants: pi, e. Functions: ${[...Expression.functions.keys()].join(", ")}; trigonometry is in radians; atan2(y, x), hypot(x, y), min and max take one or more arguments.`,
    `At most ${Expression.maxLength} characters. Errors give the position of the problem, counted from 0.`
  ].join(" "),
  parameters: CalculateParameters,
  success: CalculateResult,
  handler: ({ expression }) =>
    Result.match(Expression.calculate(expression), {
      onSuccess: (result) => Effect.succeed({ expression, result }),
      onFailure: (error) => Effect.fail(new Tool.ToolFailure({ message: error.message }))
    })
})
