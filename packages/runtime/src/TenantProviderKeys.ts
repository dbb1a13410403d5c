/**
 * Tenants' own provider keys ("bring your own key"): a tenant's admin stores an API key (and,
 * for the operator, a base URL) for a provider, and every model call made for that tenant to that
 * provider uses it instead of the server's. Keys are sealed by `SecretBox` (bound to their tenant
 * and provider) in `tenant_provider_keys`; no listing ever returns one.
 *
 * The model router reads a tenant's credentials once per request ({@link TenantProviderKeys}
 * `credentials`, kept in memory for {@link cacheTtl}) and provides them as
 * {@link CurrentCredentials} around the request's calls; the providers read that reference when
 * they build each upstream request. So one place decides, and every way a model is called (the
 * session actor, `/v1/chat/completions` relayed or converted, agents, the fast lane) follows it.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as SqlClient from "effect/sql/SqlClient"
import { failWith, queryOn, type StorageError } from "./internal/storageQuery.ts"
import * as SecretBox from "./SecretBox.ts"
import { nowIso } from "./Storage.ts"

/** A tenant's credential for one provider. */
export interface Credential {
  readonly apiKey: Redacted.Redacted<string>
  /** Replaces the provider's base URL for this tenant's calls; null: the server's. */
  readonly baseUrl: string | null
}

/** A configured provider as listed: never its key. */
export interface Configured {
  readonly provider: string
  readonly base_url: string | null
  readonly updated_at: string
}

const none: ReadonlyMap<string, Credential> = new Map()

/**
 * The credentials of the current request's tenant, by provider name; empty outside a request or
 * for a tenant with none. Providers read it when they build an upstream request.
 */
export const CurrentCredentials = Context.Reference<ReadonlyMap<string, Credential>>(
  "@polyagent/runtime/TenantProviderKeys/CurrentCredentials",
  { defaultValue: () => none }
)

/** The credential of `provider` for the current call, if its tenant has one. */
export const currentFor = (provider: string): Effect.Effect<Credential | undefined> =>
  Effect.map(Effect.service(CurrentCredentials), (credentials) => credentials.get(provider))

/** How long a tenant's credentials are kept in memory after they were read. */
export const cacheTtl = Duration.seconds(30)
const cacheSize = 10_000

/**
 * The tenants' provider keys.
 *
 * When to use: the routes of `/v1/tenants/{tenant}/providers` write them; the router reads them.
 *
 * Details: `credentials` opens the sealed keys and keeps them for {@link cacheTtl}; `put` and
 * `remove` forget the tenant's at once in this process (other processes within the TTL). A key that
 * does not open (a wrong or missing secret key) is left out and logged, never returned or thrown.
 *
 * Gotchas: `put` fails with `SecretBoxError` `no_key` on PostgreSQL without `POLYAGENT_SECRET_KEYS`.
 */
export class TenantProviderKeys extends Context.Service<
  TenantProviderKeys,
  {
    readonly put: (
      tenant: string,
      provider: string,
      credential: Credential
    ) => Effect.Effect<{ readonly updated_at: string }, StorageError | SecretBox.SecretBoxError>
    readonly list: (tenant: string) => Effect.Effect<ReadonlyArray<Configured>, StorageError>
    /** Whether there was a key to remove. */
    readonly remove: (tenant: string, provider: string) => Effect.Effect<boolean, StorageError>
    readonly credentials: (tenant: string) => Effect.Effect<ReadonlyMap<string, Credential>, StorageError>
  }
>()("@polyagent/runtime/TenantProviderKeys") {}

/** Where a key is sealed: its tenant and provider (a key copied to another row does not open). */
const contextOf = (tenant: string, provider: string) => `tenant_provider_keys/${tenant}/${provider}`

const str = (value: unknown): string => (typeof value === "string" ? value : "")
const strOrNull = (value: unknown): string | null => (typeof value === "string" ? value : null)

