/**
 * PolyAgent's one configuration. Three sources, lowest to highest precedence: built-in
 * defaults, a YAML file (`POLYAGENT_CONFIG`, else `config/polyagent.yaml` when present) and
 * environment variables read through the current `ConfigProvider`. The sources are merged in
 * their YAML shape (snake_case keys) and decoded once by a closed Schema, so a typo or a wrong
 * value stops start-up with a `ConfigError` naming the key, the source and what was expected.
 * Secrets decode to `Redacted` and never appear in a message.
 */
import { SafeHttp } from "@polyagent/tools"
import * as NodePath from "node:path"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import {
  ConfigError,
  type ConfigFile,
  deepMerge,
  nest,
  own,
  parseYaml,
  readConfigFile
} from "./internal/configSources.ts"
import { DurationSetting } from "./internal/durationSetting.ts"
import { Routing, routingDefaults } from "./internal/routingConfig.ts"
import { Resilience, resilienceDefaults } from "./internal/resilienceConfig.ts"
import { Cors, RateLimit, rateLimitDefaults } from "./internal/edgeConfig.ts"
import { Audit as AuditSettings, auditDefaults, Security, securityDefaults } from "./internal/securityConfig.ts"
import * as SecretsConfig from "./internal/secretsConfig.ts"
import { SafetySection, safetyDefaults } from "./internal/safetyConfig.ts"

export { DurationSetting } from "./internal/durationSetting.ts"
export { autoKeys, RouteEntry, RouteStrategy } from "./internal/routingConfig.ts"
export { type RouteClass, routeClasses } from "./internal/edgeConfig.ts"
export { JwtAlgorithm, maxClockSkew } from "./internal/securityConfig.ts"

const intAtLeast = (minimum: number, maximum = Number.MAX_SAFE_INTEGER) => {
  const expected =
    maximum === Number.MAX_SAFE_INTEGER ? `an integer >= ${minimum}` : `an integer between ${minimum} and ${maximum}`
  return Schema.Number.check(Schema.isInt({ expected }), Schema.isBetween({ minimum, maximum }, { expected }))
}
const PositiveInt = intAtLeast(1)
const NonEmpty = Schema.NonEmptyString
const NonNegative = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))
const Secret = <S extends Schema.Codec<string>>(value: S) => Schema.OptionFromNullOr(Schema.RedactedFromValue(value))
const HttpUrl = Schema.String.check(Schema.isPattern(/^https?:\/\/\S+$/, { expected: "an http(s) URL" }))

/** The size of an upstream connection pool (one file descriptor per connection). */
const MaxConnections = intAtLeast(1, 65_536)

/** One entry of `models.catalog`: adds a model or replaces a built-in one with the same id. */
export const ModelEntry = Schema.Struct({
  provider: NonEmpty,
  /** The provider's own id of the model, when it differs from the catalogue id. */
  model: Schema.optionalKey(NonEmpty),
  /** The server of an `openai-compatible` model (vLLM, Ollama, LM Studio…), e.g. `http://127.0.0.1:11434/v1`. */
  baseUrl: Schema.optionalKey(HttpUrl),
  capabilities: Schema.Struct({
    tools: Schema.Boolean,
    vision: Schema.Boolean,
    streaming: Schema.Boolean,
    contextWindow: PositiveInt
  }).pipe(Schema.encodeKeys({ contextWindow: "context_window" })),
  /** USD per 1,000 tokens; cached prompt tokens and reasoning tokens cost `input` / `output` unless priced. */
  costPer1kTokens: Schema.Struct({
    input: NonNegative,
    output: NonNegative,
    cachedInput: Schema.optionalKey(NonNegative),
    reasoning: Schema.optionalKey(NonNegative)
  }).pipe(Schema.encodeKeys({ cachedInput: "cached_input" })),
  /** The day the prices were published (`YYYY-MM-DD`). */
  priceDate: Schema.optionalKey(
    Schema.String.check(Schema.isPattern(/^\d{4}-\d{2}-\d{2}$/, { expected: "a date as YYYY-MM-DD" }))
  ),
  /** Bound on one upstream call to this model; `server.request_timeout` when absent. */
  timeout: Schema.optionalKey(DurationSetting),
  /** How good the model's answers are, 0–100, for the `quality` and `balanced` strategies (absent: ranked by price). */
  quality: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 100 }))),
  /** Connections to this model's server at most; the provider's `max_connections` when absent. */
  maxConnections: Schema.optionalKey(MaxConnections),
  /** HTTP/2 to this model's server; the provider's `http2` when absent. */
  http2: Schema.optionalKey(Schema.Boolean)
}).pipe(
  Schema.encodeKeys({
    costPer1kTokens: "cost_per_1k_tokens",
    priceDate: "price_date",
    baseUrl: "base_url",
    maxConnections: "max_connections"
  })
)

