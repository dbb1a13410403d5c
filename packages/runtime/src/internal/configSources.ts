/**
 * Where the configuration comes from, before it is decoded: the YAML file, read and parsed
 * (its errors name the file and line, never quote it: a line may hold a secret), and the
 * merge of the sources in their YAML shape.
 */
import { readFile } from "node:fs/promises"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { parse, YAMLParseError } from "yaml"

/** Configuration could not be loaded; `message` names the key path and the source, never a secret. */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", { message: Schema.String }) {}

export const isPlainObject = (u: unknown): u is { readonly [key: string]: unknown } =>
  Predicate.isObject(u) && [Object.prototype, null].includes(Object.getPrototypeOf(u))
export const own = (u: unknown, key: string): unknown =>
  isPlainObject(u) && Object.hasOwn(u, key) ? u[key] : undefined

// Plain objects merge key by key; anything else (Duration, Option, arrays) replaces. An empty
// YAML section (`catalog:` parses as null) keeps the defaults under it.
export const deepMerge = (base: unknown, over: unknown): unknown => {
  if (over === undefined || (over === null && isPlainObject(base))) return base
  if (!isPlainObject(base) || !isPlainObject(over)) return over
  const keys = new Set([...Object.keys(base), ...Object.keys(over)])
  return Object.fromEntries([...keys].map((key) => [key, deepMerge(own(base, key), own(over, key))]))
}
export const nest = (path: ReadonlyArray<string>, value: unknown): unknown =>
  path.reduceRight<unknown>((inner, key) => Object.fromEntries([[key, inner]]), value)

/** The configuration file: how messages name it, where it is, and whether it must exist. */
export type ConfigFile = { readonly label: string; readonly absolute: string; readonly required: boolean }
export const readConfigFile = (file: ConfigFile) =>
  Effect.tryPromise({ try: () => readFile(file.absolute, "utf8"), catch: (cause) => cause }).pipe(
    Effect.map(Option.some),
    Effect.catch((cause) => {
      const code = Predicate.hasProperty(cause, "code") ? cause.code : undefined
      if (code === "ENOENT" && !file.required) return Effect.succeedNone
      const reason = code === "ENOENT" ? "file not found" : `cannot be read (${String(code ?? cause)})`
      const label = file.required ? `POLYAGENT_CONFIG=${file.label}` : file.label
      return Effect.fail(new ConfigError({ message: `${label}: ${reason}` }))
    })
  )

// The pretty message quotes the offending lines, which may hold a secret: keep its first clause.
export const parseYaml = (label: string, text: string) =>
  Effect.try({
    try: (): unknown => parse(text, { prettyErrors: true }),
    catch: (cause) => {
      const first = (cause instanceof Error ? cause.message : String(cause)).split("\n")[0] ?? ""
      const description = first.replace(/ at line \d+, column \d+:?$/, "")
      const at = cause instanceof YAMLParseError ? cause.linePos?.[0] : undefined
      const where = at === undefined ? label : `${label}:${at.line}:${at.col}`
      return new ConfigError({ message: `${where}: invalid YAML: ${description}` })
    }
  }).pipe(
    Effect.filterOrFail(
      (doc) => doc === null || isPlainObject(doc),
      () => new ConfigError({ message: `${label}: expected a mapping of settings at the top level` })
    ),
    Effect.filterOrFail(
      (doc) => envOnlyIn(doc) === undefined,
      (doc) =>
        new ConfigError({
          message: `${label}: unknown key "${envOnlyIn(doc)}" (set providers' keys and URLs with OPENAI_API_KEY, OPENAI_BASE_URL etc.)`
        })
    )
  )

// A provider's key and base URL come from the environment only; a file sets its connections.
const envOnlyKeys = ["api_key", "base_url"]
const envOnlyIn = (doc: unknown): string | undefined => {
  const providers = own(doc, "providers")
  if (providers === undefined || providers === null) return undefined
  if (!isPlainObject(providers)) return "providers"
  for (const [name, settings] of Object.entries(providers)) {
    const key = envOnlyKeys.find((k) => own(settings, k) !== undefined)
    if (key !== undefined) return `providers.${name}.${key}`
  }
  return undefined
}
