/** `npm run openapi`: writes `api/openapi/polyagent-api.yaml` from the HttpApi definition. */
import { writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import * as OpenApiDocument from "../src/OpenApiDocument.ts"

const target = fileURLToPath(new URL(`../../../${OpenApiDocument.path}`, import.meta.url))
writeFileSync(target, OpenApiDocument.render())
process.stdout.write(`wrote ${target}\n`)
