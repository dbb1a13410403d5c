/**
 * Budgets and the usage ledger. Every model call is admitted by {@link Budgets} `reserve` before
 * it starts and charged by `settle` after it ends, with one {@link Charge} per model that answered
 * part of it (a failover mid-stream gives two). The ledger (`usage_ledger`, read by `Ledger`) gets
 * a row per charge whoever pays; the budgets that apply to the payer — a tenant's daily and
 * monthly limits from `budgets.tenants`, a key's from `budgets.keys` or its own `budget_usd` —
 * count what was spent and what calls in flight hold reserved, per UTC day and month, in the
 * database every process shares.
 *
 * The rule: a call is admitted while, for every budget that applies, spent + reserved is under
 * the limit; it then reserves its estimated cost until it settles. So a call that fits is never
 * refused, and however many race for the last dollars, at most one admitted call crosses the line.
 */
import * as Arr from "effect/Array"
import * as Cache from "effect/Cache"
import * as Context from "effect/Context"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import type { AppConfigValue } from "./AppConfig.ts"
import { isUnreachable } from "./Database.ts"
import { within } from "./internal/bounded.ts"
import * as BudgetSql from "./internal/budgetSql.ts"
import type { ModelInfo } from "./ModelCatalog.ts"
import { operationTimeout, StorageError } from "./Storage.ts"
import * as Usage from "./Usage.ts"

/** Who pays for a call: a tenant, and the API key the call came with (`null` for none). */
export interface Payer {
  readonly tenant: string
  readonly keyId: string | null
}

/** What one model used for one request, and its cost (`Usage.cost` at the model's prices). */
export interface Charge {
  readonly model: string
  readonly provider: string
  readonly usage: Usage.Usage
  readonly cost_usd: number
  readonly request_id: string
  readonly session_id: string | null
}

/** Whose budget: the tenant's, or the API key's. */
export const BudgetScope = Schema.Literals(["tenant", "key"])
export type BudgetScope = typeof BudgetScope.Type

/** A budget's period: the UTC day or the UTC month. */
export const BudgetPeriod = Schema.Literals(["day", "month"])
export type BudgetPeriod = typeof BudgetPeriod.Type

/**
 * A budget that applies to the payer is spent: the call was not made. The message names the
 * budget (whose, which period, its limit), never the tenant, the key or any amount spent.
 */
export class BudgetExceeded extends Schema.TaggedError<BudgetExceeded>()("BudgetExceeded", {
  scope: BudgetScope,
  period: BudgetPeriod,
  limit_usd: Schema.Number
}) {
  override get message(): string {
    const whose = this.scope === "tenant" ? "the tenant's" : "the API key's"
    return `${whose} ${this.period === "day" ? "daily" : "monthly"} budget of ${this.limit_usd} USD is spent`
  }
}

/** An admitted call, until it is settled. Opaque: only {@link Budgets} `settle` reads it. */
export interface Reservation {
  readonly payer: Payer
  /** The UTC day the call was admitted (`YYYY-MM-DD`): the day of its ledger rows. */
  readonly day: string
  /** What the call holds reserved on each of its budgets until it settles. */
  readonly estimateUsd: number
  /** The budget rows held; empty when no budget applies. */
  readonly holds: ReadonlyArray<BudgetSql.Hold>
}

/** Admission and charging of model calls. */
export class Budgets extends Context.Service<
  Budgets,
  {
    /**
     * Admits a call whose cost is estimated at `estimateUsd`: fails with BudgetExceeded when the
     * payer's budgets (tenant daily/monthly, key daily/monthly, key budget_usd) are spent. Atomic
     * across processes.
     */
    readonly reserve: (payer: Payer, estimateUsd: number) => Effect.Effect<Reservation, BudgetExceeded | StorageError>
    /**
     * Writes the charges to the ledger and releases the reservation; never fails (a failure is
     * logged). A reservation that holds no budget (no limit applies) is written in the background,
     * with others, and `settle` returns at once: nothing the payer does next depends on it.
     */
    readonly settle: (reservation: Reservation, charges: ReadonlyArray<Charge>) => Effect.Effect<void>
    /** Waits until every charge settled before is in the ledger (for tests and reports that must see them). */
    readonly flush: Effect.Effect<void>
  }
