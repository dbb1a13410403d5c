/**
 * Storage: everything PolyAgent keeps — sessions, their messages, API keys — behind one
 * service with one SQL implementation that runs on both the embedded SQLite database and
 * PostgreSQL (the SQL is written to the common subset of both). Every row carries its
 * tenant, and every read is scoped by it.
 */
import * as Arr from "effect/Array"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { Message, type NewMessage, ToolCallRecord } from "./Message.ts"
import { SessionInfo } from "./Session.ts"
import { Agent, AgentType, MemorySettings, Parameters } from "./Agent.ts"
import { Usage } from "./Usage.ts"
import { migrations } from "./internal/migrations.ts"

/** A storage operation failed. The message names the operation, never SQL or values. */
export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  operation: Schema.String,
  cause: Schema.Defect()
}) {
  override get message(): string {
    return `storage failed during ${this.operation}`
  }
}

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
  created_at: Schema.String
}) {}

/** A fact an agent remembers about one of its users. */
export class MemoryFact extends Schema.Class<MemoryFact>("@polyagent/runtime/MemoryFact")({
  id: Schema.String,
  user_id: Schema.String,
  agent_id: Schema.String,
  fact: Schema.String,
  created_at: Schema.String
}) {}

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
    /**
     * Appends messages to an existing session in one transaction, numbering them after the
     * last stored one, and answers them as stored.
     */
    readonly appendMessages: (
      tenant: string,
      sessionId: string,
      messages: ReadonlyArray<NewMessage>
    ) => Effect.Effect<ReadonlyArray<Message>, StorageError>
    readonly insertApiKey: (key: ApiKeyRecord) => Effect.Effect<void, StorageError>
    readonly findApiKeyByHash: (hash: string) => Effect.Effect<Option.Option<ApiKeyRecord>, StorageError>
    readonly countApiKeys: (tenant: string) => Effect.Effect<number, StorageError>
    /** The tenant's keys that are not revoked, oldest first. */
    readonly listApiKeys: (tenant: string) => Effect.Effect<ReadonlyArray<ApiKeyRecord>, StorageError>
    /** Revokes the key: it authenticates no more. Answers whether a live key was revoked. */
    readonly revokeApiKey: (tenant: string, id: string, now: string) => Effect.Effect<boolean, StorageError>
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
    /** A round trip to the database, for health checks. */
    readonly ping: Effect.Effect<void, StorageError>
  }
>()("@polyagent/runtime/Storage") {}

const MessageRow = Schema.Struct({
  id: Schema.String,
  seq: Schema.Number,
  role: Message.fields.role,
  content: Schema.String,
  model: Schema.NullOr(Schema.String),
  provider: Schema.NullOr(Schema.String),
  prompt_tokens: Schema.NullOr(Schema.Number),
  completion_tokens: Schema.NullOr(Schema.Number),
  cost_usd: Schema.NullOr(Schema.Number),
  tool_calls: Schema.NullOr(Schema.fromJsonString(Schema.Array(ToolCallRecord))),
  tool_call_id: Schema.NullOr(Schema.String),
  pinned: Schema.Number,
  created_at: Schema.String
})
const decodeMessageRows = Schema.decodeUnknownEffect(Schema.Array(MessageRow))
const decodeSessionRows = Schema.decodeUnknownEffect(Schema.Array(SessionInfo))
const decodeUnfinished = Schema.decodeUnknownEffect(
  Schema.Array(Schema.Struct({ tenant: Schema.String, id: Schema.String }))
)
const decodeFactRows = Schema.decodeUnknownEffect(Schema.Array(MemoryFact))
const decodeKeyRows = Schema.decodeUnknownEffect(Schema.Array(ApiKeyRecord))
const CountRows = Schema.decodeUnknownEffect(
  Schema.Array(Schema.Struct({ n: Schema.Union([Schema.Number, Schema.NumberFromString]) }))
)

const toMessage = (row: typeof MessageRow.Type): Message =>
  new Message({
    id: row.id,
    seq: row.seq,
    role: row.role,
    content: row.content,
    model: row.model,
    provider: row.provider,
    usage:
      row.prompt_tokens === null || row.completion_tokens === null
        ? null
        : new Usage({
            prompt_tokens: row.prompt_tokens,
            completion_tokens: row.completion_tokens,
            total_tokens: row.prompt_tokens + row.completion_tokens
          }),
    cost_usd: row.cost_usd,
    tool_calls: row.tool_calls,
    tool_call_id: row.tool_call_id,
    pinned: row.pinned !== 0,
    created_at: row.created_at
  })

