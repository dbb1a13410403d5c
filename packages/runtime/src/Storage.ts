/**
 * Storage: everything PolyAgent keeps — sessions, their messages, API keys — behind one
 * service with one SQL implementation that runs on both the embedded SQLite database and
 * PostgreSQL (the SQL is written to the common subset of both, but for the one-statement turn
 * write on PostgreSQL). Every row carries its tenant, and every read is scoped by it.
 *
 * Every string goes in and comes out through `internal/storedText.ts`, so any JavaScript string
 * (U+0000, lone surrogates included) round-trips byte for byte on both databases while ordinary
 * text is stored as it is.
 */
import * as Arr from "effect/Array"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { Message } from "./Message.ts"
import { SessionInfo } from "./Session.ts"
import type { Agent } from "./Agent.ts"
import { within } from "./internal/bounded.ts"
import {
  agentRow,
  CountRows,
  decodeAgentRows,
  decodeLoadedRows,
  decodeMessageRows,
  decodeSessionRows,
  decodeUnfinished,
  messageColumns,
  messageRow,
  toMessage
} from "./internal/storageRows.ts"
import { failWith, operationTimeout, queryOn, StorageError, storageError } from "./internal/storageQuery.ts"
import { insertRows } from "./internal/storedText.ts"
import { redactText } from "./Redaction.ts"
import * as TurnWrites from "./internal/turnWrites.ts"

export { operationTimeout, StorageError } from "./internal/storageQuery.ts"

/** Now, as every stored timestamp is written: ISO 8601 in UTC, from the `Clock` (so tests drive it). */
export const nowIso: Effect.Effect<string> = Effect.map(DateTime.now, DateTime.formatIso)

/** Roles of ../shared/API.md: `admin` ⊃ `builder` ⊃ `user`. */
export const Role = Schema.Literals(["admin", "builder", "user"])
export type Role = typeof Role.Type

/** The order of the roles: each includes the ones below it. */
export const roleRank: Record<Role, number> = { user: 1, builder: 2, admin: 3 }

/** A stored API key: only the hash of the key is kept. */
export class ApiKeyRecord extends Schema.Class<ApiKeyRecord>("@polyagent/runtime/ApiKeyRecord")({
  id: Schema.String,
  tenant: Schema.String,
  name: Schema.String,
  role: Role,
  key_hash: Schema.String,
  created_at: Schema.String,
  /** The key's monthly budget in USD (`Budgets`); null: the configured default for keys. */
  budget_usd: Schema.NullOr(Schema.Finite),
  /** What the key shows of itself: `pa_` and its first 8 characters (null for keys made before it was kept). */
  prefix: Schema.NullOr(Schema.String),
  /** When the key stops authenticating (ISO 8601); null: never. */
  expires_at: Schema.NullOr(Schema.String),
  /** When the key was last used, to the minute or so (written at most once a minute); null: never. */
  last_used_at: Schema.NullOr(Schema.String),
  /** The model, route or experiment names a request made with the key may ask for; null: any. */
  models: Schema.NullOr(Schema.fromJsonString(Schema.Array(Schema.String))),
  /** The key's own rate limit: requests a minute and burst (both or neither); null: the configured one. */
  rate_limit_rpm: Schema.NullOr(Schema.Int),
  rate_limit_burst: Schema.NullOr(Schema.Int)
}) {}

/** The columns of {@link ApiKeyRecord}, as every key query selects them. */
const keyColumns =
  "id, tenant, name, role, key_hash, created_at, budget_usd, prefix, expires_at, last_used_at, models, rate_limit_rpm, rate_limit_burst"

/** A fact an agent remembers about one of its users. */
export class MemoryFact extends Schema.Class<MemoryFact>("@polyagent/runtime/MemoryFact")({
  id: Schema.String,
  user_id: Schema.String,
  agent_id: Schema.String,
  fact: Schema.String,
  created_at: Schema.String
}) {}

/** A session as its actor loads it: its own fields, its messages in order, and its turns' idempotency keys. */
export interface LoadedSession {
  readonly info: SessionInfo
  readonly messages: ReadonlyArray<Message>
  /** The `Idempotency-Key` of each turn that had one → the `seq` of the turn's user message. */
  readonly idempotencyKeys: ReadonlyMap<string, number>
}

