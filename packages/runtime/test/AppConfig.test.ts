/**
 * AppConfig: precedence of defaults, YAML file and environment; error messages that name the
 * key and its source; secrets that stay redacted.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as NodePath from "node:path"
import { inspect } from "node:util"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Option, Redacted } from "effect"
import * as AppConfig from "../src/AppConfig.ts"

const shippedYaml = fileURLToPath(new URL("../../../config/polyagent.yaml", import.meta.url))

/** A temporary working directory, with `config/polyagent.yaml` when `yaml` is given. */
const workDir = (yaml?: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = mkdtempSync(NodePath.join(tmpdir(), "polyagent-config-"))
      if (yaml !== undefined) {
        mkdirSync(NodePath.join(dir, "config"))
        writeFileSync(NodePath.join(dir, "config", "polyagent.yaml"), yaml)
      }
      return dir
    }),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

const loadIn = (yaml: string | undefined, env: Record<string, string> = {}) =>
  Effect.flatMap(workDir(yaml), (cwd) => AppConfig.load({ env, cwd }))

const failureOf = (yaml: string | undefined, env: Record<string, string> = {}) =>
  Effect.map(Effect.flip(loadIn(yaml, env)), (error) => error.message)

const secret = (value: Option.Option<Redacted.Redacted<string>>) => Option.map(value, Redacted.value)

