import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { OpenApi } from "effect/http-api"
import { Budgets } from "@polyagent/runtime"
import { Api } from "../src/Api.ts"
import * as ApiError from "../src/ApiError.ts"
import * as OpenApiDocument from "../src/OpenApiDocument.ts"

describe("toolchain", () => {
  it("runs on Node 24, the version the project pins", () => {
    assert.match(process.version, /^v24\./)
  })
})

describe("Api", () => {
  const document = OpenApi.fromApi(Api)

  it("documents every route of the contract", () => {
    const routes = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item ?? {}).map((method) => `${method.toUpperCase()} ${path}`)
    )
    for (const route of [
      "POST /v1/chat",
      "POST /v1/chat/stream",
      "GET /v1/sessions/{id}",
      "DELETE /v1/sessions/{id}",
      "GET /v1/models",
      "GET /v1/models/{id}/health",
      "GET /v1/health"
    ]) {
      assert.include(routes, route)
    }
  })

  it("declares bearer authentication on every route but health", () => {
    const health = document.paths["/v1/health"]?.get
    assert.deepStrictEqual(health?.security ?? [], [])
    const chat = document.paths["/v1/chat"]?.post
    assert.isAbove(chat?.security?.length ?? 0, 0)
  })
})

describe("ApiError", () => {
  it.effect("builds the envelope with the current request id and the status of its type", () =>
    Effect.gen(function* () {
      const error = yield* ApiError.make("not_found", "session x not found").pipe(
        Effect.provideService(ApiError.RequestId, "req_1")
      )
      assert.instanceOf(error, ApiError.NotFound)
      assert.deepStrictEqual(error.error, { type: "not_found", message: "session x not found", request_id: "req_1" })
      assert.strictEqual(ApiError.statusOf.not_found, 404)
      assert.strictEqual(ApiError.statusOf.upstream_timeout, 504)
      assert.strictEqual(ApiError.statusOf.budget_exceeded, 402)
    })
  )
})

describe("ApiError.failTurn", () => {
  it.effect("answers a spent budget with 402 budget_exceeded naming the budget", () =>
    Effect.gen(function* () {
      const refused = new Budgets.BudgetExceeded({ scope: "key", period: "month", limit_usd: 20 })
      const error = yield* Effect.flip(ApiError.failTurn(refused)).pipe(
        Effect.provideService(ApiError.RequestId, "req_2")
      )
      assert.instanceOf(error, ApiError.BudgetExceeded)
      assert.deepStrictEqual(error.error, {
        type: "budget_exceeded",
        message: "the API key's monthly budget of 20 USD is spent",
        request_id: "req_2"
      })
    })
  )
})

describe("api/openapi/polyagent-api.yaml", () => {
  it("is what the HttpApi definition generates (run `npm run openapi` after changing the API)", () => {
    const committed = readFileSync(fileURLToPath(new URL(`../../../${OpenApiDocument.path}`, import.meta.url)), "utf8")
    assert.strictEqual(committed, OpenApiDocument.render())
  })
})
