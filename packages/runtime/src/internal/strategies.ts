/**
 * How a route orders its candidates for one request. Every strategy answers all the route's
 * capable models, best first, so that the rest are the failover order; which of them may be
 * called right now (their circuit breakers) is decided when the call is made.
 */
import type { Model } from "../ModelCatalog.ts"
import type { Route } from "./routingTable.ts"

/** What a strategy knows about the models and the request. */
export interface Facts {
  /** A recent latency estimate of the model, in ms; `undefined` before any data. */
  readonly latencyMs: (id: string) => number | undefined
  /** The model's dynamic weight from its recent health (1 = nominal). */
  readonly weight: (id: string) => number
  /** Whether the model's breaker is closed. */
  readonly closed: (id: string) => boolean
  /** The request's prompt tokens, to price it. */
  readonly promptTokens: number
  /** A uniform draw in [0, 1) for this request. */
  readonly draw: number
  /** This route's count of requests so far, for exploration. */
  readonly tick: number
}

/** Output tokens assumed when pricing a request whose answer length is not known yet. */
const expectedOutputTokens = 256

/**
 * `latency` sends every `exploreEvery`-th request to the runner-up, so that a model that slowed
 * down and recovered is measured again and wins back its traffic.
 */
export const exploreEvery = 10

const price = (model: Model, promptTokens: number): number =>
  promptTokens * model.info.cost_per_1k_tokens.input + expectedOutputTokens * model.info.cost_per_1k_tokens.output

/** A model's quality: its configured score, else its output price as a proxy (dearer ranks higher). */
const quality = (model: Model): number => model.info.quality ?? model.info.cost_per_1k_tokens.output * 1000

const byScore = (models: ReadonlyArray<Model>, score: (model: Model) => number): Array<Model> =>
  models
    .map((model, index) => ({ model, index, score: score(model) }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .map(({ model }) => model)

// Models with an open breaker go last, in their order: they are tried only if all others fail.
const closedFirst = (models: ReadonlyArray<Model>, facts: Facts): Array<Model> => [
  ...models.filter((m) => facts.closed(m.info.id)),
  ...models.filter((m) => !facts.closed(m.info.id))
]

/** How close `value` is to the best, `good` (lower is better): 1 for the best, towards 0 for worse. */
const ratio = (good: number, value: number) => (value <= 0 ? 1 : Math.min(1, good / value))

/** The latency a model is ranked by: unknown counts as fastest, so a new model gets measured. */
const latencyOf = (model: Model, facts: Facts): number => facts.latencyMs(model.info.id) ?? 0

/** `route`'s capable `models` (in the route's order, with their weights) for one request, best first. */
export const order = (
  route: Route,
  models: ReadonlyArray<{ readonly model: Model; readonly weight: number }>,
  facts: Facts
): Array<Model> => {
  const plain = models.map(({ model }) => model)
  switch (route.strategy) {
    case "ordered":
      return plain
    case "cost":
      return byScore(plain, (model) => -price(model, facts.promptTokens))
    case "quality":
      return byScore(plain, quality)
    case "latency": {
      const ranked = closedFirst(
        byScore(plain, (model) => -latencyOf(model, facts)),
        facts
      )
      const [first, second, ...rest] = ranked
      if (first === undefined || second === undefined || facts.tick % exploreEvery !== exploreEvery - 1) return ranked
      return facts.closed(second.info.id) ? [second, first, ...rest] : ranked
    }
    case "balanced": {
      const { cost, latency, quality: q, reliability } = route.weights
      const cheapest = Math.min(...plain.map((m) => price(m, facts.promptTokens)))
      const fastest = Math.min(...plain.map((m) => latencyOf(m, facts)))
      const best = Math.max(...plain.map(quality))
      // Each term is in [0, 1]: 1 for the best model on that measure.
      return closedFirst(
        byScore(
          plain,
          (m) =>
            cost * ratio(cheapest, price(m, facts.promptTokens)) +
            latency * ratio(fastest, latencyOf(m, facts)) +
            q * (best <= 0 ? 1 : quality(m) / best) +
            reliability * Math.min(1, facts.weight(m.info.id))
        ),
        facts
      )
    }
    case "weighted": {
      const weighted = models.map(({ model, weight }) => ({ model, weight: weight * facts.weight(model.info.id) }))
      const total = weighted.reduce((sum, { weight }) => sum + weight, 0)
      let point = facts.draw * total
      const chosen = weighted.find(({ weight }) => (point -= weight) < 0)?.model ?? plain[0]
      const rest = byScore(
        plain.filter((m) => m !== chosen),
        (m) => weighted.find((w) => w.model === m)?.weight ?? 0
      )
      return chosen === undefined ? rest : [chosen, ...rest]
    }
  }
}
