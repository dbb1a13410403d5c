/**
 * RBAC's one table: every route of the API has its role written down (a route forgotten there
 * would need `admin`, closed rather than open), and the roles nest `admin` ⊃ `builder` ⊃ `user`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Api, type Principal } from "../src/Api.ts"
import * as Authorization from "../src/Authorization.ts"

const routesOf = () =>
  Object.values(Api.groups).flatMap((group) =>
    Object.values(group.endpoints).map((endpoint) => `${group.identifier}.${endpoint.identifier}`)
  )

const caller = (role: Principal["Service"]["role"]): Principal["Service"] => ({
  kind: "key",
  tenant: "t",
  subject: "key_1",
  role,
  keyId: "key_1",
  models: null,
  rateLimit: null
})

describe("Authorization", () => {
  it("names the role of every authenticated route, and no route that does not exist", () => {
    const routes = routesOf().filter((route) => route !== "system.health")
    for (const route of routes) assert.property(Authorization.routeRoles, route, `${route} has no role`)
    for (const route of Object.keys(Authorization.routeRoles)) assert.include(routes, route)
  })

  it("lets each role through its routes and those below, never above", () => {
    assert.isTrue(Authorization.permits(caller("user"), "chat.send"))
    assert.isFalse(Authorization.permits(caller("user"), "agents.create"))
    assert.isTrue(Authorization.permits(caller("builder"), "agents.create"))
    assert.isFalse(Authorization.permits(caller("builder"), "keys.create"))
    assert.isFalse(Authorization.permits(caller("builder"), "audit.list"))
    assert.isTrue(Authorization.permits(caller("admin"), "audit.list"))
    assert.isTrue(Authorization.permits(caller("admin"), "chat.send"))
    assert.isFalse(Authorization.permits(caller("builder"), "a.route.nobody.listed"))
  })
})
