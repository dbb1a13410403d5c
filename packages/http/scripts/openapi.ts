/**
 * `npm run openapi` writes `api/openapi/polyagent-api.yaml` from the HttpApi definition;
 * `npm run openapi:check` (part of `npm test`) fails when the committed file is stale.
 */
import { OpenApi } from "effect/http-api"
import { readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { stringify } from "yaml"
import { Api } from "../src/Api.ts"

const target = fileURLToPath(new URL("../../../api/openapi/polyagent-api.yaml", import.meta.url))
const header = "# Generated from packages/http/src/Api.ts by `npm run openapi`. Do not edit.\n"
const document = header + stringify(OpenApi.fromApi(Api), { lineWidth: 0 })

if (process.argv.includes("--check")) {
  let committed = ""
  try {
    committed = readFileSync(target, "utf8")
  } catch {
    committed = ""
  }
  if (committed !== document) {
    process.stderr.write("api/openapi/polyagent-api.yaml is stale: run `npm run openapi` and commit it.\n")
    process.exit(1)
  }
} else {
  writeFileSync(target, document)
  process.stdout.write(`wrote ${target}\n`)
}
