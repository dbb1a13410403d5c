/**
 * Token buckets in Redis: one Lua script refills every bucket of a request by the time elapsed,
 * and takes a token from each only if each has one — atomically, so processes sharing the Redis
 * share the limits exactly. The script mirrors `tokenBucket.ts` (same units, same rules); the
 * caller passes its clock, so TestClock drives it as it drives the in-process limiter. Each bucket
 * is a hash `{l: level, t: at}` that expires once it would be full again.
 */
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { createHash } from "node:crypto"
import * as RedisConnection from "./redisConnection.ts"
import * as TokenBucket from "./tokenBucket.ts"

// KEYS: the buckets. ARGV[1]: now (epoch ms); then per bucket its burst and requests per minute.
// Answers {allowed (0|1), level of each bucket after the take}.
const script = `
local now = tonumber(ARGV[1])
local unit = ${TokenBucket.unit}
local levels = {}
local stamps = {}
local allowed = 1
for i = 1, #KEYS do
  local capacity = tonumber(ARGV[2 * i]) * unit
  local rate = tonumber(ARGV[2 * i + 1])
  local stored = redis.call('HMGET', KEYS[i], 'l', 't')
  local level = tonumber(stored[1])
  local at = tonumber(stored[2])
  if level == nil or at == nil then
    level = capacity
    at = now
  elseif now > at then
    level = math.min(capacity, level + (now - at) * rate)
    at = now
  else
    level = math.min(capacity, level)
  end
  levels[i] = level
  stamps[i] = at
  if level < unit then allowed = 0 end
end
local answer = {allowed}
for i = 1, #KEYS do
  local burst = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1])
  local level = levels[i]
  if allowed == 1 then level = level - unit end
  redis.call('HSET', KEYS[i], 'l', string.format('%d', level), 't', string.format('%d', stamps[i]))
  redis.call('PEXPIRE', KEYS[i], math.ceil(burst * unit / rate) + 1000)
  answer[i + 1] = level
end
return answer`

const sha = createHash("sha1").update(script).digest("hex")

/** What a take answers: whether every bucket had a token, and each bucket's level after it. */
export interface Taken {
  readonly allowed: boolean
  readonly levels: ReadonlyArray<number>
}

/** A bucket to take from: its full key and its limit. */
export interface Target {
  readonly key: string
  readonly limit: TokenBucket.Limit
}

/** Bound on one take: a Redis that hangs delays a request by this much at most (a shorter one timed out
 * under load on a busy event loop, where the timer measures the loop's lag as much as Redis). */
const commandTimeoutMs = 2000

const isNoScript = (cause: unknown): boolean => cause instanceof Error && cause.message.startsWith("NOSCRIPT")

const readTaken = (reply: unknown): Taken | undefined => {
  if (!Array.isArray(reply) || reply.length === 0) return undefined
  const levels: Array<number> = []
  for (const value of reply) {
    if (typeof value !== "number") return undefined
    levels.push(value)
  }
  const [allowed, ...rest] = levels
  return { allowed: allowed === 1, levels: rest }
}

/** A take that Redis could not answer (down, too slow, or an unexpected reply). */
export class RedisTakeError extends Schema.TaggedError<RedisTakeError>()("RedisTakeError", {
  cause: Schema.Defect()
}) {}

/** Takes from buckets in the Redis at `url`, all or none. The connection lives as long as the scope. */
export const make = (options: {
  readonly url: Redacted.Redacted<string>
}): Effect.Effect<
  (targets: ReadonlyArray<Target>, now: number) => Effect.Effect<Taken, RedisTakeError>,
  never,
  Scope.Scope
> =>
  Effect.map(RedisConnection.connect({ url: options.url, commandTimeoutMs }), (client) => (targets, now) => {
    const args: Array<string | number> = [now]
    for (const target of targets) args.push(target.limit.burst, target.limit.requestsPerMinute)
    const keys = targets.map((target) => target.key)
    return Effect.tryPromise({
      // EVALSHA saves sending the script each time; a Redis that lost it (restart) gets it again.
      try: (): Promise<unknown> =>
        client
          .evalsha(sha, keys.length, ...keys, ...args)
          .catch((cause: unknown) =>
            isNoScript(cause) ? client.eval(script, keys.length, ...keys, ...args) : Promise.reject(cause)
          ),
      catch: (cause) => new RedisTakeError({ cause })
    }).pipe(
      Effect.flatMap((reply) => {
        const taken = readTaken(reply)
        return taken === undefined
          ? Effect.fail(new RedisTakeError({ cause: new Error("unexpected reply of the rate-limit script") }))
          : Effect.succeed(taken)
      })
    )
  })