/** An agent as a row: the structured fields as JSON text, the flag as 0/1 (both databases read it back). */
const agentRow = (tenant: string, agent: Agent) => ({
  tenant,
  id: agent.id,
  name: agent.name,
  agent_type: agent.agent_type,
  system_prompt: agent.system_prompt,
  model: agent.model,
  tools_enabled: agent.tools_enabled ? 1 : 0,
  tools: JSON.stringify(agent.tools),
  parameters: JSON.stringify(agent.parameters),
  memory: JSON.stringify(agent.memory),
  created_at: agent.created_at,
  updated_at: agent.updated_at
})

const AgentRow = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  agent_type: AgentType,
  system_prompt: Schema.String,
  model: Schema.NullOr(Schema.String),
  tools_enabled: Schema.Number,
  tools: Schema.fromJsonString(Schema.Array(Schema.String)),
  parameters: Schema.fromJsonString(Parameters),
  memory: Schema.fromJsonString(MemorySettings),
  created_at: Schema.String,
  updated_at: Schema.String
})
const decodeAgentRows = (rows: unknown) =>
  Schema.decodeUnknownEffect(Schema.Array(AgentRow))(rows).pipe(
    Effect.map((decoded) => decoded.map((row) => new Agent({ ...row, tools_enabled: row.tools_enabled !== 0 })))
  )

const failWith =
  (operation: string) =>
  <A, R>(effect: Effect.Effect<A, SqlError | Schema.SchemaError, R>): Effect.Effect<A, StorageError, R> =>
    Effect.mapError(effect, (cause) => new StorageError({ operation, cause }))

