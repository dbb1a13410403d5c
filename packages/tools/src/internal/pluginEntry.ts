/**
 * Finds the file to import for a plugin specifier, the way Node's ESM loader would from the
 * configured directory: a path (absolute, `./…`, `../…` or a `file:` URL) is a module file or a
 * package directory; anything else is a package name, found in `node_modules` by walking up from
 * `cwd`. A package's entry comes from its `exports` under the `import` condition, else `main`,
 * else `index.js`. It runs once per plugin at start-up, so plain synchronous `node:fs` is fine.
 */
import { existsSync, readFileSync, statSync } from "node:fs"
import { findPackageJSON } from "node:module"
import { dirname, isAbsolute, join, resolve } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"

/** Why a specifier names no importable file; `message` reads after the plugin's name. */
export class EntryNotFound extends Data.TaggedError("EntryNotFound")<{ readonly message: string }> {}

// What Node's `import()` matches in `exports` conditions, besides "default".
const conditions = new Set(["import", "node", "module-sync"])

const isPath = (specifier: string): boolean =>
  isAbsolute(specifier) ||
  specifier === "." ||
  specifier === ".." ||
  specifier.startsWith("./") ||
  specifier.startsWith("../") ||
  specifier.startsWith("file:")

const isFile = (path: string): boolean => statSync(path, { throwIfNoEntry: false })?.isFile() ?? false

/**
 * The absolute path of the module to import for `specifier`, resolved from `cwd`. Fails with a
 * message for people: not found, no entry, an `exports` map that hides it.
 */
export const resolvePluginEntry = (specifier: string, cwd: string): Effect.Effect<string, EntryNotFound> =>
  (isPath(specifier) ? resolvePath(specifier, cwd) : resolvePackage(specifier, cwd)).pipe(
    // `statSync` still throws on EACCES or ENOTDIR: that too is "cannot be resolved", not a crash
    Effect.catchDefect((defect) =>
      Effect.fail(new EntryNotFound({ message: `could not be resolved: ${messageOf(defect)}` }))
    )
  )

/** The message of a thrown value, without its stack. */
export const messageOf = (thrown: unknown): string =>
  Predicate.hasProperty(thrown, "message") && Predicate.isString(thrown.message) ? thrown.message : String(thrown)

const resolvePath = Effect.fnUntraced(function* (specifier: string, cwd: string) {
  const path = specifier.startsWith("file:") ? fileURLToPath(specifier) : resolve(cwd, specifier)
  const stats = statSync(path, { throwIfNoEntry: false })
  if (stats === undefined) {
    return yield* new EntryNotFound({ message: `was not found: ${path} does not exist` })
  }
  if (stats.isFile()) return path
  const manifest = join(path, "package.json")
  if (!existsSync(manifest)) {
    return yield* new EntryNotFound({ message: `is a directory without a package.json: ${path}` })
  }
  return yield* packageEntry(manifest, ".")
})

const resolvePackage = Effect.fnUntraced(function* (specifier: string, cwd: string) {
  // "@scope/pkg/a/b" is package "@scope/pkg", subpath "./a/b"
  const parts = specifier.split("/")
  const nameLength = specifier.startsWith("@") ? 2 : 1
  const name = parts.slice(0, nameLength).join("/")
  const subpath = parts.length > nameLength ? `./${parts.slice(nameLength).join("/")}` : "."
  const notInstalled = () =>
    new EntryNotFound({ message: `was not found: no package "${name}" is installed in ${cwd}` })
  const manifest = yield* Effect.try({
    try: () => findPackageJSON(specifier, pathToFileURL(join(cwd, "package.json"))),
    catch: notInstalled
  })
  if (manifest === undefined) return yield* notInstalled()
  return yield* packageEntry(manifest, subpath)
})

const packageEntry = Effect.fnUntraced(function* (manifest: string, subpath: string) {
  const directory = dirname(manifest)
  const json: unknown = yield* Effect.try({
    try: () => JSON.parse(readFileSync(manifest, "utf8")),
    catch: () => new EntryNotFound({ message: `has an unreadable package.json: ${manifest}` })
  })
  const exports = Predicate.hasProperty(json, "exports") ? json.exports : undefined
  if (exports !== undefined && exports !== null) {
    const target = exportTarget(exports, subpath)
    if (target === undefined) {
      return yield* new EntryNotFound({
        message: `does not export "${subpath}" for import in ${manifest} (check its "exports")`
      })
    }
    const path = join(directory, target)
    if (!isFile(path)) {
      return yield* new EntryNotFound({ message: `exports ${target}, which does not exist (was it built?)` })
    }
    return path
  }
  if (subpath !== ".") {
    const path = join(directory, subpath)
    if (isFile(path)) return path
    return yield* new EntryNotFound({ message: `has no module ${subpath} in ${directory}` })
  }
  const main = Predicate.hasProperty(json, "main") && Predicate.isString(json.main) ? json.main : undefined
  const candidates = main === undefined ? ["index.js"] : [main, `${main}.js`, join(main, "index.js"), "index.js"]
  const found = candidates.map((candidate) => join(directory, candidate)).find(isFile)
  if (found === undefined) {
    return yield* new EntryNotFound({
      message: `has no entry module in ${directory} (its package.json names no "exports" or "main" that exists)`
    })
  }
  return found
})

// Node's PACKAGE_EXPORTS_RESOLVE, for the conditions `import()` uses: a relative target or none.
const exportTarget = (exports: unknown, subpath: string): string | undefined => {
  const isSubpathMap =
    Predicate.isObject(exports) && !Array.isArray(exports) && Object.keys(exports).some((key) => key.startsWith("."))
  if (!isSubpathMap) return subpath === "." ? conditionalTarget(exports, undefined) : undefined
  if (Object.hasOwn(exports, subpath) && !subpath.includes("*")) {
    return conditionalTarget(exports[subpath], undefined)
  }
  let best: { readonly key: string; readonly match: string } | undefined
  for (const key of Object.keys(exports)) {
    const star = key.indexOf("*")
    if (star === -1) continue
    const prefix = key.slice(0, star)
    const suffix = key.slice(star + 1)
    if (
      subpath.length >= key.length &&
      subpath.startsWith(prefix) &&
      subpath.endsWith(suffix) &&
      (best === undefined || prefix.length > best.key.indexOf("*"))
    ) {
      best = { key, match: subpath.slice(prefix.length, subpath.length - suffix.length) }
    }
  }
  return best === undefined ? undefined : conditionalTarget(exports[best.key], best.match)
}

const conditionalTarget = (target: unknown, match: string | undefined): string | undefined => {
  if (Predicate.isString(target)) {
    if (!target.startsWith("./")) return undefined
    return match === undefined ? target : target.replaceAll("*", match)
  }
  if (Array.isArray(target)) {
    for (const candidate of target) {
      const resolved = conditionalTarget(candidate, match)
      if (resolved !== undefined) return resolved
    }
    return undefined
  }
  if (Predicate.isObject(target)) {
    for (const [condition, value] of Object.entries(target)) {
      if (condition !== "default" && !conditions.has(condition)) continue
      const resolved = conditionalTarget(value, match)
      if (resolved !== undefined) return resolved
    }
  }
  return undefined
}
