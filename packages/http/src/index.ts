/**
 * `@polyagent/http`: the HTTP edge of PolyAgent — the API definition, its handlers and
 * middleware, and the composition of a whole server.
 */
export * as Api from "./Api.ts"
export * as ApiError from "./ApiError.ts"
export * as Authentication from "./Authentication.ts"
export * as CompletionSafety from "./CompletionSafety.ts"
export * as Server from "./Server.ts"