/** Builds the storage on the `SqlClient` in context, after running the migrations. */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: "polyagent_migrations" })

  const selectMessages = (tenant: string, sessionId: string) =>
    sql`SELECT id, seq, role, content, model, provider, prompt_tokens, completion_tokens, cost_usd, tool_calls,
               tool_call_id, pinned, created_at
        FROM messages WHERE tenant = ${tenant} AND session_id = ${sessionId} ORDER BY seq`.pipe(
      Effect.flatMap(decodeMessageRows),
      Effect.map((rows) => rows.map(toMessage))
    )

  return Storage.of({
    createSession: (tenant, id, now, agentId = null) =>
      sql`INSERT INTO sessions (tenant, id, agent_id, created_at, updated_at)
          VALUES (${tenant}, ${id}, ${agentId}, ${now}, ${now})
          ON CONFLICT (tenant, id) DO NOTHING RETURNING id`.pipe(
        Effect.map((rows) => rows.length === 1),
        failWith("createSession")
      ),
    getSession: (tenant, id) =>
      sql`SELECT id, tenant, agent_id, created_at, updated_at FROM sessions WHERE tenant = ${tenant} AND id = ${id}`.pipe(
        Effect.flatMap(decodeSessionRows),
        Effect.map((rows) => Option.fromNullishOr(rows[0])),
        failWith("getSession")
      ),
    deleteSession: (tenant, id) =>
      Effect.gen(function* () {
        yield* sql`DELETE FROM messages WHERE tenant = ${tenant} AND session_id = ${id}`
        const deleted = yield* sql`DELETE FROM sessions WHERE tenant = ${tenant} AND id = ${id} RETURNING id`
        return deleted.length === 1
      }).pipe(sql.withTransaction, failWith("deleteSession")),
    listMessages: (tenant, sessionId) => selectMessages(tenant, sessionId).pipe(failWith("listMessages")),
    appendMessages: (tenant, sessionId, messages) =>
      Effect.gen(function* () {
        const last = yield* sql`SELECT COALESCE(MAX(seq), 0) AS n FROM messages
                                WHERE tenant = ${tenant} AND session_id = ${sessionId}`.pipe(Effect.flatMap(CountRows))
        const first = (last[0]?.n ?? 0) + 1
        const rows = messages.map(
          (message, i): Record<string, unknown> => ({
            tenant,
            session_id: sessionId,
            seq: first + i,
            id: message.id,
            role: message.role,
            content: message.content,
            model: message.model,
            provider: message.provider,
            prompt_tokens: message.usage?.prompt_tokens ?? null,
            completion_tokens: message.usage?.completion_tokens ?? null,
            cost_usd: message.cost_usd,
            tool_calls: message.tool_calls === null ? null : JSON.stringify(message.tool_calls),
            tool_call_id: message.tool_call_id,
            pinned: message.pinned ? 1 : 0,
            created_at: message.created_at
          })
        )
        if (Arr.isReadonlyArrayNonEmpty(rows)) yield* sql`INSERT INTO messages ${sql.insert(rows)}`
        const updatedAt = messages.at(-1)?.created_at
        if (updatedAt !== undefined) {
          yield* sql`UPDATE sessions SET updated_at = ${updatedAt} WHERE tenant = ${tenant} AND id = ${sessionId}`
        }
        return messages.map((message, i) => new Message({ ...message, seq: first + i }))
      }).pipe(sql.withTransaction, failWith("appendMessages")),
    insertApiKey: (key) =>
      sql`INSERT INTO api_keys ${sql.insert({ ...key })}`.pipe(Effect.asVoid, failWith("insertApiKey")),
    findApiKeyByHash: (hash) =>
      sql`SELECT id, tenant, name, role, key_hash, created_at FROM api_keys
          WHERE key_hash = ${hash} AND revoked_at IS NULL`.pipe(
        Effect.flatMap(decodeKeyRows),
        Effect.map((rows) => Option.fromNullishOr(rows[0])),
        failWith("findApiKeyByHash")
      ),
    listApiKeys: (tenant) =>
      sql`SELECT id, tenant, name, role, key_hash, created_at FROM api_keys
          WHERE tenant = ${tenant} AND revoked_at IS NULL ORDER BY created_at, id`.pipe(
        Effect.flatMap(decodeKeyRows),
        failWith("listApiKeys")
      ),
    revokeApiKey: (tenant, id, now) =>
      sql`UPDATE api_keys SET revoked_at = ${now}
          WHERE tenant = ${tenant} AND id = ${id} AND revoked_at IS NULL RETURNING id`.pipe(
        Effect.map((rows) => rows.length === 1),
        failWith("revokeApiKey")
      ),
    countApiKeys: (tenant) =>
      sql`SELECT CAST(COUNT(*) AS INTEGER) AS n FROM api_keys WHERE tenant = ${tenant} AND revoked_at IS NULL`.pipe(
        Effect.flatMap(CountRows),
        Effect.map((rows) => rows[0]?.n ?? 0),
        failWith("countApiKeys")
      ),
    insertAgent: (tenant, agent) =>
      sql`INSERT INTO agents ${sql.insert(agentRow(tenant, agent))}`.pipe(Effect.asVoid, failWith("insertAgent")),
    getAgent: (tenant, id) =>
      sql`SELECT * FROM agents WHERE tenant = ${tenant} AND id = ${id}`.pipe(
        Effect.flatMap(decodeAgentRows),
        Effect.map((rows) => Option.fromNullishOr(rows[0])),
        failWith("getAgent")
      ),
    listAgents: (tenant) =>
      sql`SELECT * FROM agents WHERE tenant = ${tenant} ORDER BY created_at DESC, id`.pipe(
        Effect.flatMap(decodeAgentRows),
        failWith("listAgents")
      ),
    updateAgent: (tenant, agent) => {
      const row = agentRow(tenant, agent)
      return sql`UPDATE agents SET name = ${row.name}, agent_type = ${row.agent_type},
                 system_prompt = ${row.system_prompt}, model = ${row.model}, tools_enabled = ${row.tools_enabled},
                 tools = ${row.tools}, parameters = ${row.parameters}, memory = ${row.memory},
                 updated_at = ${row.updated_at}
                 WHERE tenant = ${tenant} AND id = ${agent.id} RETURNING id`.pipe(
        Effect.map((rows) => rows.length === 1),
        failWith("updateAgent")
      )
    },
    deleteAgent: (tenant, id) =>
      sql`DELETE FROM agents WHERE tenant = ${tenant} AND id = ${id} RETURNING id`.pipe(
        Effect.map((rows) => rows.length === 1),
        failWith("deleteAgent")
      ),
    addFact: (tenant, fact) =>
      sql`INSERT INTO memory_facts ${sql.insert({ tenant, ...fact })}`.pipe(Effect.asVoid, failWith("addFact")),
    listFacts: (tenant, userId, agentId, limit) =>
      sql`SELECT id, user_id, agent_id, fact, created_at FROM (
            SELECT * FROM memory_facts WHERE tenant = ${tenant} AND user_id = ${userId} AND agent_id = ${agentId}
            ORDER BY created_at DESC, id DESC LIMIT ${limit}
          ) newest ORDER BY created_at, id`.pipe(Effect.flatMap(decodeFactRows), failWith("listFacts")),
    listUnfinishedSessions: sql`SELECT m.tenant AS tenant, m.session_id AS id FROM messages m
        JOIN (SELECT tenant, session_id, MAX(seq) AS seq FROM messages GROUP BY tenant, session_id) latest
          ON m.tenant = latest.tenant AND m.session_id = latest.session_id AND m.seq = latest.seq
        WHERE m.role = 'tool' OR (m.role = 'assistant' AND m.tool_calls IS NOT NULL)`.pipe(
      Effect.flatMap(decodeUnfinished),
      failWith("listUnfinishedSessions")
    ),
    ping: sql`SELECT 1`.pipe(Effect.asVoid, failWith("ping"))
  })
})

/** The storage on the `SqlClient` in context (SQLite or PostgreSQL). */
export const layerSql: Layer.Layer<Storage, StorageError, SqlClient.SqlClient> = Layer.effect(
  Storage,
  make.pipe(
    Effect.mapError((cause) => new StorageError({ operation: "migrate", cause })),
    Effect.withSpan("Storage.migrate")
  )
)
