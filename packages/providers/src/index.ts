/**
 * `@polyagent/providers`: the model providers behind effect/ai's `LanguageModel`, one folder
 * each, and the catalogue that enables them from configuration. `LocalModel` is the offline
 * development model that needs no key.
 */
export * as AnthropicProvider from "./anthropic/AnthropicProvider.ts"
export * as GlmProvider from "./glm/GlmProvider.ts"
export * as LocalModel from "./local/LocalModel.ts"
export * as OpenAiCompatibleProvider from "./openai-compatible/OpenAiCompatibleProvider.ts"
export * as OpenAiProvider from "./openai/OpenAiProvider.ts"
export * as OpenRouterProvider from "./openrouter/OpenRouterProvider.ts"
export * as Provider from "./Provider.ts"
export * as ProviderCatalog from "./ProviderCatalog.ts"