/** The store on the `SqlClient` in context, sealing with the `SecretBox` in context. */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const box = yield* SecretBox.SecretBox
  const query = queryOn(sql)
  const cache = new Map<string, { readonly until: number; readonly credentials: ReadonlyMap<string, Credential> }>()
  const ttl = Duration.toMillis(cacheTtl)

  const load = (tenant: string) =>
    Effect.gen(function* () {
      const rows =
        yield* query`SELECT provider, api_key, base_url FROM tenant_provider_keys WHERE tenant = ${tenant}`.pipe(
          failWith("tenantProviderKeys.credentials")
        )
      const credentials = new Map<string, Credential>()
      for (const row of rows) {
        const provider = str(row["provider"])
        const opened = yield* Effect.result(box.open(str(row["api_key"]), contextOf(tenant, provider)))
        if (opened._tag === "Failure") {
          yield* Effect.logWarning("a tenant's provider key cannot be opened; the server's key is used").pipe(
            Effect.annotateLogs({ tenant, provider, reason: opened.failure.reason })
          )
          continue
        }
        credentials.set(provider, { apiKey: opened.success, baseUrl: strOrNull(row["base_url"]) })
      }
      return credentials
    })

  return TenantProviderKeys.of({
    put: (tenant, provider, credential) =>
      Effect.gen(function* () {
        const sealed = yield* box.seal(credential.apiKey, contextOf(tenant, provider))
        const now = yield* nowIso
        yield* query`INSERT INTO tenant_provider_keys (tenant, provider, api_key, base_url, updated_at)
                     VALUES (${tenant}, ${provider}, ${sealed}, ${credential.baseUrl}, ${now})
                     ON CONFLICT (tenant, provider)
                     DO UPDATE SET api_key = excluded.api_key, base_url = excluded.base_url, updated_at = excluded.updated_at`.pipe(
          failWith("tenantProviderKeys.put")
        )
        cache.delete(tenant)
        return { updated_at: now }
      }),
    list: (tenant) =>
      query`SELECT provider, base_url, updated_at FROM tenant_provider_keys WHERE tenant = ${tenant} ORDER BY provider`.pipe(
        failWith("tenantProviderKeys.list"),
        Effect.map((rows) =>
          rows.map((row) => ({
            provider: str(row["provider"]),
            base_url: strOrNull(row["base_url"]),
            updated_at: str(row["updated_at"])
          }))
        )
      ),
    remove: (tenant, provider) =>
      Effect.gen(function* () {
        const found =
          yield* query`SELECT provider FROM tenant_provider_keys WHERE tenant = ${tenant} AND provider = ${provider}`.pipe(
            failWith("tenantProviderKeys.remove")
          )
        if (found.length === 0) return false
        yield* query`DELETE FROM tenant_provider_keys WHERE tenant = ${tenant} AND provider = ${provider}`.pipe(
          failWith("tenantProviderKeys.remove")
        )
        cache.delete(tenant)
        return true
      }),
    credentials: (tenant) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const cached = cache.get(tenant)
        if (cached !== undefined && cached.until > now) return cached.credentials
        // Nothing to open without a key: no tenant can have stored one.
        if (!box.configured) return none
        const credentials = yield* load(tenant)
        if (cache.size >= cacheSize) cache.delete(cache.keys().next().value ?? "")
        cache.set(tenant, { until: now + ttl, credentials })
        return credentials
      })
  })
})

/**
 * Re-seals every stored key sealed by another key than the current one (after a rotation of
 * `POLYAGENT_SECRET_KEYS`); a key that does not open is left as it is and counted. Answers how
 * many were re-sealed and how many could not be opened.
 */
export const rotate = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const box = yield* SecretBox.SecretBox
  const query = queryOn(sql)
  if (!box.configured) return { resealed: 0, unreadable: 0 }
  const rows = yield* query`SELECT tenant, provider, api_key FROM tenant_provider_keys`.pipe(
    failWith("tenantProviderKeys.rotate")
  )
  let resealed = 0
  let unreadable = 0
  for (const row of rows) {
    const [tenant, provider, sealed] = [str(row["tenant"]), str(row["provider"]), str(row["api_key"])]
    if (!box.needsRotation(sealed)) continue
    const context = contextOf(tenant, provider)
    const opened = yield* Effect.option(box.open(sealed, context))
    if (Option.isNone(opened)) {
      unreadable++
      continue
    }
    const again = yield* box.seal(opened.value, context)
    yield* query`UPDATE tenant_provider_keys SET api_key = ${again}
                 WHERE tenant = ${tenant} AND provider = ${provider} AND api_key = ${sealed}`.pipe(
      failWith("tenantProviderKeys.rotate")
    )
    resealed++
  }
  return { resealed, unreadable }
})

/** {@link make} as a layer. */
export const layer: Layer.Layer<TenantProviderKeys, never, SqlClient.SqlClient | SecretBox.SecretBox> = Layer.effect(
  TenantProviderKeys,
  make
)

/** No tenant has keys of its own: for tests of the router and embedders without storage. */
export const layerNone: Layer.Layer<TenantProviderKeys> = Layer.succeed(
  TenantProviderKeys,
  TenantProviderKeys.of({
    put: () => Effect.die(new Error("TenantProviderKeys.layerNone stores nothing")),
    list: () => Effect.succeed([]),
    remove: () => Effect.succeed(false),
    credentials: () => Effect.succeed(none)
  })
)
