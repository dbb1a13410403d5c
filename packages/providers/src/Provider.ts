/**
 * What every model provider offers the composition: the calls of each of its model ids, from which
 * effect/ai's `LanguageModel` is built (that interface is all the runtime ever sees), and a cheap
 * health probe for the router. A provider is built from its key, optional base URL, request
 * timeout and connection pool settings.
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as AiError from "effect/ai/AiError"
import * as LanguageModel from "effect/ai/LanguageModel"
import type { ModelCatalog } from "@polyagent/runtime"
import type * as ConnectionPool from "./ConnectionPool.ts"

/** How a provider is reached. */
export interface Settings {
  readonly apiKey: Redacted.Redacted<string>
  /** Overrides the public endpoint (tests point it at a local fake server). */
  readonly baseUrl?: string | undefined
  /** Bound on one upstream request; interrupting the Effect aborts the request at once. */
  readonly timeout: Duration.Duration
  /** The connection pool to the provider (`ConnectionPool.ts`); `ConnectionPool.defaults` when absent. */
  readonly pool?: ConnectionPool.Settings | undefined
}

/** The outcome of a health probe. */
export interface Probe {
  readonly ok: boolean
  readonly latencyMs: number
  /** The upstream HTTP status when there was an answer. */
  readonly status?: number | undefined
}

/** A configured provider. */
export interface Provider {
  /** `openai`, `anthropic`, `openrouter`, `glm`, `openai-compatible`. */
  readonly name: string
  /**
   * The calls of the model `modelId` of this provider (the id the provider's API knows): what
   * `LanguageModel.make` takes. The catalogue builds the `LanguageModel` from them, so that every
   * upstream call of every provider can be observed in one place (`ProviderCatalog.ts`).
   */
  readonly calls: (modelId: string) => Calls
  /**
   * The Chat Completions pass-through for the model `modelId`, for providers that speak OpenAI's
   * wire format (see `ModelCatalog.Relay`); absent for the others.
   */
  readonly relay?: ((modelId: string) => ModelCatalog.Relay<AiError.AiError>) | undefined
  /** A cheap authenticated request (listing models), never a paid completion. */
  readonly probe: Effect.Effect<Probe>
}

/** A model's calls: `generateText` and `streamText` against the upstream, as `LanguageModel.make` takes them. */
export type Calls = Parameters<typeof LanguageModel.make>[0]

/** effect/ai's `LanguageModel` of the model `modelId` of `provider`, as it is, without the catalogue's log. */
export const languageModel = (provider: Provider, modelId: string): Effect.Effect<LanguageModel.LanguageModel> =>
  LanguageModel.make(provider.calls(modelId))
