/**
 * The checks a request passes once its key is known, before it is served: where it comes from
 * (the tenant's and the key's IP allow-lists) and, for a key created with `signed: true`, its
 * signature. The same {@link RequestGuards} `check` runs on the stack (in `Authentication`) and on
 * the fast lane (`FastLane.ts`), so a request is refused alike whichever serves it.
 *
 * Signatures: `X-PolyAgent-Timestamp: <unix seconds>` and
 * `X-PolyAgent-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`. A timestamp
 * further than `security.signatures.replay_window` from the server's clock, a signature that does
 * not match (compared in constant time) and a signature already seen within the window
 * (`SeenSignatures`: Redis when configured) are each refused with 401 and a message that says
 * which, never what was expected.
 *
 * IP allow-lists: the client address is the socket's, or the one a trusted proxy forwarded
 * (`server.trusted_proxies`, see `IpAllowList.clientAddress`); outside the tenant's list
 * (`security.tenants.<tenant>.allowed_ips`) or the key's (`allowed_ips` at creation) is 403
 * `forbidden` with a generic message. Refusals are counted; IP refusals are audited, at most once a
 * minute per key and address, so a flood does not flood the audit log.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import { type AppConfig, Audit, IpAllowList, KeyGuards, SeenSignatures } from "@polyagent/runtime"
import { createHmac, timingSafeEqual } from "node:crypto"
import * as ApiError from "./ApiError.ts"

/** The header of a signed request's time, in unix seconds. */
export const timestampHeader = "x-polyagent-timestamp"
/** The header of a signed request's signature, `v1=<hex>`. */
export const signatureHeader = "x-polyagent-signature"

/** `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`: what a client sends. */
export const sign = (secret: string, timestamp: string, body: Uint8Array | string): string =>
  `v1=${createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex")}`

/** What the guards look at of a request. */
export interface Request {
  readonly tenant: string
  /** The id of the key it came with. */
  readonly keyId: string
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  /** The socket's remote address. */
  readonly remoteAddress: string | undefined
  /** The raw body, read only when the key signs its requests. */
  readonly body: Effect.Effect<Uint8Array>
}

/** A refusal. */
export type Refusal = ApiError.Unauthenticated | ApiError.Forbidden | ApiError.Unavailable

/**
 * The request guards.
 *
 * When to use: once per request, after the key is verified and before anything is served.
 *
 * Gotchas: a signature is remembered once checked: running `check` twice on one request refuses
 * it the second time. The fast lane runs it only for the requests it serves itself.
 */
export class RequestGuards extends Context.Service<
  RequestGuards,
  { readonly check: (request: Request) => Effect.Effect<void, Refusal> }
>()("@polyagent/http/RequestGuards") {}

/** Requests refused, by reason: `ip`, `unsigned`, `stale`, `bad_signature`, `replay`. */
export const refusals = Metric.counter("polyagent_request_guard_refusals_total", {
  description: "Requests refused by the IP allow-lists or the request signature checks",
  incremental: true
})

const count = (reason: string) => Metric.update(Metric.withAttributes(refusals, { reason }), 1)

const single = (value: string | ReadonlyArray<string> | undefined): string | undefined =>
  typeof value === "string" ? value : undefined

/** A 401 for a signature check that failed for `reason`, counted. */
const unsigned = (reason: string, message: string) =>
  Effect.andThen(count(reason), ApiError.fail("unauthenticated", message))

const HEX_SIGNATURE = /^v1=([0-9a-f]{64})$/
const TIMESTAMP = /^\d{1,12}$/

/** How often an IP refusal of one key and address is audited at most. */
const auditEvery = Duration.minutes(1)
const auditedCapacity = 10_000

