import { defineConfig } from "vitest/config"

// The workspace packages export their built `dist/` to Node; tests run on their TypeScript sources
// through the "@polyagent/source" export condition (as tsconfig.base.json's `customConditions` does),
// added to Vite's default server conditions.
const conditions = ["@polyagent/source", "module", "node", "development|production"]

export default defineConfig({
  test: {
    // The JSON report gives .ci/run its totals; the default reporter is for people.
    reporters: ["default", ["json", { outputFile: ".vitest-report.json" }]],
    projects: [
      { test: { name: "tools", root: "packages/tools", include: ["test/**/*.test.ts"] } },
      { test: { name: "runtime", root: "packages/runtime", include: ["test/**/*.test.ts"] } },
      { test: { name: "providers", root: "packages/providers", include: ["test/**/*.test.ts"] } },
      { test: { name: "http", root: "packages/http", include: ["test/**/*.test.ts"] } },
      { test: { name: "plugins", root: "plugins", include: ["*/test/**/*.test.ts"] } },
      { test: { name: "examples", root: "examples", include: ["*/test/**/*.test.ts"] } },
      {
        test: {
          name: "e2e",
          root: "tests",
          include: ["test/**/*.test.ts"],
          globalSetup: ["src/buildServer.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000
        }
      }
    ]
  },
  ssr: { resolve: { conditions } }
})
