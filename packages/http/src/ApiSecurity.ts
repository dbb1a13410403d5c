/**
 * The API's middleware contracts: who the caller is ({@link Principal}), the bearer
 * authentication that resolves it (implemented in `Authentication.ts`), and the translation of
 * request decoding failures into the envelope.
 */
import * as Context from "effect/Context"
import * as HttpApiMiddleware from "effect/http-api/HttpApiMiddleware"
import * as HttpApiSecurity from "effect/http-api/HttpApiSecurity"
import { type RateLimiter, Storage } from "@polyagent/runtime"
import * as ApiError from "./ApiError.ts"

/** Who is calling: resolved from the bearer token by {@link Authentication}. */
export class Principal extends Context.Service<
  Principal,
  {
    /** How the caller authenticated: an API key or a JWT. */
    readonly kind: "key" | "jwt"
    readonly tenant: string
    /** The key's id for a key, the token's `sub` for a JWT. */
    readonly subject: string
    readonly role: Storage.Role
    /** The API key's id; null for a JWT. */
    readonly keyId: string | null
    /** The model, route or experiment names the caller may ask for; null: any. */
    readonly models: ReadonlyArray<string> | null
    /** The caller's own rate limit; null: the configured one (`rate_limit`). */
    readonly rateLimit: RateLimiter.Limit | null
  }
>()("@polyagent/http/Principal") {}

/**
 * Bearer authentication with an API key or a JWT, and the route's role (`Authorization.ts`). A
 * key that cannot be looked up because storage is unreachable answers 503 `unavailable`, never
 * 401; a caller whose role is below the route's answers 403.
 */
export class Authentication extends HttpApiMiddleware.Service<Authentication, { provides: Principal }>()(
  "@polyagent/http/Authentication",
  {
    security: { bearer: HttpApiSecurity.bearer },
    error: [ApiError.Unauthenticated, ApiError.Forbidden, ApiError.RateLimited, ApiError.Unavailable]
  }
) {}

/** Turns request decoding failures into the `invalid_request` envelope. */
export class RequestErrors extends HttpApiMiddleware.Service<RequestErrors>()("@polyagent/http/RequestErrors", {
  error: [ApiError.InvalidRequest, ApiError.Internal]
}) {}
