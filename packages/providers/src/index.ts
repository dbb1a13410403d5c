/**
 * `@polyagent/providers`: the model providers behind effect/ai's `LanguageModel`, one folder
 * each, and the catalogue that enables them from configuration. `LocalModel` is the offline
 * development model that needs no key. The catalogue is the only way to the other providers: it
 * imports a provider (and its SDK) only when configuration enables it, which a module exported
 * here could not do.
 */
export * as LocalModel from "./local/LocalModel.ts"
export * as Provider from "./Provider.ts"
export * as ProviderCatalog from "./ProviderCatalog.ts"
