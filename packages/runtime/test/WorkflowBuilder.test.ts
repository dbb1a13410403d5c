/**
 * The builder's types are part of what it promises: this file is checked by `tsc -b` (a
 * `@ts-expect-error` that no longer errs fails the build), and its tests check what it builds.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as WorkflowBuilder from "../src/WorkflowBuilder.ts"
import { DefinitionError, type Step } from "../src/WorkflowDefinition.ts"

const reviewFlow = WorkflowBuilder.make<{ readonly topic: string }>("review-flow")
  .addStep("analyze", WorkflowBuilder.model({ prompt: (ctx) => `Analyse: ${ctx.input.topic}` }))
  .addStep(
    "score",
    WorkflowBuilder.transform((ctx) => ({ complexity: Math.min(1, ctx.steps.analyze.length / 100) }))
  )
  .addStep("generate", WorkflowBuilder.model({ prompt: (ctx) => `Answer using ${ctx.steps.analyze}` }))
  .addCondition("should_review", (ctx) => ctx.steps.score.complexity > 0.8)
  .addStep("review", WorkflowBuilder.approval(), { when: "should_review" })
  .addStep(
    "final",
    WorkflowBuilder.transform((ctx) => {
      // The approval's output is typed too.
      const approved: boolean = ctx.steps.review.approved
      return { text: ctx.steps.generate, approved }
    })
  )

// Typing: each of these would compile if the builder's context did not grow step by step.
export const typeChecks = () => {
  WorkflowBuilder.make<{ readonly topic: string }>("t").addStep(
    "a",
    // @ts-expect-error: no step "later" was added before this one
    WorkflowBuilder.model({ prompt: (ctx) => ctx.steps.later })
  )
  WorkflowBuilder.make<{ readonly topic: string }>("t").addStep(
    "a",
    // @ts-expect-error: the input has no field "nope"
    WorkflowBuilder.transform((ctx) => ctx.input.nope)
  )
  WorkflowBuilder.make("t")
    .addStep("a", WorkflowBuilder.model({ prompt: "hi" }))
    .addStep(
      "b",
      // @ts-expect-error: a model step's output is a string, which has no "complexity"
      WorkflowBuilder.transform((ctx) => ctx.steps.a.complexity)
    )
  WorkflowBuilder.make("t")
    .addStep("a", WorkflowBuilder.sleep(1))
    // @ts-expect-error: "missing" is not a condition that was added
    .addStep("b", WorkflowBuilder.approval(), { when: "missing" })
  WorkflowBuilder.make("t")
    .addStep("a", WorkflowBuilder.sleep(1))
    // @ts-expect-error: the name "a" is taken
    .addStep("a", WorkflowBuilder.sleep(1))
  const fanned = WorkflowBuilder.make("t")
    .addStep(
      "fan",
      WorkflowBuilder.parallel({ x: WorkflowBuilder.model({ prompt: "x" }), y: WorkflowBuilder.sleep(1) })
    )
    .addStep(
      "use",
      WorkflowBuilder.transform((ctx) => ctx.steps.fan.x.toUpperCase())
    )
  return fanned
}

describe("WorkflowBuilder", () => {
  it("builds the definition the engine runs, with conditions and code steps", () => {
    const built = reviewFlow.build()
    assert.isTrue(Result.isSuccess(built))
    if (Result.isFailure(built)) return
    const definition = built.success
    assert.strictEqual(definition.name, "review-flow")
    assert.deepStrictEqual(
      definition.steps.map((step: Step) => [step.name, step.type]),
      [
        ["analyze", "model"],
        ["score", "transform"],
        ["generate", "model"],
        ["review", "approval"],
        ["final", "transform"]
      ]
    )
    const review = definition.steps[3]
    assert.strictEqual(review?.when?._tag, "Predicate")
    if (review?.when?._tag !== "Predicate") return
    const context = { input: { topic: "t" }, steps: { analyze: "x", score: { complexity: 0.9 } } }
    assert.isTrue(review.when.holds(context))
    assert.isFalse(review.when.holds({ ...context, steps: { ...context.steps, score: { complexity: 0.1 } } }))
    const analyze = definition.steps[0]
    if (analyze?.type !== "model" || analyze.prompt._tag !== "Function") return assert.fail("analyze is a model step")
    assert.strictEqual(analyze.prompt.render(context), "Analyse: t")
  })

  it("fails to build what validation refuses, naming the step", () => {
    const nested = WorkflowBuilder.make("dup")
      .addStep("fan", WorkflowBuilder.parallel({ a: WorkflowBuilder.sleep(1) }))
      .addStep("a", WorkflowBuilder.sleep(1))
      .build()
    assert.isTrue(Result.isFailure(nested))
    if (Result.isSuccess(nested)) return
    assert.instanceOf(nested.failure, DefinitionError)
    assert.strictEqual(nested.failure.step, "a")
    assert.isTrue(Result.isSuccess(typeChecks().build()))
  })
})