describe("AppConfig", () => {
  it.effect("defaults apply with no file and an empty environment", () =>
    Effect.gen(function* () {
      const config = yield* loadIn(undefined)
      assert.strictEqual(config.server.host, "127.0.0.1")
      assert.strictEqual(config.server.port, 8080)
      assert.strictEqual(Duration.toMillis(config.server.requestTimeout), 60_000)
      assert.strictEqual(config.server.bodyLimit, 1_048_576)
      assert.strictEqual(Duration.toMillis(config.server.shutdownGrace), 10_000)
      assert.strictEqual(config.storage.dataDir, "./.polyagent")
      assert.isTrue(Option.isNone(config.storage.postgresUrl))
      assert.isTrue(Option.isNone(config.redisUrl))
      assert.strictEqual(Duration.toMillis(config.sessions.maxIdle), 60_000)
      assert.strictEqual(config.sessions.maxResident, 10_000)
      assert.isTrue(Option.isNone(config.security.adminKey))
      assert.deepStrictEqual(config.rateLimit, {
        enabled: false,
        requestsPerMinute: 600,
        burst: 60,
        tenant: null,
        routes: {},
        onRedisError: "open",
        redisPrefix: "polyagent:ratelimit:"
      })
      assert.strictEqual(config.models.default, "local")
      assert.strictEqual(Duration.toMillis(config.models.local.chunkDelay), 0)
      assert.deepStrictEqual(config.models.catalog, {})
      assert.isTrue(Option.isNone(config.providers.openai.apiKey))
    }).pipe(Effect.scoped)
  )

  it.effect("the shipped config/polyagent.yaml decodes to exactly the defaults", () =>
    Effect.gen(function* () {
      const defaults = yield* loadIn(undefined)
      const shipped = yield* loadIn(undefined, { POLYAGENT_CONFIG: shippedYaml })
      assert.deepStrictEqual(shipped, defaults)
      assert.deepStrictEqual(yield* AppConfig.make(), defaults)
    }).pipe(Effect.scoped)
  )

  it.effect("YAML overrides defaults and keeps the rest", () =>
    Effect.gen(function* () {
      const config = yield* loadIn(
        [
          "server:",
          "  port: 9000",
          "  request_timeout: 2m",
          "sessions:",
          "  max_idle: 500 millis",
          "rate_limit: { enabled: true }",
          "models:",
          "  local: { chunk_delay: 25 }",
          "  catalog:",
          "    my-model:",
          "      provider: openai",
          "      capabilities: { tools: true, vision: false, streaming: true, context_window: 128000 }",
          "      cost_per_1k_tokens: { input: 0.005, output: 0.015 }"
        ].join("\n")
      )
      assert.strictEqual(config.server.port, 9000)
      assert.strictEqual(config.server.host, "127.0.0.1")
      assert.strictEqual(Duration.toMillis(config.server.requestTimeout), 120_000)
      assert.strictEqual(Duration.toMillis(config.sessions.maxIdle), 500)
      assert.deepStrictEqual(config.rateLimit, {
        enabled: true,
        requestsPerMinute: 600,
        burst: 60,
        tenant: null,
        routes: {},
        onRedisError: "open",
        redisPrefix: "polyagent:ratelimit:"
      })
      assert.strictEqual(Duration.toMillis(config.models.local.chunkDelay), 25)
      assert.deepStrictEqual(config.models.catalog["my-model"], {
        provider: "openai",
        capabilities: { tools: true, vision: false, streaming: true, contextWindow: 128_000 },
        costPer1kTokens: { input: 0.005, output: 0.015 }
      })
    }).pipe(Effect.scoped)
  )

  it.effect("the environment overrides YAML", () =>
    Effect.gen(function* () {
      const config = yield* loadIn("server:\n  host: 10.0.0.1\n  port: 9000\nredis_url: redis://file:6379\n", {
        GATEWAY_HOST: "0.0.0.0",
        GATEWAY_PORT: "9100",
        REDIS_URL: "redis://env:6379",
        POSTGRES_URL: "postgres://u:p@db/polyagent",
        OPENAI_API_KEY: "sk-test",
        OPENAI_BASE_URL: "http://127.0.0.1:4010/v1",
        POLYAGENT_DATA_DIR: ""
      })
      assert.strictEqual(config.server.host, "0.0.0.0")
      assert.strictEqual(config.server.port, 9100)
      assert.deepStrictEqual(secret(config.redisUrl), Option.some("redis://env:6379"))
      assert.deepStrictEqual(secret(config.storage.postgresUrl), Option.some("postgres://u:p@db/polyagent"))
      assert.deepStrictEqual(secret(config.providers.openai.apiKey), Option.some("sk-test"))
      assert.deepStrictEqual(config.providers.openai.baseUrl, Option.some("http://127.0.0.1:4010/v1"))
      assert.isTrue(Option.isNone(config.providers.anthropic.apiKey))
      assert.strictEqual(config.storage.dataDir, "./.polyagent", "an empty variable counts as unset")
    }).pipe(Effect.scoped)
  )

  it.effect("a provider's connection pool: 4096 HTTP/1.1 connections by default, set per provider and per model", () =>
    Effect.gen(function* () {
      const defaults = yield* loadIn(undefined)
      for (const provider of Object.values(defaults.providers)) {
        assert.strictEqual(provider.maxConnections, 4096)
        assert.isFalse(provider.http2)
      }
      const config = yield* loadIn(
        [
          "providers:",
          "  openai: { max_connections: 10000, http2: true }",
          "models:",
          "  catalog:",
          "    llama:",
          "      provider: openai-compatible",
          "      base_url: http://127.0.0.1:11434/v1",
          "      max_connections: 16",
          "      http2: true",
          "      capabilities: { tools: true, vision: false, streaming: true, context_window: 8192 }",
          "      cost_per_1k_tokens: { input: 0, output: 0 }"
        ].join("\n"),
        { OPENAI_API_KEY: "sk-test" }
      )
      assert.strictEqual(config.providers.openai.maxConnections, 10_000)
      assert.isTrue(config.providers.openai.http2)
      assert.deepStrictEqual(secret(config.providers.openai.apiKey), Option.some("sk-test"))
      assert.strictEqual(config.providers.anthropic.maxConnections, 4096, "the others keep the default")
      assert.strictEqual(config.models.catalog["llama"]?.maxConnections, 16)
      assert.isTrue(config.models.catalog["llama"]?.http2)
      const zero = yield* failureOf("providers:\n  openai: { max_connections: 0 }\n")
      assert.include(zero, "providers.openai.max_connections: expected an integer between 1 and 65536, got 0")
      const notBool = yield* failureOf("providers:\n  anthropic: { http2: maybe }\n")
      assert.include(notBool, "providers.anthropic.http2")
      assert.include(
        yield* failureOf("providers:\n  openai: { max_conns: 8 }\n"),
        'unknown key "providers.openai.max_conns"'
      )
    }).pipe(Effect.scoped)
  )

  it.effect("without an env option, the current ConfigProvider is read", () =>
    Effect.gen(function* () {
      const cwd = yield* workDir(undefined)
      const config = yield* AppConfig.load({ cwd }).pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { GATEWAY_PORT: "0" } })))
      )
      assert.strictEqual(config.server.port, 0)
    }).pipe(Effect.scoped)
  )

  it.effect("an invalid port from the environment names GATEWAY_PORT", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failureOf(undefined, { GATEWAY_PORT: "abc" }),
        'server.port: expected an integer between 0 and 65535, got "abc" (from GATEWAY_PORT)'
      )
      assert.strictEqual(
        yield* failureOf("server:\n  port: 70000\n"),
        "server.port: expected an integer between 0 and 65535, got 70000 (in config/polyagent.yaml)"
      )
    }).pipe(Effect.scoped)
  )

  it.effect("log level and format: info and text by default, from YAML, LOG_LEVEL and LOG_FORMAT; others named", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual((yield* loadIn(undefined)).log, { level: "info", format: "text" })
      assert.deepStrictEqual((yield* loadIn("log:\n  level: debug\n  format: json\n")).log, {
        level: "debug",
        format: "json"
      })
      const fromEnv = yield* loadIn("log:\n  level: debug\n", { LOG_LEVEL: "warn", LOG_FORMAT: "json" })
      assert.deepStrictEqual(fromEnv.log, { level: "warn", format: "json" })
      assert.strictEqual(
        yield* failureOf(undefined, { LOG_FORMAT: "xml" }),
        'log.format: expected "text" | "json", got "xml" (from LOG_FORMAT)'
      )
      assert.strictEqual(
        yield* failureOf("log:\n  level: verbose\n"),
        'log.level: expected "debug" | "info" | "warn" | "error", got "verbose" (in config/polyagent.yaml)'
      )
    }).pipe(Effect.scoped)
  )

  it.effect("workers and the runner's address: from YAML and the environment, on PostgreSQL only", () =>
    Effect.gen(function* () {
      const defaults = yield* loadIn(undefined)
      assert.strictEqual(defaults.server.workers, 1)
      assert.deepStrictEqual(defaults.cluster, { runnerHost: null, runnerPort: null, listenHost: null })
      const pg = { POSTGRES_URL: "postgres://u:secret@db:5432/polyagent" }
      const clustered = yield* loadIn("server:\n  workers: 4\ncluster:\n  runner_host: 10.0.0.7\n", {
        ...pg,
        POLYAGENT_RUNNER_PORT: "20000",
        POLYAGENT_RUNNER_LISTEN_HOST: "0.0.0.0"
      })
      assert.strictEqual(clustered.server.workers, 4)
      assert.deepStrictEqual(clustered.cluster, { runnerHost: "10.0.0.7", runnerPort: 20000, listenHost: "0.0.0.0" })
      assert.strictEqual((yield* loadIn(undefined, { ...pg, POLYAGENT_WORKERS: "3" })).server.workers, 3)
      assert.strictEqual(
        yield* failureOf(undefined, { POLYAGENT_WORKERS: "2" }),
        "server.workers: 2 worker processes need PostgreSQL (POSTGRES_URL or storage.postgres_url); the embedded database belongs to one process"
      )
      assert.strictEqual(
        yield* failureOf("cluster:\n  runner_host: 10.0.0.7\n"),
        "cluster.runner_host: a cluster of processes needs PostgreSQL (POSTGRES_URL or storage.postgres_url)"
      )
      assert.strictEqual(
        yield* failureOf(undefined, { ...pg, POLYAGENT_WORKERS: "0" }),
        'server.workers: expected an integer between 1 and 256, got "0" (from POLYAGENT_WORKERS)'
      )
    }).pipe(Effect.scoped)
  )

  it.effect("invalid values name their YAML key path", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failureOf("server:\n  request_timeout: soon\n"),
        'server.request_timeout: expected a duration such as "500 millis", "60s" or "2m", or a number of milliseconds, got "soon" (in config/polyagent.yaml)'
      )
      const catalog = yield* failureOf(
        "models:\n  catalog:\n    gpt-x:\n      provider: openai\n      capabilities: { tools: true, vision: false, streaming: true, context_window: 0 }\n      cost_per_1k_tokens: { input: -1, output: 0 }\n"
      )
      assert.deepStrictEqual(catalog.split("\n"), [
        "models.catalog.gpt-x.capabilities.context_window: expected an integer >= 1, got 0 (in config/polyagent.yaml)",
        "models.catalog.gpt-x.cost_per_1k_tokens.input: expected a value greater than or equal to 0, got -1 (in config/polyagent.yaml)"
      ])
    }).pipe(Effect.scoped)
  )

  it.effect("budgets: per tenant and per key, in USD; cached and reasoning prices in the catalogue", () =>
    Effect.gen(function* () {
      const config = yield* loadIn(
        [
          "budgets:",
          "  tenants:",
          "    acme: { daily_usd: 50, monthly_usd: 1000 }",
          "    my-team: { monthly_usd: 20 }",
          "  keys: { daily_usd: 2, monthly_usd: null }",
          "models:",
          "  catalog:",
          "    my-model:",
          "      provider: openai",
          "      capabilities: { tools: true, vision: false, streaming: true, context_window: 128000 }",
          "      cost_per_1k_tokens: { input: 0.005, output: 0.015, cached_input: 0.0005, reasoning: 0.02 }"
        ].join("\n")
      )
      assert.deepStrictEqual(config.budgets, {
        tenants: { acme: { dailyUsd: 50, monthlyUsd: 1000 }, "my-team": { monthlyUsd: 20 } },
        keys: { dailyUsd: 2, monthlyUsd: null }
      })
      assert.deepStrictEqual(config.models.catalog["my-model"]?.costPer1kTokens, {
        input: 0.005,
        output: 0.015,
        cachedInput: 0.0005,
        reasoning: 0.02
      })
      assert.deepStrictEqual(
        (yield* failureOf("budgets:\n  tenants:\n    Acme_1: { daily_usd: -5, weekly_usd: 1 }\n")).split("\n"),
        [
          'config/polyagent.yaml: unknown key "budgets.tenants.Acme_1.weekly_usd"',
          "budgets.tenants.Acme_1.daily_usd: expected a value greater than or equal to 0, got -5 (in config/polyagent.yaml)"
        ]
      )
    }).pipe(Effect.scoped)
  )

  it.effect("unknown YAML keys are named, at any depth", () =>
    Effect.gen(function* () {
      const message = yield* failureOf("modles:\n  default: gpt-4o\nserver:\n  prot: 80\n")
      const lines = message.split("\n")
      assert.include(lines, 'config/polyagent.yaml: unknown key "modles"')
      assert.include(lines, 'config/polyagent.yaml: unknown key "server.prot"')
      assert.match(
        yield* failureOf("providers:\n  openai:\n    api_key: sk-x\n"),
        /unknown key "providers.openai.api_key" \(set providers' keys and URLs with OPENAI_API_KEY/
      )
      assert.match(
        yield* failureOf("providers:\n  glm: { max_connections: 8, base_url: http://x }\n"),
        /unknown key "providers.glm.base_url"/
      )
      assert.notInclude(yield* failureOf("providers:\n  openai:\n    api_key: sk-x\n"), "sk-x")
    }).pipe(Effect.scoped)
  )

  it.effect("a network allow-list entry that cannot be read is named", () =>
    Effect.gen(function* () {
      const message = yield* failureOf("tools:\n  network:\n    allow_hosts: [api.example.com, 10.0.0.0/33]\n")
      assert.include(message, "tools.network.allow_hosts")
      assert.include(message, "10.0.0.0/33")
    }).pipe(Effect.scoped)
  )

  it.effect("a YAML syntax error names the file and line, without quoting it", () =>
    Effect.gen(function* () {
      const message = yield* failureOf(
        "server:\n  port: 1\n  port: 2\nsecurity:\n  admin_key: pa_do_not_print_this_value_123\n"
      )
      assert.strictEqual(message, "config/polyagent.yaml:3:3: invalid YAML: Map keys must be unique")
      const indented = yield* failureOf("security:\n  admin_key: [pa_do_not_print_this_value_123\nserver: {}\n")
      assert.match(indented, /^config\/polyagent\.yaml:3:\d+: invalid YAML: /)
      assert.notInclude(indented, "pa_do_not_print")
    }).pipe(Effect.scoped)
  )

  it.effect("POLYAGENT_CONFIG pointing nowhere is an error", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failureOf(undefined, { POLYAGENT_CONFIG: "/nonexistent/polyagent.yaml" }),
        "POLYAGENT_CONFIG=/nonexistent/polyagent.yaml: file not found"
      )
    }).pipe(Effect.scoped)
  )

  it.effect("an admin key that is too short is refused without echoing it", () =>
    Effect.gen(function* () {
      const fromEnv = yield* failureOf(undefined, { POLYAGENT_ADMIN_KEY: "pa_tooshort_secret" })
      assert.strictEqual(
        fromEnv,
        'security.admin_key: expected a key starting with "pa_", at least 24 characters, no spaces (from POLYAGENT_ADMIN_KEY)'
      )
      const fromFile = yield* failureOf("security:\n  admin_key: xx_wrong_prefix_secret_value_1234\n")
      assert.include(fromFile, "security.admin_key: ")
      assert.notInclude(fromFile, "wrong_prefix_secret")
      const good = yield* loadIn(undefined, { POLYAGENT_ADMIN_KEY: "pa_0123456789abcdefghijkl" })
      assert.deepStrictEqual(secret(good.security.adminKey), Option.some("pa_0123456789abcdefghijkl"))
    }).pipe(Effect.scoped)
  )

  it.effect("secrets do not appear when the config is printed or serialised", () =>
    Effect.gen(function* () {
      const values = {
        POSTGRES_URL: "postgres://u:hunter2pg@db/x",
        REDIS_URL: "redis://:hunter2redis@cache:6379",
        POLYAGENT_ADMIN_KEY: "pa_hunter2hunter2hunter2admin",
        JWT_SECRET: "hunter2jwt",
        ANTHROPIC_API_KEY: "sk-ant-hunter2"
      }
      const config = yield* loadIn(undefined, values)
      const printed = [String(config), JSON.stringify(config), inspect(config, { depth: null })]
      for (const text of printed) {
        for (const value of Object.values(values)) assert.notInclude(text, value)
      }
      assert.deepStrictEqual(secret(config.security.jwtSecret), Option.some("hunter2jwt"))
    }).pipe(Effect.scoped)
  )

  it.effect("layerTest applies partial overrides to the defaults", () =>
    Effect.gen(function* () {
      const config = yield* AppConfig.AppConfig
      assert.strictEqual(config.server.port, 0)
      assert.strictEqual(config.server.host, "127.0.0.1")
      assert.strictEqual(Duration.toMillis(config.models.local.chunkDelay), 5)
    }).pipe(
      Effect.provide(
        AppConfig.AppConfig.layerTest({ server: { port: 0 }, models: { local: { chunkDelay: Duration.millis(5) } } })
      )
    )
  )

  it.effect("the resilience section is read from the file and refused with the key when wrong", () =>
    Effect.gen(function* () {
      const config = yield* loadIn(
        "resilience:\n  breaker:\n    open_base: 2s\n  shared_state:\n    on_unavailable: fail_closed\nmodels:\n  health_check_interval: 5s\n"
      )
      assert.strictEqual(Duration.toMillis(config.resilience.breaker.openBase), 2_000)
      assert.strictEqual(config.resilience.breaker.consecutiveFailures, 5, "the rest keeps its defaults")
      assert.strictEqual(config.resilience.sharedState.onUnavailable, "fail_closed")
      assert.strictEqual(Duration.toMillis(config.models.healthCheckInterval), 5_000)
      assert.include(
        yield* failureOf("resilience:\n  breaker:\n    open_base: 10m\n"),
        "expected open_base <= open_max"
      )
      assert.include(yield* failureOf("resilience:\n  retry:\n    budget_ratio: -1\n"), "resilience.retry.budget_ratio")
      assert.include(
        yield* failureOf("resilience:\n  shared_state:\n    on_unavailable: maybe\n"),
        "resilience.shared_state.on_unavailable"
      )
      assert.include(yield* failureOf("resilience:\n  breaker:\n    treshold: 3\n"), "unknown key")
    })
  )

  it.effect("routing: experiments and the classifier load, names kept as written", () =>
    Effect.gen(function* () {
      const config = yield* loadIn(
        [
          "routing:",
          "  experiments:",
          "    miniVsHaiku:",
          "      arms: { gpt-4o-mini: 70, anthropic/claude-haiku-4.5: 30 }",
          "  classifier: { model: gpt-4o-mini, timeout: 500 millis }"
        ].join("\n")
      )
      assert.deepStrictEqual(config.routing.experiments, {
        miniVsHaiku: { arms: { "gpt-4o-mini": 70, "anthropic/claude-haiku-4.5": 30 } }
      })
      assert.strictEqual(config.routing.classifier.model, "gpt-4o-mini")
      assert.strictEqual(Duration.toMillis(config.routing.classifier.timeout), 500)
      const defaults = yield* loadIn(undefined)
      assert.deepStrictEqual(defaults.routing.experiments, {})
      assert.isNull(defaults.routing.classifier.model)
      assert.strictEqual(Duration.toMillis(defaults.routing.classifier.timeout), 2_000)
    }).pipe(Effect.scoped)
  )

  it.effect("routing: a weight that is not > 0, an experiment without arms or a bad timeout is refused by key", () =>
    Effect.gen(function* () {
      const zero = yield* failureOf("routing:\n  experiments:\n    abTest:\n      arms: { gpt-4o: 0, local: 1 }\n")
      assert.include(zero, "routing.experiments.abTest.arms.gpt-4o")
      assert.include(zero, "a weight > 0")
      const empty = yield* failureOf("routing:\n  experiments:\n    abTest:\n      arms: {}\n")
      assert.include(empty, "routing.experiments.abTest.arms")
      assert.include(empty, "at least one arm")
      const unknown = yield* failureOf(
        "routing:\n  experiments:\n    abTest:\n      arms: { local: 1 }\n      split: 2\n"
      )
      assert.include(unknown, 'unknown key "routing.experiments.abTest.split"')
      const badId = yield* failureOf("routing:\n  experiments:\n    a/b:\n      arms: { local: 1 }\n")
      assert.include(badId, "routing.experiments")
      assert.include(badId, "1-64 letters, digits or _.-")
      const timeout = yield* failureOf("routing:\n  classifier: { model: null, timeout: soon }\n")
      assert.include(timeout, "routing.classifier.timeout")
    }).pipe(Effect.scoped)
  )
})
