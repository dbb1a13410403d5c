/**
 * The audit log: who did what to which resource of which tenant, when, in which request, and
 * how it ended. Admin actions, key creation, use (sampled) and revocation, agent and workflow
 * changes, tenant settings and safety decisions are recorded here; admins read it at
 * `GET /v1/audit`.
 *
 * The durable log ({@link layer}) keeps it in the `audit_log` table. Recording costs a request
 * no SQL: entries wait in a queue that one fiber writes in batches (one transaction each), and
 * what is queued when the server stops cleanly is written before the database closes.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Semaphore from "effect/Semaphore"
import * as SqlClient from "effect/sql/SqlClient"
import { failWith, queryOn } from "./internal/storageQuery.ts"
import { insertRows } from "./internal/storedText.ts"

/** One audited event, as `GET /v1/audit` lists it. */
export class Entry extends Schema.Class<Entry>("@polyagent/runtime/AuditEntry")({
  /** ISO-8601 time of the event. */
  time: Schema.String,
  /** Who acted: a key id, a JWT subject, or `system`. */
  actor: Schema.String,
  tenant: Schema.String,
  /** What was done, dotted: `key.create`, `key.revoke`, `key.use`, `agent.update`, `safety.refuse`, … */
  action: Schema.String,
  /** What it was done to: a key, agent, workflow or session id, a provider name, … */
  target: Schema.String,
  request_id: Schema.NullOr(Schema.String),
  /** How it ended: `ok`, `denied`, `failed`, or a decision such as `escalate`. */
  outcome: Schema.String
}) {}

/** What a caller says of an event; the time is the log's. */
export type Event = Omit<Entry, "time">

/**
 * The audit log.
 *
 * When to use: after every action an operator must be able to account for later — the caller
 * records the outcome once it is known, including refusals (`denied`).
 *
 * Details: `record` never fails; a log that cannot be written is itself logged, and the action
 * it describes is not undone.
 */
export class Audit extends Context.Service<
  Audit,
  {
    /** Records an event at the current time. */
    readonly record: (event: Event) => Effect.Effect<void>
    /**
     * The newest `limit` entries of `tenant`, newest first; every entry recorded before the call is
     * among them. An empty list when the log cannot be read (the failure is logged).
     */
    readonly list: (tenant: string, limit: number) => Effect.Effect<ReadonlyArray<Entry>>
  }
>()("@polyagent/runtime/Audit") {}

/** An entry with its place in the log: epoch milliseconds × 1000 plus a counter within the millisecond. */
interface Queued {
  readonly entry: Entry
  readonly seq: number
}

/** The most entries written in one transaction. */
const writeBatch = 256

const decodeEntries = Schema.decodeUnknownEffect(Schema.Array(Entry))

const chunksOf = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const chunks: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size))
  return chunks
}

/**
 * The durable audit log, in the `audit_log` table of the `SqlClient` in context (created by
 * `Database`'s migrations).
 *
 * Details: `record` queues the entry (stamped with the `Clock`'s time) and returns at once; one
 * fiber writes what is queued, in batches. `list` first writes what is still queued, so a caller
 * reads what it recorded. A batch that cannot be written is logged and dropped: the actions it
 * describes are not undone.
 *
 * Gotchas: entries are lost only when the process dies without a clean stop, or while the database
 * is down.
 */
export const layer: Layer.Layer<Audit, never, SqlClient.SqlClient> = Layer.effect(
  Audit,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const query = queryOn(sql)
    // Entries wait here; `wake` tells the writer there are some. Whoever holds `writing` drains the
    // buffer, so `list` (which drains it too) never reads before a batch another fiber took.
    let buffer: Array<Queued> = []
    const wake = yield* Queue.sliding<void>(1)
    const writing = yield* Semaphore.make(1)
    let lastMillis = 0
    let counter = 0

    const write = (batch: ReadonlyArray<Queued>) => {
      const [first, ...rest] = batch.map(({ entry, seq }) => ({ ...entry, seq }))
      if (first === undefined) return Effect.void
      return Effect.asVoid(query`INSERT INTO audit_log ${insertRows(sql, [first, ...rest])}`).pipe(
        failWith("audit.write"),
        Effect.catch((error) =>
          Effect.logError("the audit log could not be written", error).pipe(
            Effect.annotateLogs({ entries: batch.length })
          )
        )
      )
    }
    const drain: Effect.Effect<void> = Effect.suspend(() => {
      const pending = buffer
      buffer = []
      return Effect.forEach(chunksOf(pending, writeBatch), write, { discard: true })
    })
    const flush = Effect.uninterruptible(writing.withPermits(1)(drain))
    yield* Effect.addFinalizer(() => flush)
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Queue.take(wake), flush)))

    return Audit.of({
      record: (event) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          counter = now === lastMillis ? counter + 1 : 0
          lastMillis = now
          const entry = new Entry({ ...event, time: DateTime.formatIso(DateTime.makeUnsafe(now)) })
          buffer.push({ entry, seq: now * 1000 + Math.min(counter, 999) })
          return Effect.asVoid(Queue.offer(wake, undefined))
        }),
      list: (tenant, limit) =>
        Effect.andThen(
          flush,
          query`SELECT time, actor, tenant, action, target, request_id, outcome FROM audit_log
                WHERE tenant = ${tenant} ORDER BY seq DESC LIMIT ${limit}`.pipe(
            Effect.flatMap(decodeEntries),
            failWith("audit.list"),
            Effect.catch((error) =>
              Effect.as(Effect.logError("the audit log could not be read", error), [] as ReadonlyArray<Entry>)
            )
          )
        )
    })
  })
)

/** An audit log kept in this process, for tests and embedders: the newest `capacity` entries. */
export const layerMemory = (capacity = 10_000) =>
  Layer.sync(Audit, () => {
    const entries: Array<Entry> = []
    return Audit.of({
      record: (event) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          entries.push(new Entry({ ...event, time: DateTime.formatIso(DateTime.makeUnsafe(now)) }))
          if (entries.length > capacity) entries.shift()
        }),
      list: (tenant, limit) =>
        Effect.sync(() =>
          entries
            .filter((entry) => entry.tenant === tenant)
            .slice(-limit)
            .toReversed()
        )
    })
  })
