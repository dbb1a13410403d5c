/** Package layering of ../shared/DESIGN.md, and no cycles anywhere. */
module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", from: {}, to: { circular: true } },
    {
      name: "runtime-knows-no-transport-or-provider",
      severity: "error",
      from: { path: "^packages/runtime/src" },
      to: { path: ["^packages/(http|providers)/", "@polyagent/(http|providers)"] }
    },
    {
      name: "tools-stands-alone",
      severity: "error",
      from: { path: "^packages/tools/src" },
      to: { path: ["^packages/(runtime|http|providers)/", "@polyagent/(runtime|http|providers)"] }
    },
    {
      name: "plugins-import-only-the-sdk",
      severity: "error",
      from: { path: "^(plugins|examples)/" },
      to: { path: ["^packages/(runtime|http|providers)/", "@polyagent/(runtime|http|providers)"] }
    },
    {
      name: "plugins-import-the-sdk-effect-and-node-only",
      severity: "error",
      from: { path: "^(plugins|examples)/[^/]+/src" },
      to: {
        dependencyTypesNot: ["core"],
        pathNot: ["^(plugins|examples)/[^/]+/src/", "^packages/tools/src/", "node_modules/effect/"]
      }
    },
    {
      name: "only-http-composes-providers",
      severity: "error",
      from: { path: "^packages/(runtime|tools)/" },
      to: { path: "^packages/providers/" }
    }
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "\\.tsbuild|/dist/" },
    tsPreCompilationDeps: true,
    parser: "swc",
    combinedDependencies: true,
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["@polyagent/source", "import", "default"],
      extensions: [".ts", ".js"]
    }
  }
}