/** A spending limit in USD, `null` for none. */
const Usd = Schema.NullOr(NonNegative)

/** The budgets of one tenant: a UTC day's and a UTC month's spend; absent or `null`, unlimited. */
export const TenantBudget = Schema.Struct({
  dailyUsd: Schema.optionalKey(Usd),
  monthlyUsd: Schema.optionalKey(Usd)
}).pipe(Schema.encodeKeys({ dailyUsd: "daily_usd", monthlyUsd: "monthly_usd" }))

/** How much the server logs: `debug` adds Effect's cluster internals, `warn` keeps only failures. */
export const LogLevel = Schema.Literals(["debug", "info", "warn", "error"])

const ProviderSettings = Schema.Struct({
  apiKey: Secret(NonEmpty),
  baseUrl: Schema.OptionFromNullOr(HttpUrl),
  /** Connections kept to the provider at most (HTTP/1.1: requests in flight); more wait in a queue. */
  maxConnections: MaxConnections,
  /** HTTP/2 to the provider: negotiated over https, prior knowledge (h2c) over http. */
  http2: Schema.Boolean
}).pipe(Schema.encodeKeys({ apiKey: "api_key", baseUrl: "base_url", maxConnections: "max_connections" }))

/**
 * The whole configuration. Decoding takes the YAML shape (snake_case keys, durations as
 * strings or milliseconds, secrets as strings or `null`) and yields camelCase fields with
 * `Duration`, `Option<Redacted>` and validated numbers. Decode with `onExcessProperty: "error"`.
 */