>()("@polyagent/runtime/Budgets") {
  /** Unlimited budgets in memory ({@link layerMemory}), for tests of callers. */
  static get layerMemory(): Layer.Layer<Budgets> {
    return layerMemory()
  }
}

/** Output tokens an estimate assumes when the request sets no limit. */
export const defaultOutputTokens = 4096

/**
 * The most a call to `info`'s model may cost: `promptTokens` at the input rate and
 * `maxOutputTokens` (else {@link defaultOutputTokens}, within what the context window leaves)
 * at the dearer of the output and reasoning rates, rounded up to a micro-dollar.
 *
 * When to use: for `reserve`'s estimate, with the prompt counted by `Tokens`.
 */
export const estimate = (info: ModelInfo, promptTokens: number, maxOutputTokens: number | undefined): number => {
  const price = info.cost_per_1k_tokens
  const room = Math.max(0, info.capabilities.context_window - promptTokens)
  const output = Math.min(Math.max(0, maxOutputTokens ?? defaultOutputTokens), room)
  const perThousand = promptTokens * price.input + output * Math.max(price.output, price.reasoning ?? price.output)
  return Math.ceil((perThousand / 1000) * 1e6) / 1e6
}

/** The most keys whose own budget is remembered. */
const keyBudgetCacheSize = 10_000

/** How often a settlement that failed is tried again before it is given up (and logged). */
const settleRetries = { schedule: Schedule.exponential(Duration.millis(100)), times: 3 }

// A failed read or write, `unavailable` when the database could not be reached in time.
const unavailable = (operation: string) => (cause: unknown) =>
  new StorageError({ operation, unavailable: isUnreachable(cause), cause })

const exceeded = ({ hold }: BudgetSql.Refused) =>
  new BudgetExceeded({
    scope: hold.scope.startsWith("tenant:") ? "tenant" : "key",
    period: hold.period.length === 10 ? "day" : "month",
    limit_usd: hold.limitUsd
  })

/**
 * Budgets on the `SqlClient` in context (migrated by `Database`), with the limits of `budgets`.
 *
 * Details: a payer to whom no limit applies is admitted without any SQL (a key's own budget is
 * read once, then remembered: it is fixed when the key is created). Its charges are still written
 * to the ledger by `settle`, together with the other settlements waiting at the same time.
 *
 * Gotchas: every reservation must be settled (`Effect.acquireUseRelease`), with no charges when
 * the call failed before using anything, or its estimate stays reserved for the rest of the
 * period. Spend counts in the period the call was admitted in. A call that costs more than its
 * estimate may take its budget over by the difference.
 */
export const make = Effect.fn("Budgets.make")(function* (budgets: AppConfigValue["budgets"]) {
  return yield* makeWith(BudgetSql.make(yield* SqlClient.SqlClient), budgets)
})

/**
 * Budgets of one process, in its memory, with the limits of `budgets` and the same rule as
 * {@link make}. No ledger is kept, and keys have no budget of their own (`budget_usd` is stored
 * with keys): for tests of callers, and a single process that keeps no accounts.
 */
export const makeMemory = (budgets: AppConfigValue["budgets"]): Effect.Effect<Budgets["Service"], never, Scope.Scope> =>
  makeWith(BudgetSql.memory(), budgets)

/** Tokens charged, by `model`, `provider` and `type` (`prompt`, `completion`). */
export const tokensTotal = Metric.counter("polyagent_tokens_total", {
  description: "Tokens charged for model calls, by model, provider and type (prompt, completion)",
  incremental: true
})

/** What calls cost, by `model` and `provider`, in USD. */
export const costTotal = Metric.counter("polyagent_cost_usd_total", {
  description: "Cost of model calls in USD at the catalogue's prices, by model and provider",
  incremental: true
})

// The series of each model, made once.
const modelSeries = new Map<
  string,
  {
    readonly prompt: Metric.Metric<number, unknown>
    readonly completion: Metric.Metric<number, unknown>
    readonly cost: Metric.Metric<number, unknown>
  }
>()

