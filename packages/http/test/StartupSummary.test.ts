/**
 * StartupSummary: the storage it names never carries credentials or connection options.
 */
import { assert, describe, it } from "@effect/vitest"
import { AppConfig } from "@polyagent/runtime"
import { Effect, Option, Redacted } from "effect"
import * as StartupSummary from "../src/StartupSummary.ts"

const storageWith = (postgresUrl?: string) =>
  Effect.map(
    AppConfig.make({
      storage: {
        dataDir: "/var/lib/polyagent",
        postgresUrl: postgresUrl === undefined ? Option.none() : Option.some(Redacted.make(postgresUrl))
      }
    }),
    StartupSummary.storageOf
  )

describe("StartupSummary", () => {
  it.effect("names the embedded database by its directory", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* storageWith(), "sqlite /var/lib/polyagent")
    })
  )

  it.effect("names PostgreSQL by host, port and database only", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* storageWith("postgres://polyagent:s3cret-pw@db.internal:6543/prod?sslmode=require&options=-c%20x"),
        "postgresql db.internal:6543/prod"
      )
      assert.strictEqual(yield* storageWith("postgres://postgres@127.0.0.1/test"), "postgresql 127.0.0.1:5432/test")
    })
  )
})