export const AppConfigSchema = Schema.Struct({
  server: Schema.Struct({
    host: NonEmpty,
    port: intAtLeast(0, 65535),
    requestTimeout: DurationSetting,
    bodyLimit: PositiveInt,
    shutdownGrace: DurationSetting,
    workers: intAtLeast(1, 256),
    /** Largest request head (request line and headers) in bytes; larger ones are answered 431. */
    maxHeaderSize: intAtLeast(1024, 1_048_576),
    /** A request's head must arrive within this (slow clients answered 408). */
    headersTimeout: DurationSetting,
    /** A whole request, head and body, must arrive within this (slow clients answered 408). */
    receiveTimeout: DurationSetting,
    /** Serves plain `POST /v1/chat/completions` beneath the HTTP stack (see `FastLane.ts`); `false` for the stack only. */
    fastLane: Schema.Boolean,
    /** Proxies whose `X-Forwarded-For` names the client (addresses or CIDR ranges); none by default. */
    trustedProxies: SecretsConfig.IpList,
    /**
     * PEM files (paths, relative to the working directory) of the certificate and private key:
     * when set, the server speaks HTTPS only, HTTP/2 to clients that negotiate it; `null` = plain HTTP.
     */
    tls: Schema.NullOr(Schema.Struct({ cert: NonEmpty, key: NonEmpty }))
  }).pipe(
    Schema.encodeKeys({
      requestTimeout: "request_timeout",
      bodyLimit: "body_limit",
      shutdownGrace: "shutdown_grace",
      maxHeaderSize: "max_header_size",
      headersTimeout: "headers_timeout",
      receiveTimeout: "receive_timeout",
      fastLane: "fast_lane",
      trustedProxies: "trusted_proxies"
    })
  ),
  /** Where this process is reached as a runner of the cluster (PostgreSQL only); `null` = the default. */
  cluster: Schema.Struct({
    runnerHost: Schema.NullOr(NonEmpty),
    runnerPort: Schema.NullOr(intAtLeast(1, 65535)),
    listenHost: Schema.NullOr(NonEmpty)
  }).pipe(Schema.encodeKeys({ runnerHost: "runner_host", runnerPort: "runner_port", listenHost: "listen_host" })),
  storage: Schema.Struct({ dataDir: NonEmpty, postgresUrl: Secret(NonEmpty) }).pipe(
    Schema.encodeKeys({ dataDir: "data_dir", postgresUrl: "postgres_url" })
  ),
  redisUrl: Secret(NonEmpty),
  sessions: Schema.Struct({
    maxIdle: DurationSetting,
    maxResident: PositiveInt,
    contextStrategy: Schema.Literals(["drop_oldest", "summarise"])
  }).pipe(Schema.encodeKeys({ maxIdle: "max_idle", maxResident: "max_resident", contextStrategy: "context_strategy" })),
  security: Security,
  audit: AuditSettings,
  /** What personal data is masked, and where (`Redaction`). */
  redaction: SecretsConfig.Redaction,
  rateLimit: RateLimit,
  cors: Cors,
  models: Schema.Struct({
    default: NonEmpty,
    local: Schema.Struct({ chunkDelay: DurationSetting }).pipe(Schema.encodeKeys({ chunkDelay: "chunk_delay" })),
    catalog: Schema.Record(Schema.String, ModelEntry),
    /** How often every enabled provider is probed; each probe feeds its models' health. */
    healthCheckInterval: DurationSetting
  }).pipe(Schema.encodeKeys({ healthCheckInterval: "health_check_interval" })),
  resilience: Resilience,
  routing: Routing,
  /** Safety policies (`Safety`): input and output checks, the medical check, tenants' overrides. */
  safety: SafetySection,
  plugins: Schema.Array(NonEmpty),
  /** Spending limits (`Budgets`): per tenant, and a default for every API key; days and months in UTC. */
  budgets: Schema.Struct({
    tenants: Schema.Record(Schema.String, TenantBudget),
    keys: Schema.Struct({ dailyUsd: Usd, monthlyUsd: Usd }).pipe(
      Schema.encodeKeys({ dailyUsd: "daily_usd", monthlyUsd: "monthly_usd" })
    )
  }),
  tools: Schema.Struct({
    maxSteps: PositiveInt,
    timeout: DurationSetting,
    concurrency: PositiveInt,
    maxResultBytes: PositiveInt,
    network: Schema.Struct({
      allowHosts: Schema.Array(NonEmpty).check(
        Schema.makeFilter((entries) => {
          const invalid = SafeHttp.invalidAllowHosts(entries)
          return invalid.length === 0
            ? undefined
            : `expected host names, *.domains, IPs or CIDRs; cannot read ${JSON.stringify(invalid)}`
        })
      )
    }).pipe(Schema.encodeKeys({ allowHosts: "allow_hosts" }))
  }).pipe(Schema.encodeKeys({ maxSteps: "max_steps", maxResultBytes: "max_result_bytes" })),
  providers: Schema.Struct({
    openai: ProviderSettings,
    anthropic: ProviderSettings,
    openrouter: ProviderSettings,
    glm: ProviderSettings
  }),
  log: Schema.Struct({ level: LogLevel, format: Schema.Literals(["text", "json"]) }),
  /** `GET /metrics`: Prometheus text; it needs a bearer token unless `public`. */
  metrics: Schema.Struct({ public: Schema.Boolean })
}).pipe(Schema.encodeKeys({ redisUrl: "redis_url", rateLimit: "rate_limit" }))

/** The loaded configuration, as services read it. */
export interface AppConfigValue extends Schema.Schema.Type<typeof AppConfigSchema> {}
/** The configuration in its YAML shape (what a file, the defaults and the environment provide). */
export type AppConfigInput = typeof AppConfigSchema.Encoded

/**
 * A provider's connection pool by default: 4,096 connections, enough for 10,000 concurrent requests
 * to a 5 s upstream to pass within the default 60 s timeout (three rounds), while 10,000 client
 * connections plus the pool stay under an open-file limit of 20,000. HTTP/1.1 unless asked.
 */
