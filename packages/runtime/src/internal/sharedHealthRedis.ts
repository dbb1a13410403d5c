/**
 * Shared health in Redis (ioredis): two hashes under a key prefix. `<prefix>windows` maps
 * `<process> <model>` to `{at, summary}`; `<prefix>breakers` maps a model to its newest breaker
 * record, written by a script that keeps a newer record already there. The connection
 * (`redisConnection.ts`) fails commands at once while disconnected, so a Redis outage costs a
 * failed sync, never a blocked caller.
 */
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { BreakerRecord } from "./circuitBreaker.ts"
import * as RedisConnection from "./redisConnection.ts"
import * as Shared from "./sharedHealth.ts"

// Keeps the stored record when its updatedAt is newer than the one offered.
const publishBreakerScript = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded.updatedAt) and tonumber(decoded.updatedAt) > tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`

/** Bound on one command, so a Redis that accepts connections but does not answer cannot stall a sync. */
const commandTimeoutMs = 2000

const attempt = <A>(run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (cause) => new Shared.SharedStateError({ store: "redis", cause }) })

/** A store over the Redis at `url`; keys start with `prefix`. The connection lives as long as the scope. */
export const make = (options: {
  readonly url: Redacted.Redacted<string>
  readonly prefix: string
}): Effect.Effect<Shared.SharedStore, never, Scope.Scope> =>
  Effect.gen(function* () {
    const client = yield* RedisConnection.connect({ url: options.url, commandTimeoutMs })
    const windowsKey = `${options.prefix}windows`
    const breakersKey = `${options.prefix}breakers`

    return {
      name: "redis",
      publishWindows: (windows: ReadonlyArray<Shared.SharedWindow>, staleBefore: number) =>
        attempt(async () => {
          const stored = await client.hgetall(windowsKey)
          const stale = Object.entries(stored)
            .filter(([, text]) => {
              const at = atOf(text)
              return at === undefined || at < staleBefore
            })
            .map(([field]) => field)
          const pipeline = client.pipeline()
          if (stale.length > 0) pipeline.hdel(windowsKey, ...stale)
          for (const window of windows) {
            pipeline.hset(
              windowsKey,
              `${window.process} ${window.model}`,
              JSON.stringify({ at: window.at, summary: Shared.encodeSummary(window.summary) })
            )
          }
          return pipeline.exec()
        }).pipe(
          Effect.flatMap((results) => {
            const failed = results?.find(([error]) => error !== null)
            return failed === undefined
              ? Effect.void
              : Effect.fail(new Shared.SharedStateError({ store: "redis", cause: failed[0] }))
          })
        ),
      publishBreaker: (model: string, record: BreakerRecord) =>
        attempt(() =>
          client.eval(
            publishBreakerScript,
            1,
            breakersKey,
            model,
            Shared.encodeBreaker(record),
            String(record.updatedAt)
          )
        ).pipe(Effect.asVoid),
      read: (since: number) =>
        attempt(async () => {
          const [windows, breakers] = await Promise.all([client.hgetall(windowsKey), client.hgetall(breakersKey)])
          return { windows, breakers }
        }).pipe(
          Effect.map(({ windows, breakers }) => ({
            windows: Object.entries(windows).flatMap(([field, text]): ReadonlyArray<Shared.SharedWindow> => {
              const separator = field.indexOf(" ")
              const entry = parseEntry(text)
              if (separator < 0 || entry === undefined || entry.at < since) return []
              return [{ process: field.slice(0, separator), model: field.slice(separator + 1), ...entry }]
            }),
            breakers: new Map(
              Object.entries(breakers).flatMap(([model, text]) => {
                const record = Shared.readBreaker(text)
                return record === undefined ? [] : [[model, record] as const]
              })
            )
          }))
        )
    } satisfies Shared.SharedStore
  })

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const atOf = (text: string): number | undefined => {
  const value = parseJson(text)
  if (typeof value !== "object" || value === null || !("at" in value)) return undefined
  return typeof value.at === "number" ? value.at : undefined
}

const parseEntry = (text: string) => {
  const value = parseJson(text)
  if (typeof value !== "object" || value === null || !("at" in value) || !("summary" in value)) return undefined
  const summary = Shared.readSummary(value.summary)
  return typeof value.at === "number" && summary !== undefined ? { at: value.at, summary } : undefined
}