/** Counts `charge` in {@link tokensTotal} and {@link costTotal}. */
const count = (charge: Charge) => {
  const key = `${charge.provider}/${charge.model}`
  let found = modelSeries.get(key)
  if (found === undefined) {
    const model = { model: charge.model, provider: charge.provider }
    found = {
      prompt: Metric.withAttributes(tokensTotal, { ...model, type: "prompt" }),
      completion: Metric.withAttributes(tokensTotal, { ...model, type: "completion" }),
      cost: Metric.withAttributes(costTotal, model)
    }
    modelSeries.set(key, found)
  }
  const context = Context.empty()
  found.prompt.updateUnsafe(charge.usage.prompt_tokens, context)
  found.completion.updateUnsafe(charge.usage.completion_tokens, context)
  found.cost.updateUnsafe(charge.cost_usd, context)
}

/** The most unbudgeted charges written together. */
const settleBatch = 128

/** A row of the ledger (`usage_ledger`). */
type LedgerRow = {
  readonly tenant: string
  readonly key_id: string | null
  readonly model: string
  readonly provider: string
  readonly day: string
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly cached_tokens: number
  readonly reasoning_tokens: number
  readonly cost_usd: number
  readonly request_id: string
  readonly session_id: string | null
  readonly created_at: string
}

/** The ledger rows of a call's charges. */
const ledgerRows = (reservation: Reservation, charges: ReadonlyArray<Charge>, createdAt: string): Array<LedgerRow> =>
  charges.map((charge) => ({
    tenant: reservation.payer.tenant,
    key_id: reservation.payer.keyId,
    model: charge.model,
    provider: charge.provider,
    day: reservation.day,
    prompt_tokens: charge.usage.prompt_tokens,
    completion_tokens: charge.usage.completion_tokens,
    cached_tokens: Usage.cachedTokens(charge.usage),
    reasoning_tokens: Usage.reasoningTokens(charge.usage),
    cost_usd: charge.cost_usd,
    request_id: charge.request_id,
    session_id: charge.session_id,
    created_at: createdAt
  }))

/** What waits for the background writer: a call's ledger rows, or a flush waiting for those before it. */
type Unbudgeted = { readonly rows: ReadonlyArray<LedgerRow> } | { readonly latch: Deferred.Deferred<void> }

const msPerDay = 86_400_000
let lastDay = { number: Number.NaN, text: "" }

/** The UTC day (`YYYY-MM-DD`) of `now` (epoch ms); the text is made once a day. */
const utcDay = (now: number): string => {
  const number = Math.floor(now / msPerDay)
  if (number !== lastDay.number) lastDay = { number, text: new Date(number * msPerDay).toISOString().slice(0, 10) }
  return lastDay.text
}

