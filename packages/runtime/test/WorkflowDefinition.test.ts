import { assert, describe, it } from "@effect/vitest"
import * as WorkflowDefinition from "../src/WorkflowDefinition.ts"

const errorOf = (json: unknown): WorkflowDefinition.DefinitionError => {
  const result = WorkflowDefinition.fromJson(json)
  if (!(result instanceof WorkflowDefinition.DefinitionError)) throw new Error("expected a definition error")
  return result
}

const example = {
  name: "review-flow",
  steps: [
    { name: "analyze", type: "model", prompt: "Analyse: {{input}}" },
    { name: "generate", type: "model", prompt: "Answer using {{steps.analyze.output}}" },
    { name: "review", type: "approval", when: "steps.analyze.output.length > 200" }
  ]
}

describe("workflow definitions", () => {
  it("reads the example of API.md", () => {
    const definition = WorkflowDefinition.fromJson(example)
    if (definition instanceof WorkflowDefinition.DefinitionError) throw new Error(definition.message)
    assert.strictEqual(definition.name, "review-flow")
    assert.deepStrictEqual(
      definition.steps.map((step) => step.type),
      ["model", "model", "approval"]
    )
    const review = definition.steps[2]
    assert.deepStrictEqual(review === undefined ? [] : WorkflowDefinition.reads(review), ["analyze"])
  })

  it("reads every step type, nested ones included", () => {
    const definition = WorkflowDefinition.fromJson({
      name: "all",
      conditions: { long: "steps.a.output.length > 3" },
      timeout_ms: 60000,
      steps: [
        { name: "a", type: "transform", expression: "input.x + 1" },
        {
          name: "fan",
          type: "parallel",
          steps: [
            { name: "b", type: "tool", tool: "add", arguments: { a: "{{steps.a.output}}", b: 2 } },
            { name: "c", type: "agent", agent_id: "agent_1", prompt: "{{input}}" }
          ]
        },
        {
          name: "again",
          type: "loop",
          max_iterations: 3,
          until: "steps.d.output > 2",
          steps: [{ name: "d", type: "transform", template: "{{steps.b.output}}" }]
        },
        { name: "nap", type: "sleep", duration_ms: 10, when: "long" },
        { name: "ok", type: "approval", message: "check", retry: { max_attempts: 2 }, timeout_ms: 5 }
      ]
    })
    if (definition instanceof WorkflowDefinition.DefinitionError) throw new Error(definition.message)
    assert.strictEqual(WorkflowDefinition.allSteps(definition.steps).length, 8)
  })

  it("names the step of an unknown step type", () => {
    const error = errorOf({ name: "w", steps: [{ name: "first", type: "teleport" }] })
    assert.strictEqual(error.step, "first")
    assert.match(error.message, /^step "first": unknown step type "teleport"/)
  })

  it("names the step whose name is used twice", () => {
    const error = errorOf({
      name: "w",
      steps: [
        { name: "a", type: "transform", expression: "1" },
        { name: "p", type: "parallel", steps: [{ name: "a", type: "transform", expression: "2" }] }
      ]
    })
    assert.strictEqual(error.step, "a")
    assert.match(error.message, /used twice/)
  })

  it("names the step of a cycle", () => {
    const error = errorOf({
      name: "w",
      steps: [
        { name: "a", type: "model", prompt: "{{steps.b.output}}" },
        { name: "b", type: "model", prompt: "{{steps.a.output}}" }
      ]
    })
    assert.strictEqual(error.step, "a")
    assert.match(error.message, /cycle: a → b → a/)
  })

  it("names the step whose condition names nothing", () => {
    const error = errorOf({ name: "w", steps: [{ name: "review", type: "approval", when: "should_review" }] })
    assert.strictEqual(error.step, "review")
    assert.match(error.message, /condition "should_review" names nothing/)
  })

  it("names the step whose template refers to a missing or a later step", () => {
    const missing = errorOf({ name: "w", steps: [{ name: "a", type: "model", prompt: "{{steps.ghost.output}}" }] })
    assert.strictEqual(missing.step, "a")
    assert.match(missing.message, /"ghost", which does not exist/)
    const later = errorOf({
      name: "w",
      steps: [
        { name: "a", type: "model", prompt: "{{steps.b.output}}" },
        { name: "b", type: "model", prompt: "hi" }
      ]
    })
    assert.strictEqual(later.step, "a")
    assert.match(later.message, /"b", which has not finished/)
    const sibling = errorOf({
      name: "w",
      steps: [
        {
          name: "p",
          type: "parallel",
          steps: [
            { name: "x", type: "model", prompt: "hi" },
            { name: "y", type: "model", prompt: "{{steps.x.output}}" }
          ]
        }
      ]
    })
    assert.strictEqual(sibling.step, "y")
  })

  it("names the step of a bad template, expression, field or value", () => {
    assert.match(
      errorOf({ name: "w", steps: [{ name: "a", type: "model", prompt: "{{input.__proto__}}" }] }).message,
      /^step "a": "prompt" is not a valid template/
    )
    assert.match(
      errorOf({ name: "w", steps: [{ name: "a", type: "transform", expression: "eval('1')" }] }).message,
      /^step "a": "expression" is not a valid expression/
    )
    assert.match(
      errorOf({ name: "w", steps: [{ name: "a", type: "model", prompt: "x", colour: "red" }] }).message,
      /^step "a": unknown field "colour"/
    )
    assert.match(
      errorOf({ name: "w", steps: [{ name: "a", type: "model" }] }).message,
      /^step "a": "prompt" is required/
    )
    assert.match(
      errorOf({
        name: "w",
        steps: [{ name: "a", type: "loop", steps: [{ name: "b", type: "sleep", duration_ms: 1 }] }]
      }).message,
      /^step "a": "max_iterations" is required/
    )
    assert.match(
      errorOf({ name: "w", steps: [{ name: "a", type: "sleep", duration_ms: -1 }] }).message,
      /^step "a": "duration_ms" must be/
    )
    assert.match(
      errorOf({ name: "w", steps: [{ name: "1a", type: "sleep", duration_ms: 1 }] }).message,
      /^step "1a": a step name/
    )
    assert.match(
      errorOf({ name: "w", steps: [{ type: "sleep", duration_ms: 1 }] }).message,
      /^step "steps\[0\]": "name" is required/
    )
    assert.match(errorOf({ name: "w", steps: [] }).message, /"steps" must be a non-empty array/)
    assert.match(errorOf({ name: "w", steps: [], extra: 1 }).message, /unknown field "extra"/)
    assert.match(errorOf("nope").message, /JSON object/)
  })

  it("bounds nesting and size", () => {
    let step: unknown = { name: "leaf", type: "sleep", duration_ms: 1 }
    for (let i = 0; i < 6; i++) step = { name: `p${i}`, type: "parallel", steps: [step] }
    assert.match(errorOf({ name: "w", steps: [step] }).message, /nest at most 4 deep/)
    const many = Array.from({ length: 101 }, (_, i) => ({ name: `s${i}`, type: "sleep", duration_ms: 1 }))
    assert.match(errorOf({ name: "w", steps: many }).message, /at most 100 steps/)
  })

  it("reads YAML as it reads JSON", () => {
    const definition = WorkflowDefinition.fromYaml(
      "name: y\nsteps:\n  - name: a\n    type: model\n    prompt: 'Hi {{input}}'\n  - name: b\n    type: teleport\n"
    )
    assert.instanceOf(definition, WorkflowDefinition.DefinitionError)
    if (definition instanceof WorkflowDefinition.DefinitionError) assert.strictEqual(definition.step, "b")
  })
})