/** The guards of the server's settings. */
export const layer = (settings: {
  readonly security: AppConfig.AppConfigValue["security"]
  readonly trustedProxies: ReadonlyArray<string>
}): Layer.Layer<RequestGuards, never, KeyGuards.KeyGuards | SeenSignatures.SeenSignatures | Audit.Audit> =>
  Layer.effect(
    RequestGuards,
    Effect.gen(function* () {
      const guards = yield* KeyGuards.KeyGuards
      const seen = yield* SeenSignatures.SeenSignatures
      const audit = yield* Audit.Audit
      const trusted = IpAllowList.make(settings.trustedProxies)
      const tenants = new Map(
        Object.entries(settings.security.tenants).map(([tenant, { allowedIps }]) => [
          tenant,
          IpAllowList.make(allowedIps)
        ])
      )
      const windowMs = Duration.toMillis(settings.security.signatures.replayWindow)
      const remembered = Duration.millis(windowMs * 2)
      const audited = new Map<string, number>()

      const refuseAddress = (request: Request, address: string) =>
        Effect.gen(function* () {
          yield* count("ip")
          const now = yield* Clock.currentTimeMillis
          const key = `${request.keyId} ${address}`
          const last = audited.get(key)
          if (last === undefined || now - last >= Duration.toMillis(auditEvery)) {
            audited.delete(key)
            if (audited.size >= auditedCapacity) audited.delete(audited.keys().next().value ?? "")
            audited.set(key, now)
            yield* audit.record({
              actor: request.keyId,
              tenant: request.tenant,
              action: "request.ip_refused",
              target: address,
              request_id: yield* ApiError.RequestId,
              outcome: "denied"
            })
          }
          return yield* ApiError.fail("forbidden", "requests are not allowed from this address")
        })

      const verify = (request: Request, secret: Redacted.Redacted<string>) =>
        Effect.gen(function* () {
          const timestamp = single(request.headers[timestampHeader])
          const signature = single(request.headers[signatureHeader])
          if (timestamp === undefined || signature === undefined) {
            return yield* unsigned(
              "unsigned",
              "this key's requests must be signed: send X-PolyAgent-Timestamp and X-PolyAgent-Signature"
            )
          }
          const now = yield* Clock.currentTimeMillis
          if (!TIMESTAMP.test(timestamp) || Math.abs(now - Number(timestamp) * 1000) > windowMs) {
            return yield* unsigned("stale", "the request's timestamp is missing or outside the replay window")
          }
          const given = HEX_SIGNATURE.exec(signature)?.[1]
          const expected = sign(Redacted.value(secret), timestamp, yield* request.body).slice(3)
          if (given === undefined || !timingSafeEqual(Buffer.from(given, "hex"), Buffer.from(expected, "hex"))) {
            return yield* unsigned("bad_signature", "the request's signature does not match")
          }
          const first = yield* seen
            .firstSeen(`${request.keyId}:${given}`, remembered)
            .pipe(
              Effect.catchTag("SeenSignaturesUnavailable", (error) =>
                Effect.logWarning("signed request refused: the store of seen signatures is unavailable", error).pipe(
                  Effect.andThen(
                    ApiError.fail("unavailable", "signed requests cannot be checked now; try again shortly")
                  )
                )
              )
            )
          if (!first) return yield* unsigned("replay", "this signed request was already received")
        })

      return RequestGuards.of({
        check: (request) =>
          Effect.gen(function* () {
            const tenantList = tenants.get(request.tenant)
            const guard = yield* guards
              .get(request.keyId)
              .pipe(
                Effect.catch((error) =>
                  Effect.logError("a key's guards cannot be read", error).pipe(
                    Effect.andThen(ApiError.fail("unavailable", "this key cannot be checked now; try again shortly"))
                  )
                )
              )
            if (tenantList !== undefined || guard?.allowedIps !== undefined) {
              const address = IpAllowList.clientAddress(
                request.remoteAddress,
                request.headers["x-forwarded-for"],
                trusted
              )
              const allowed =
                (tenantList === undefined || IpAllowList.allows(tenantList, address)) &&
                (guard?.allowedIps === undefined || IpAllowList.allows(guard.allowedIps, address))
              if (!allowed) return yield* refuseAddress(request, IpAllowList.format(address))
            }
            if (guard?.signingSecret !== undefined) yield* verify(request, guard.signingSecret)
          })
      })
    })
  )

/** Guards that let every request through: for tests of the lane and the stack without keys' guards. */
export const layerNone: Layer.Layer<RequestGuards> = Layer.succeed(
  RequestGuards,
  RequestGuards.of({ check: () => Effect.void })
)