export const upstreamDefaults = { max_connections: 4096, http2: false } as const

/** Built-in defaults, in YAML shape; `config/polyagent.yaml` documents the same values. */
export const defaults: AppConfigInput = {
  server: {
    host: "127.0.0.1",
    port: 8080,
    request_timeout: "60s",
    body_limit: 1_048_576,
    shutdown_grace: "10s",
    workers: 1,
    max_header_size: 16_384,
    headers_timeout: "10s",
    receive_timeout: "30s",
    fast_lane: true,
    trusted_proxies: SecretsConfig.defaults.trustedProxies,
    tls: null
  },
  cluster: { runner_host: null, runner_port: null, listen_host: null },
  storage: { data_dir: "./.polyagent", postgres_url: null },
  redis_url: null,
  sessions: { max_idle: "1m", max_resident: 10_000, context_strategy: "drop_oldest" },
  security: securityDefaults,
  audit: auditDefaults,
  redaction: SecretsConfig.defaults.redaction,
  rate_limit: rateLimitDefaults,
  cors: { origins: [] },
  routing: routingDefaults,
  safety: safetyDefaults,
  plugins: [],
  budgets: { tenants: {}, keys: { daily_usd: null, monthly_usd: null } },
  tools: { max_steps: 8, timeout: "30s", concurrency: 8, max_result_bytes: 65_536, network: { allow_hosts: [] } },
  models: { default: "local", local: { chunk_delay: "0 millis" }, catalog: {}, health_check_interval: "30s" },
  resilience: resilienceDefaults,
  providers: {
    openai: { api_key: null, base_url: null, ...upstreamDefaults },
    anthropic: { api_key: null, base_url: null, ...upstreamDefaults },
    openrouter: { api_key: null, base_url: null, ...upstreamDefaults },
    glm: { api_key: null, base_url: null, ...upstreamDefaults }
  },
  log: { level: "info", format: "text" },
  metrics: { public: false }
}

export { ConfigError } from "./internal/configSources.ts"

interface EnvSetting {
  readonly name: string
  readonly path: ReadonlyArray<string>
  readonly secret?: boolean
  readonly numeric?: boolean
}
/** Environment variables and the keys they override; the only way to set `providers`. */
export const envSettings: ReadonlyArray<EnvSetting> = [
  { name: "GATEWAY_HOST", path: ["server", "host"] },
  { name: "GATEWAY_PORT", path: ["server", "port"], numeric: true },
  { name: "POLYAGENT_WORKERS", path: ["server", "workers"], numeric: true },
  { name: "POLYAGENT_RUNNER_HOST", path: ["cluster", "runner_host"] },
  { name: "POLYAGENT_RUNNER_PORT", path: ["cluster", "runner_port"], numeric: true },
  { name: "POLYAGENT_RUNNER_LISTEN_HOST", path: ["cluster", "listen_host"] },
  { name: "POLYAGENT_DATA_DIR", path: ["storage", "data_dir"] },
  { name: "POSTGRES_URL", path: ["storage", "postgres_url"], secret: true },
  { name: "REDIS_URL", path: ["redis_url"], secret: true },
  { name: "POLYAGENT_ADMIN_KEY", path: ["security", "admin_key"], secret: true },
  { name: "JWT_SECRET", path: ["security", "jwt", "secret"], secret: true },
  { name: "JWT_PUBLIC_KEY", path: ["security", "jwt", "public_key"] },
  { name: "JWT_JWKS_URL", path: ["security", "jwt", "jwks_url"] },
  { name: "JWT_ISSUER", path: ["security", "jwt", "issuer"] },
  { name: "JWT_AUDIENCE", path: ["security", "jwt", "audience"] },
  { name: "POLYAGENT_SECRET_KEYS", path: ["security", "secret_keys"], secret: true },
  { name: "LOG_LEVEL", path: ["log", "level"] },
  { name: "LOG_FORMAT", path: ["log", "format"] },
  ...["openai", "anthropic", "openrouter", "glm"].flatMap((provider) => [
    { name: `${provider.toUpperCase()}_API_KEY`, path: ["providers", provider, "api_key"], secret: true },
    { name: `${provider.toUpperCase()}_BASE_URL`, path: ["providers", provider, "base_url"] }
  ])
]
const secretKeys = new Set(envSettings.filter((s) => s.secret === true).map((s) => s.path.join(".")))