/** What else {@link Storage} `appendMessages` writes in the same transaction. */
export interface AppendOptions {
  /** Creates the session first (with the agent it runs with): its first turn and its row are one write. */
  readonly create?: { readonly agentId: string | null; readonly createdAt: string } | undefined
  /** The client's `Idempotency-Key`, kept with the message of this id (the turn's user message). */
  readonly idempotencyKey?: { readonly messageId: string; readonly key: string } | undefined
}

/** The storage service. */
export class Storage extends Context.Service<
  Storage,
  {
    /** Creates the session (with the agent it runs with) unless it exists; answers whether it was created. */
    readonly createSession: (
      tenant: string,
      id: string,
      now: string,
      agentId?: string | null
    ) => Effect.Effect<boolean, StorageError>
    readonly getSession: (tenant: string, id: string) => Effect.Effect<Option.Option<SessionInfo>, StorageError>
    /** Deletes the session and its messages; answers whether it existed. */
    readonly deleteSession: (tenant: string, id: string) => Effect.Effect<boolean, StorageError>
    /** The messages of a session in order. */
    readonly listMessages: (tenant: string, sessionId: string) => Effect.Effect<ReadonlyArray<Message>, StorageError>
    /** The session with its messages and idempotency keys, in one query; `None` when it does not exist. */
    readonly loadSession: (tenant: string, id: string) => Effect.Effect<Option.Option<LoadedSession>, StorageError>
    /**
     * Stores messages numbered by the caller (the session actor owns the numbering) and moves the
     * session's `updated_at` to the last one's time, in one transaction — one statement on
     * PostgreSQL. With `create`, the session row is written in the same transaction. Writes that
     * wait at the same time are committed together (`internal/turnWrites.ts`); each caller is
     * answered once its own write is committed, and a write at fault fails alone.
     *
     * Gotcha: a `seq` or idempotency key already stored, or with `create` a session that exists
     * (another process wrote to the session), fails the whole write with a `StorageError` whose
     * operation says so; the caller must reload the session.
     */
    readonly appendMessages: (
      tenant: string,
      sessionId: string,
      messages: ReadonlyArray<Message>,
      options?: AppendOptions
    ) => Effect.Effect<void, StorageError>
    /**
     * Stores the key unless a key with the same hash is stored already (another process
     * bootstrapping the same admin key); answers whether it was stored.
     */
    readonly insertApiKey: (key: ApiKeyRecord) => Effect.Effect<boolean, StorageError>
    readonly findApiKeyByHash: (hash: string) => Effect.Effect<Option.Option<ApiKeyRecord>, StorageError>
    readonly countApiKeys: (tenant: string) => Effect.Effect<number, StorageError>
    /** The tenant's keys that are not revoked (expired ones included), oldest first. */
    readonly listApiKeys: (tenant: string) => Effect.Effect<ReadonlyArray<ApiKeyRecord>, StorageError>
    /**
     * Revokes the key `id` of `tenant` (of any tenant when `null`: the operator's): it authenticates
     * no more. Answers the tenant of the live key revoked; none when there was no such key.
     */
    readonly revokeApiKey: (
      tenant: string | null,
      id: string,
      now: string
    ) => Effect.Effect<Option.Option<string>, StorageError>
    /** Records that the keys `ids` were used at `at` (ISO 8601). */
    readonly touchApiKeys: (ids: ReadonlyArray<string>, at: string) => Effect.Effect<void, StorageError>
    readonly insertAgent: (tenant: string, agent: Agent) => Effect.Effect<void, StorageError>
    readonly getAgent: (tenant: string, id: string) => Effect.Effect<Option.Option<Agent>, StorageError>
    /** The tenant's agents, newest first. */
    readonly listAgents: (tenant: string) => Effect.Effect<ReadonlyArray<Agent>, StorageError>
    /** Replaces the stored agent; answers whether it existed. */
    readonly updateAgent: (tenant: string, agent: Agent) => Effect.Effect<boolean, StorageError>
    readonly deleteAgent: (tenant: string, id: string) => Effect.Effect<boolean, StorageError>
    /** Remembers a fact an agent learned about a user. */
    readonly addFact: (tenant: string, fact: MemoryFact) => Effect.Effect<void, StorageError>
    /** What an agent remembers about a user, oldest first, at most `limit`. */
    readonly listFacts: (
      tenant: string,
      userId: string,
      agentId: string,
      limit: number
    ) => Effect.Effect<ReadonlyArray<MemoryFact>, StorageError>
    /**
     * The sessions whose last message is a tool call or a tool result: turns a crash stopped
     * between asking for tools and answering.
     */
    readonly listUnfinishedSessions: Effect.Effect<
      ReadonlyArray<{ readonly tenant: string; readonly id: string }>,
      StorageError
    >
  }
