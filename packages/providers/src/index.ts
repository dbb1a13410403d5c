/**
 * `@polyagent/providers`: the model providers behind effect/ai's `LanguageModel`, one folder each.
 * `LocalModel` is the offline development model that needs no key.
 */
export * as LocalModel from "./local/LocalModel.ts"
export * as ProviderCatalog from "./ProviderCatalog.ts"