const makeWith = Effect.fnUntraced(function* (store: BudgetSql.Store, budgets: AppConfigValue["budgets"]) {
  const keyBudgets = yield* Cache.makeWith(
    (keyId: string) => store.keyBudget(keyId).pipe(within(operationTimeout), Effect.mapError(unavailable("keyBudget"))),
    // A failed read is not remembered.
    { capacity: keyBudgetCacheSize, timeToLive: (exit) => (Exit.isSuccess(exit) ? Duration.infinity : Duration.zero) }
  )

  const holdsOf = (payer: Payer, day: string, keyBudget: number | null): Array<BudgetSql.Hold> => {
    const month = day.slice(0, 7)
    const holds: Array<BudgetSql.Hold> = []
    const add = (scope: string, period: string, limitUsd: number | null | undefined) => {
      if (limitUsd !== null && limitUsd !== undefined) holds.push({ scope, period, limitUsd })
    }
    const tenant = budgets.tenants[payer.tenant]
    add(`tenant:${payer.tenant}`, day, tenant?.dailyUsd)
    add(`tenant:${payer.tenant}`, month, tenant?.monthlyUsd)
    if (payer.keyId !== null) {
      add(`key:${payer.keyId}`, day, budgets.keys.dailyUsd)
      add(`key:${payer.keyId}`, month, keyBudget ?? budgets.keys.monthlyUsd)
    }
    return holds
  }

  const reserve = (payer: Payer, estimateUsd: number): Effect.Effect<Reservation, BudgetExceeded | StorageError> =>
    Effect.gen(function* () {
      const day = utcDay(yield* Clock.currentTimeMillis)
      const keyBudget = payer.keyId === null ? null : yield* Cache.get(keyBudgets, payer.keyId)
      const holds = holdsOf(payer, day, keyBudget)
      const amount = Math.max(0, estimateUsd)
      if (Arr.isReadonlyArrayNonEmpty(holds)) {
        yield* store.reserve(holds, amount).pipe(
          within(operationTimeout),
          Effect.catchTag("Refused", (refused) => Effect.fail(exceeded(refused))),
          Effect.mapError((error) => (error._tag === "BudgetExceeded" ? error : unavailable("reserve")(error)))
        )
      }
      return { payer, day, estimateUsd: amount, holds }
    })

  /** Writes `settlement`, trying again a few times; a failure is logged, never returned. */
  const write = (settlement: BudgetSql.Settlement, tenants: ReadonlyArray<string>) =>
    store.settle(settlement).pipe(
      within(operationTimeout),
      Effect.retry(settleRetries),
      Effect.catchCause((cause) =>
        Effect.logError("usage could not be charged: the ledger misses it and its reservation stays held", cause).pipe(
          Effect.annotateLogs({ tenants, charges: settlement.rows.length, cost_usd: settlement.spentUsd })
        )
      )
    )

  // Charges that hold no budget wait for nobody: one fiber writes them in batches (one settlement
  // each), and what is left when the layer closes. A flush is a latch in the same queue: it opens
  // once every batch before it is written.
  const unbudgeted = yield* Queue.unbounded<Unbudgeted>()
  const writeUnbudgeted = (batch: ReadonlyArray<Unbudgeted>) => {
    const rows = batch.flatMap((item) => ("rows" in item ? item.rows : []))
    const spentUsd = rows.reduce((sum, row) => sum + row.cost_usd, 0)
    const written = Arr.isReadonlyArrayNonEmpty(rows)
      ? write(BudgetSql.Settlement({ rows, holds: [], reservedUsd: 0, spentUsd }), [
          ...new Set(rows.map((row) => row.tenant))
        ])
      : Effect.void
    return Effect.andThen(
      written,
      Effect.forEach(batch, (item) => ("latch" in item ? Deferred.succeed(item.latch, undefined) : Effect.void), {
        discard: true
      })
    )
  }
  yield* Effect.addFinalizer(() => Effect.flatMap(Queue.clear(unbudgeted), writeUnbudgeted))
  yield* Effect.forkScoped(
    Effect.forever(
      Effect.flatMap(Queue.takeBetween(unbudgeted, 1, settleBatch), (batch) =>
        Effect.uninterruptible(writeUnbudgeted(batch))
      )
    )
  )
  const flush = Effect.gen(function* () {
    const latch = yield* Deferred.make<void>()
    Queue.offerUnsafe(unbudgeted, { latch })
    yield* Deferred.await(latch)
  })

  const settle = (reservation: Reservation, charges: ReadonlyArray<Charge>): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (charges.length === 0 && reservation.holds.length === 0) return Effect.void
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const rows = ledgerRows(reservation, charges, new Date(now).toISOString())
        for (const charge of charges) count(charge)
        if (reservation.holds.length === 0) {
          Queue.offerUnsafe(unbudgeted, { rows })
          return Effect.void
        }
        const spentUsd = rows.reduce((sum, row) => sum + row.cost_usd, 0)
        const settlement = BudgetSql.Settlement({
          rows,
          holds: reservation.holds,
          reservedUsd: reservation.estimateUsd,
          spentUsd
        })
        return write(settlement, [reservation.payer.tenant])
      })
    })

  return Budgets.of({ reserve, settle, flush })
})

/** No limits at all: every call is admitted. */
export const unlimited: AppConfigValue["budgets"] = { tenants: {}, keys: { dailyUsd: null, monthlyUsd: null } }

/** {@link makeMemory} as a layer; without `budgets`, {@link unlimited}. */
export const layerMemory = (budgets: AppConfigValue["budgets"] = unlimited): Layer.Layer<Budgets> =>
  Layer.effect(Budgets, makeMemory(budgets))

/** {@link make} as a layer, with the configuration's `budgets` (`AppConfigValue["budgets"]`). */
export const layer = (budgets: AppConfigValue["budgets"]): Layer.Layer<Budgets, never, SqlClient.SqlClient> =>
  Layer.effect(Budgets, make(budgets))