>()("@polyagent/runtime/Storage") {}

const decodeFactRows = Schema.decodeUnknownEffect(Schema.Array(MemoryFact))
const decodeKeyRows = Schema.decodeUnknownEffect(Schema.Array(ApiKeyRecord))
const encodeKey = Schema.encodeEffect(ApiKeyRecord)
const RevokedRows = Schema.decodeUnknownEffect(Schema.Array(Schema.Struct({ tenant: Schema.String })))

const isUniqueViolation = (error: SqlError | Schema.SchemaError): boolean =>
  error._tag === "SqlError" && error.reason._tag === "UniqueViolation"

/** Builds the storage on the `SqlClient` in context, whose tables `Database` created. */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  /** `sql` with every string argument encoded, its rows decoded: every statement of this module goes through it. */
  const query = queryOn(sql)
  const insert = (rows: Arr.NonEmptyReadonlyArray<Record<string, unknown>>) => insertRows(sql, rows)

  const selectMessages = (tenant: string, sessionId: string) =>
    query`SELECT ${sql.literal(messageColumns)}
          FROM messages WHERE tenant = ${tenant} AND session_id = ${sessionId} ORDER BY seq`.pipe(
      Effect.flatMap(decodeMessageRows),
      Effect.map((rows) => rows.map(toMessage))
    )

  const writeTurn = TurnWrites.make(sql)

  return Storage.of({
    createSession: (tenant, id, now, agentId = null) =>
      query`INSERT INTO sessions (tenant, id, agent_id, created_at, updated_at)
            VALUES (${tenant}, ${id}, ${agentId}, ${now}, ${now})
            ON CONFLICT (tenant, id) DO NOTHING RETURNING id`.pipe(
        Effect.map((rows) => rows.length === 1),
        failWith("createSession")
      ),
    getSession: (tenant, id) =>
      query`SELECT id, tenant, agent_id, created_at, updated_at FROM sessions WHERE tenant = ${tenant} AND id = ${id}`.pipe(
        Effect.flatMap(decodeSessionRows),
        Effect.map((rows) => Option.fromNullishOr(rows[0])),
        failWith("getSession")
      ),
    deleteSession: (tenant, id) =>
      Effect.gen(function* () {
        yield* query`DELETE FROM messages WHERE tenant = ${tenant} AND session_id = ${id}`
        const deleted = yield* query`DELETE FROM sessions WHERE tenant = ${tenant} AND id = ${id} RETURNING id`
        return deleted.length === 1
      }).pipe(sql.withTransaction, failWith("deleteSession")),
    listMessages: (tenant, sessionId) => selectMessages(tenant, sessionId).pipe(failWith("listMessages")),
    loadSession: (tenant, id) =>
      query`SELECT s.agent_id, s.created_at AS session_created_at, s.updated_at AS session_updated_at,
                   m.idempotency_key, ${sql.literal(
                     messageColumns
                       .split(",")
                       .map((column) => `m.${column.trim()}`)
                       .join(", ")
                   )}
            FROM sessions s LEFT JOIN messages m ON m.tenant = s.tenant AND m.session_id = s.id
            WHERE s.tenant = ${tenant} AND s.id = ${id} ORDER BY m.seq`.pipe(
        // The message's columns as one nested row, null for the one row of a session without messages.
        Effect.map((rows) =>
          rows.map(({ agent_id, session_created_at, session_updated_at, idempotency_key, ...message }) => ({
            agent_id,
            session_created_at,
            session_updated_at,
            idempotency_key,
            message: message["id"] === null ? null : message
          }))
        ),
        Effect.flatMap(decodeLoadedRows),
        Effect.map((rows): Option.Option<LoadedSession> => {
          const first = rows[0]
          if (first === undefined) return Option.none()
          const messages: Array<Message> = []
          const idempotencyKeys = new Map<string, number>()
          for (const row of rows) {
            if (row.message === null) continue
            messages.push(toMessage(row.message))
            if (row.idempotency_key !== null) idempotencyKeys.set(row.idempotency_key, row.message.seq)
          }
          const info = new SessionInfo({
            id,
            tenant,
            agent_id: first.agent_id,
            created_at: first.session_created_at,
            updated_at: first.session_updated_at
          })
          return Option.some({ info, messages, idempotencyKeys })
        }),
        failWith("loadSession")
      ),
    appendMessages: (tenant, sessionId, messages, options = {}) => {
      const key = options.idempotencyKey
      const rows = messages.map(
        (message): Record<string, unknown> =>
          messageRow(tenant, sessionId, message, key !== undefined && key.messageId === message.id ? key.key : null)
      )
      const last = messages.at(-1)
      if (!Arr.isReadonlyArrayNonEmpty(rows) || last === undefined) return Effect.void
      return writeTurn(
        TurnWrites.TurnWrite({ tenant, sessionId, rows, updatedAt: last.created_at, create: options.create })
      ).pipe(
        within(operationTimeout),
        Effect.mapError((cause) =>
          !Predicate.isTagged(cause, "TimeoutError") && isUniqueViolation(cause)
            ? // Another write got there first: one this session thought had failed (a timed-out write
              // that committed after all), or another process's. The next attempt reads the session
              // again, and finds the turn if it was this one: worth a retry, not an internal error.
              new StorageError({
                operation:
                  "appendMessages: the session id, a message number or the idempotency key is already stored " +
                  "(another process wrote to this session, or a write of its own that seemed to fail did not)",
                unavailable: true,
                cause
              })
            : storageError("appendMessages", cause)
        )
      )
    },
    insertApiKey: (key) =>
      Effect.flatMap(
        encodeKey(key),
        (row) => query`INSERT INTO api_keys ${insert([{ ...row }])} ON CONFLICT (key_hash) DO NOTHING RETURNING id`
      ).pipe(
        Effect.map((rows) => rows.length === 1),
        failWith("insertApiKey")
      ),
    findApiKeyByHash: (hash) =>
      query`SELECT ${sql.literal(keyColumns)} FROM api_keys WHERE key_hash = ${hash} AND revoked_at IS NULL`.pipe(
        Effect.flatMap(decodeKeyRows),
        Effect.map((rows) => Option.fromNullishOr(rows[0])),
        failWith("findApiKeyByHash")
      ),
    listApiKeys: (tenant) =>
      query`SELECT ${sql.literal(keyColumns)} FROM api_keys
            WHERE tenant = ${tenant} AND revoked_at IS NULL ORDER BY created_at, id`.pipe(
        Effect.flatMap(decodeKeyRows),
        failWith("listApiKeys")
      ),
    revokeApiKey: (tenant, id, now) =>
      (tenant === null
        ? query`UPDATE api_keys SET revoked_at = ${now} WHERE id = ${id} AND revoked_at IS NULL RETURNING tenant`
        : query`UPDATE api_keys SET revoked_at = ${now}
                WHERE tenant = ${tenant} AND id = ${id} AND revoked_at IS NULL RETURNING tenant`
      ).pipe(
        Effect.flatMap(RevokedRows),
        Effect.map((rows) => Option.map(Option.fromNullishOr(rows[0]), (row) => row.tenant)),
        failWith("revokeApiKey")
      ),
    touchApiKeys: (ids, at) =>
      Effect.forEach(ids, (id) => query`UPDATE api_keys SET last_used_at = ${at} WHERE id = ${id}`, {
        discard: true
      }).pipe(sql.withTransaction, failWith("touchApiKeys")),
    countApiKeys: (tenant) =>
      query`SELECT CAST(COUNT(*) AS INTEGER) AS n FROM api_keys WHERE tenant = ${tenant} AND revoked_at IS NULL`.pipe(
        Effect.flatMap(CountRows),
        Effect.map((rows) => rows[0]?.n ?? 0),
        failWith("countApiKeys")
      ),
    insertAgent: (tenant, agent) =>
      query`INSERT INTO agents ${insert([agentRow(tenant, agent)])}`.pipe(Effect.asVoid, failWith("insertAgent")),
    getAgent: (tenant, id) =>
      query`SELECT * FROM agents WHERE tenant = ${tenant} AND id = ${id}`.pipe(
        Effect.flatMap(decodeAgentRows),
        Effect.map((rows) => Option.fromNullishOr(rows[0])),
        failWith("getAgent")
      ),
    listAgents: (tenant) =>
      query`SELECT * FROM agents WHERE tenant = ${tenant} ORDER BY created_at DESC, id`.pipe(
        Effect.flatMap(decodeAgentRows),
        failWith("listAgents")
      ),
    updateAgent: (tenant, agent) => {
      const row = agentRow(tenant, agent)
      return query`UPDATE agents SET name = ${row.name}, agent_type = ${row.agent_type},
                   system_prompt = ${row.system_prompt}, model = ${row.model}, tools_enabled = ${row.tools_enabled},
                   tools = ${row.tools}, parameters = ${row.parameters}, memory = ${row.memory},
                   safety = ${row.safety}, updated_at = ${row.updated_at}
                   WHERE tenant = ${tenant} AND id = ${agent.id} RETURNING id`.pipe(
        Effect.map((rows) => rows.length === 1),
        failWith("updateAgent")
      )
    },
    deleteAgent: (tenant, id) =>
      query`DELETE FROM agents WHERE tenant = ${tenant} AND id = ${id} RETURNING id`.pipe(
        Effect.map((rows) => rows.length === 1),
        failWith("deleteAgent")
      ),
    addFact: (tenant, fact) =>
      query`INSERT INTO memory_facts ${insert([{ tenant, ...fact }])}`.pipe(Effect.asVoid, failWith("addFact")),
    listFacts: (tenant, userId, agentId, limit) =>
      query`SELECT id, user_id, agent_id, fact, created_at FROM (
              SELECT * FROM memory_facts WHERE tenant = ${tenant} AND user_id = ${userId} AND agent_id = ${agentId}
              ORDER BY created_at DESC, id DESC LIMIT ${limit}
            ) newest ORDER BY created_at, id`.pipe(Effect.flatMap(decodeFactRows), failWith("listFacts")),
    listUnfinishedSessions: query`SELECT m.tenant AS tenant, m.session_id AS id FROM messages m
        JOIN (SELECT tenant, session_id, MAX(seq) AS seq FROM messages GROUP BY tenant, session_id) latest
          ON m.tenant = latest.tenant AND m.session_id = latest.session_id AND m.seq = latest.seq
        WHERE m.role = 'tool' OR (m.role = 'assistant' AND m.tool_calls IS NOT NULL)`.pipe(
      Effect.flatMap(decodeUnfinished),
      failWith("listUnfinishedSessions")
    )
  })
})

/** The storage on the `SqlClient` in context (SQLite or PostgreSQL), migrated by `Database`. */
export const layerSql: Layer.Layer<Storage, never, SqlClient.SqlClient> = Layer.effect(Storage, make)

/**
 * `storage` storing what it is given with personal data masked (`Redaction.redactText`): the
 * content of messages and memory facts (`redaction.storage`).
 *
 * Gotchas: a session resident in memory keeps its unmasked history until it passivates; what it
 * reloads afterwards, and every other reader, sees the masked text.
 */
export const redacting = (storage: Storage["Service"]): Storage["Service"] =>
  Storage.of({
    ...storage,
    appendMessages: (tenant, sessionId, messages, options) =>
      storage.appendMessages(
        tenant,
        sessionId,
        messages.map((message) => new Message({ ...message, content: redactText(message.content) })),
        options
      ),
    addFact: (tenant, fact) => storage.addFact(tenant, new MemoryFact({ ...fact, fact: redactText(fact.fact) }))
  })

/** {@link layerSql}, masking personal data in what it stores ({@link redacting}). */
export const layerSqlRedacting: Layer.Layer<Storage, never, SqlClient.SqlClient> = Layer.effect(
  Storage,
  Effect.map(make, redacting)
)
