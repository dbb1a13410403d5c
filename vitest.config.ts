import { defineConfig } from "vitest/config"

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
      { test: { name: "e2e", root: "tests", include: ["test/**/*.test.ts"], testTimeout: 60_000, hookTimeout: 60_000 } }
    ]
  }
})
