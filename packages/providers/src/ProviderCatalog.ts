/**
 * The model catalogue of a running server: every enabled provider's models behind the
 * runtime's `ModelCatalog`. Today that is the offline `local` model; providers that
 * need a key join when their key is configured.
 */
import { Effect, Layer } from "effect"
import { AppConfig, ModelCatalog } from "@polyagent/runtime"
import * as LocalModel from "./local/LocalModel.ts"

/** The catalogue for `config`; fails start-up when `models.default` names no enabled model. */
export const layer = (
  config: AppConfig.AppConfigValue
): Layer.Layer<ModelCatalog.ModelCatalog, AppConfig.ConfigError> =>
  Layer.effect(
    ModelCatalog.ModelCatalog,
    Effect.gen(function* () {
      const models: Array<ModelCatalog.Model> = [
        { info: LocalModel.info, languageModel: yield* LocalModel.make({ chunkDelay: config.models.local.chunkDelay }) }
      ]
      if (!models.some((model) => model.info.id === config.models.default)) {
        const enabled = models.map((model) => model.info.id).join(", ")
        return yield* new AppConfig.ConfigError({
          message: `models.default: "${config.models.default}" is not an enabled model (enabled: ${enabled})`
        })
      }
      return ModelCatalog.make(models, config.models.default)
    })
  )