/** Whether the `i`-th key of `path` is a name the user chose (a model id, a route, an experiment, an arm). */
const isUserKey = (path: ReadonlyArray<PropertyKey>, i: number) =>
  (i === 2 &&
    ((path[0] === "models" && path[1] === "catalog") ||
      path[0] === "routing" ||
      (path[0] === "budgets" && path[1] === "tenants") ||
      (path[0] === "security" && path[1] === "tenants") ||
      (path[0] === "safety" && path[1] === "tenants"))) ||
  (i === 3 && path[0] === "safety" && path[1] === "medical" && path[2] === "max_daily_doses") ||
  (i === 4 && path[0] === "routing" && path[1] === "experiments" && path[3] === "arms")

// Issue paths mix YAML keys and camelCase field names; users only know the YAML ones.
const userPath = (path: ReadonlyArray<PropertyKey>): ReadonlyArray<string> =>
  path.map((key, i) =>
    isUserKey(path, i)
      ? String(key)
      : String(key)
          // costPer1kTokens → cost_per_1k_tokens, but http2 stays http2.
          .replace(/([a-z])(?=[A-Z]|\d+[a-z])/g, "$1_")
          .toLowerCase()
  )
const formatter = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) =>
    Predicate.isTagged(issue, "UnexpectedKey")
      ? "unknown key"
      : Predicate.isTagged(issue, "MissingKey")
        ? "is required"
        : SchemaIssue.defaultLeafHook(issue)
})

interface Sources {
  readonly file: Option.Option<string>
  readonly env: ReadonlyMap<string, { readonly name: string; readonly raw: string }>
  readonly input: unknown
}
const describeIssue = (sources: Sources, path: ReadonlyArray<PropertyKey>, message: string): string => {
  const segments = userPath(path)
  const key = segments.join(".")
  const fileLabel = Option.getOrElse(sources.file, () => "defaults")
  if (message === "unknown key") return `${fileLabel}: unknown key "${key}"`
  const env = sources.env.get(key)
  const value = env === undefined ? segments.reduce<unknown>(own, sources.input) : env.raw
  const primitive =
    Predicate.isString(value) || Predicate.isNumber(value) || Predicate.isBoolean(value) || value === null
  const shown = primitive && !secretKeys.has(key) ? `, got ${JSON.stringify(value)}` : ""
  const origin = env === undefined ? `in ${fileLabel}` : `from ${env.name}`
  return `${key}: ${message.charAt(0).toLowerCase()}${message.slice(1)}${shown} (${origin})`
}

const describeIssues = (sources: Sources, issue: SchemaIssue.Issue): string => {
  const lines = formatter(issue).issues.map(({ path = [], message }) =>
    describeIssue(
      sources,
      path.map((p) => (typeof p === "object" ? p.key : p)),
      message
    )
  )
  return [...new Set(lines)].join("\n")
}
/**
 * Settings that are valid alone but not together. Several processes share one database only
 * through PostgreSQL: the embedded one belongs to a single process.
 */
const conflicts = (config: AppConfigValue): ReadonlyArray<string> => {
  if (Option.isSome(config.storage.postgresUrl)) return []
  const found: Array<string> = []
  if (config.server.workers > 1) {
    found.push(
      `server.workers: ${config.server.workers} worker processes need PostgreSQL (POSTGRES_URL or storage.postgres_url); the embedded database belongs to one process`
    )
  }
  for (const [key, value] of Object.entries(config.cluster)) {
    if (value === null) continue
    const name = `cluster.${key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`
    found.push(`${name}: a cluster of processes needs PostgreSQL (POSTGRES_URL or storage.postgres_url)`)
  }
  return found
}

const decodeInput = (input: unknown, sources: Sources) =>
  Schema.decodeUnknownEffect(AppConfigSchema)(input, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => new ConfigError({ message: describeIssues(sources, error.issue) })),
    Effect.filterOrElse(
      (config) => conflicts(config).length === 0,
      (config) => Effect.fail(new ConfigError({ message: conflicts(config).join("\n") }))
    )
  )

