/**
 * Global setup of the e2e project: the tests run the built server (`npm start` runs
 * `packages/http/dist/bin.js`), so it is built first with `tsc -b packages/http`, which does
 * nothing when `dist/` is up to date with the sources (`npm test` built it in its typecheck).
 */
import { execFileSync } from "node:child_process"
import { resolve } from "node:path"

export default function buildServer(): void {
  const root = resolve(import.meta.dirname, "../..")
  execFileSync(process.execPath, [resolve(root, "node_modules/typescript/bin/tsc"), "-b", "packages/http"], {
    cwd: root,
    stdio: "inherit"
  })
}
