/**
 * The audit log: who did what to which resource of which tenant, when, in which request, and
 * how it ended. Admin actions, key creation, use (sampled) and revocation, agent and workflow
 * changes, tenant settings and safety decisions are recorded here; admins read it at
 * `GET /v1/audit`.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"

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
    /** The newest `limit` entries of `tenant`, newest first. */
    readonly list: (tenant: string, limit: number) => Effect.Effect<ReadonlyArray<Entry>>
  }
>()("@polyagent/runtime/Audit") {}

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
