/**
 * `GET /docs`: the API reference page (Scalar) of the HttpApi definition, built on the first
 * request instead of at start-up. effect's `HttpApiScalar.layer` imports Scalar's script when the
 * layer is built: ~3 MB of JavaScript, held twice (as module source and as the string served),
 * ~12 MB of heap in every server whether or not anyone reads its docs.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpApiScalar from "effect/http-api/HttpApiScalar"
import { Api } from "./Api.ts"

/**
 * Serves the reference page at `options.path`, exactly as `HttpApiScalar.layer(Api, options)` does.
 *
 * Gotchas: the first request pays for loading Scalar's script and rendering the OpenAPI document
 * (tens of milliseconds); the page is then kept for the life of the server.
 */
export const layer = (options: { readonly path: `/${string}` }) =>
  HttpRouter.use(
    Effect.fnUntraced(function* (router) {
      const scope = yield* Effect.scope
      // A memo map of its own: the server's would hand the page layer the server's router again.
      const memoMap = yield* Layer.makeMemoMap
      const page = yield* Effect.cached(
        HttpRouter.toHttpEffect(HttpApiScalar.layer(Api, options)).pipe(
          Scope.provide(scope),
          Effect.provideService(Layer.CurrentMemoMap, memoMap)
        )
      )
      yield* router.add("GET", options.path, Effect.flatten(page))
    })
  )
