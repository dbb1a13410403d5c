/**
 * The OpenAPI document of the API as committed in `api/openapi/polyagent-api.yaml`:
 * generated from the HttpApi definition, never edited by hand.
 */
import * as OpenApi from "effect/http-api/OpenApi"
import { stringify } from "yaml"
import { Api } from "./Api.ts"

/** Where the document is committed, relative to the repository root. */
export const path = "api/openapi/polyagent-api.yaml"

/** The document as YAML, byte for byte what `npm run openapi` writes. */
export const render = (): string =>
  `# Generated from packages/http/src/Api.ts by \`npm run openapi\`. Do not edit.\n${stringify(OpenApi.fromApi(Api), { lineWidth: 0 })}`