/** Where `load` reads from; both default to the real process (environment via the current `ConfigProvider`). */
export interface LoadOptions {
  readonly env?: Record<string, string | undefined>
  readonly cwd?: string
}

/**
 * Loads the configuration: defaults < YAML file < environment. `POLYAGENT_CONFIG` names the
 * file (an error if it does not exist); otherwise `config/polyagent.yaml` under `cwd` is used
 * when present. Empty environment variables count as unset.
 */
export const load = Effect.fn("AppConfig.load")(function* (
  options?: LoadOptions
): Effect.fn.Return<AppConfigValue, ConfigError> {
  const provider =
    options?.env === undefined ? yield* ConfigProvider.ConfigProvider : ConfigProvider.fromEnvRecord(options.env)
  const cwd = options?.cwd ?? (yield* Effect.sync(() => process.cwd()))
  const readEnv = (name: string) =>
    Config.option(Config.String(name))
      .parse(provider)
      .pipe(Effect.mapError((error) => new ConfigError({ message: `${name}: ${error.message}` })))

  const configured = yield* readEnv("POLYAGENT_CONFIG")
  const path = Option.getOrElse(configured, () => "config/polyagent.yaml")
  const file: ConfigFile = { label: path, absolute: NodePath.resolve(cwd, path), required: Option.isSome(configured) }
  const text = yield* readConfigFile(file)
  const yaml = Option.isSome(text) ? yield* parseYaml(file.label, text.value) : undefined

  const env = new Map<string, { readonly name: string; readonly raw: string }>()
  let input = deepMerge(defaults, yaml)
  for (const setting of envSettings) {
    const raw = yield* readEnv(setting.name)
    if (Option.isNone(raw)) continue
    env.set(setting.path.join("."), { name: setting.name, raw: raw.value })
    input = deepMerge(input, nest(setting.path, setting.numeric === true ? Number(raw.value) : raw.value))
  }
  return yield* decodeInput(input, { file: Option.map(text, () => file.label), env, input })
})

/** A partial configuration for tests: nested sections may be given in part; records and values replace. */
export type Overrides<T> = T extends { readonly [key: string]: unknown }
  ? string extends keyof T
    ? T
    : { readonly [K in keyof T]?: Overrides<T[K]> }
  : T

const isAppConfigValue = Schema.is(Schema.toType(AppConfigSchema))

/** The defaults with `overrides` applied, validated like a loaded configuration. */
export const make = Effect.fn("AppConfig.make")(function* (
  overrides: Overrides<AppConfigValue> = {}
): Effect.fn.Return<AppConfigValue, ConfigError> {
  const base = yield* decodeInput(defaults, { file: Option.none(), env: new Map(), input: defaults })
  const merged = deepMerge(base, overrides)
  if (!isAppConfigValue(merged)) return yield* new ConfigError({ message: "overrides: not a valid configuration" })
  const found = conflicts(merged)
  if (found.length > 0) return yield* new ConfigError({ message: found.join("\n") })
  return merged
})

/**
 * The configuration as a service. `layer` loads it from the real environment and working
 * directory and fails with `ConfigError`; tests use `layerFrom` or `layerTest`.
 */
export class AppConfig extends Context.Service<AppConfig, AppConfigValue>()("@polyagent/runtime/AppConfig") {
  /** Loads from the current `ConfigProvider` (the process environment by default) and `process.cwd()`. */
  static readonly layer: Layer.Layer<AppConfig, ConfigError> = Layer.effect(AppConfig, load())
  /** Provides an already loaded configuration. */
  static layerFrom(value: AppConfigValue): Layer.Layer<AppConfig> {
    return Layer.succeed(AppConfig, value)
  }
  /** The defaults with `overrides` applied (no file, no environment); invalid overrides are a defect. */
  static layerTest(overrides: Overrides<AppConfigValue> = {}): Layer.Layer<AppConfig> {
    return Layer.effect(AppConfig, Effect.orDie(make(overrides)))
  }
}
