/**
 * `GET /docs` built on the first request serves the page effect's `HttpApiScalar.layer` serves
 * when it is built at start-up, and keeps serving it.
 */
import { afterAll, assert, describe, it } from "vitest"
import { HttpRouter } from "effect/http"
import { HttpApiScalar } from "effect/http-api"
import { Api } from "../src/Api.ts"
import * as ApiDocs from "../src/ApiDocs.ts"

const lazy = HttpRouter.toWebHandler(ApiDocs.layer({ path: "/docs" }), { disableLogger: true })
const eager = HttpRouter.toWebHandler(HttpApiScalar.layer(Api, { path: "/docs" }), { disableLogger: true })

afterAll(async () => {
  await lazy.dispose()
  await eager.dispose()
})

const get = (handler: typeof lazy.handler) => handler(new Request("http://localhost/docs"))

describe("ApiDocs", () => {
  it("serves the Scalar reference page of the API, as HttpApiScalar.layer does, on every request", async () => {
    const expected = await get(eager.handler)
    const expectedBody = await expected.text()
    for (let request = 0; request < 2; request++) {
      const page = await get(lazy.handler)
      assert.strictEqual(page.status, 200)
      assert.strictEqual(page.headers.get("content-type"), expected.headers.get("content-type"))
      const body = await page.text()
      assert.include(body, "Scalar.createApiReference")
      assert.include(body, '"title":"PolyAgent')
      assert.strictEqual(body, expectedBody)
    }
  })
})
