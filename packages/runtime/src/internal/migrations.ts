/**
 * Versioned schema migrations, written once for both SQLite and PostgreSQL. Never edit a
 * shipped migration: add the next number.
 */
import * as Effect from "effect/Effect"
import * as SqlClient from "effect/sql/SqlClient"

export const migrations = {
  "1_sessions_messages_keys": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE sessions (
      tenant TEXT NOT NULL,
      id TEXT NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      PRIMARY KEY (tenant, id)
    )`
    yield* sql`CREATE TABLE messages (
      tenant TEXT NOT NULL,
      session_id TEXT NOT NULL,
      seq INTEGER NOT NULL,
      id TEXT NOT NULL,
      role TEXT NOT NULL,
      content TEXT NOT NULL,
      model TEXT,
      provider TEXT,
      prompt_tokens INTEGER,
      completion_tokens INTEGER,
      cost_usd DOUBLE PRECISION,
      created_at TEXT NOT NULL,
      PRIMARY KEY (tenant, session_id, seq),
      FOREIGN KEY (tenant, session_id) REFERENCES sessions (tenant, id)
    )`
    yield* sql`CREATE TABLE api_keys (
      id TEXT PRIMARY KEY,
      tenant TEXT NOT NULL,
      name TEXT NOT NULL,
      role TEXT NOT NULL,
      key_hash TEXT NOT NULL UNIQUE,
      created_at TEXT NOT NULL,
      revoked_at TEXT
    )`
    yield* sql`CREATE INDEX api_keys_tenant ON api_keys (tenant)`
  }),
  "2_agents": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE agents (
      tenant TEXT NOT NULL,
      id TEXT NOT NULL,
      name TEXT NOT NULL,
      agent_type TEXT NOT NULL,
      system_prompt TEXT NOT NULL,
      model TEXT,
      tools_enabled INTEGER NOT NULL,
      tools TEXT NOT NULL,
      parameters TEXT NOT NULL,
      memory TEXT NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      PRIMARY KEY (tenant, id)
    )`
    // The agent a session runs with, fixed when the session is created.
    yield* sql`ALTER TABLE sessions ADD COLUMN agent_id TEXT`
  }),
  "3_tool_calls": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE messages ADD COLUMN tool_calls TEXT`
    yield* sql`ALTER TABLE messages ADD COLUMN tool_call_id TEXT`
  }),
  "4_memory_facts": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE memory_facts (
      tenant TEXT NOT NULL,
      id TEXT NOT NULL,
      user_id TEXT NOT NULL,
      agent_id TEXT NOT NULL,
      fact TEXT NOT NULL,
      created_at TEXT NOT NULL,
      PRIMARY KEY (tenant, id)
    )`
    yield* sql`CREATE INDEX memory_facts_user ON memory_facts (tenant, user_id, agent_id)`
  }),
  "5_pinned_messages": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE messages ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0`
  }),
  "6_idempotency_keys": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // The client's Idempotency-Key of a turn, on its user message; a retried turn finds its answer by it.
    yield* sql`ALTER TABLE messages ADD COLUMN idempotency_key TEXT`
    // Partial: the messages without a key (nearly all) cost the index nothing.
    yield* sql`CREATE UNIQUE INDEX messages_idempotency_key ON messages (tenant, session_id, idempotency_key)
               WHERE idempotency_key IS NOT NULL`
  }),
  "7_message_models": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // The models that produced an answer, as a JSON array: more than one after a failover mid-answer.
    yield* sql`ALTER TABLE messages ADD COLUMN models TEXT`
  }),
  "8_usage_ledger_budgets": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // A key's own monthly budget, set when it is created.
    yield* sql`ALTER TABLE api_keys ADD COLUMN budget_usd DOUBLE PRECISION`
    // One row per model that answered (part of) a request: what it used and cost, and who pays.
    yield* sql`CREATE TABLE usage_ledger (
      tenant TEXT NOT NULL,
      key_id TEXT,
      model TEXT NOT NULL,
      provider TEXT NOT NULL,
      day TEXT NOT NULL,
      prompt_tokens INTEGER NOT NULL,
      completion_tokens INTEGER NOT NULL,
      cached_tokens INTEGER NOT NULL,
      reasoning_tokens INTEGER NOT NULL,
      cost_usd DOUBLE PRECISION NOT NULL,
      request_id TEXT NOT NULL,
      session_id TEXT,
      created_at TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX usage_ledger_tenant ON usage_ledger (tenant, created_at)`
    yield* sql`CREATE INDEX usage_ledger_key ON usage_ledger (key_id, created_at)`
    // What each budgeted scope (a tenant, a key) spent and holds reserved in one period (a UTC day or month).
    yield* sql`CREATE TABLE budget_spend (
      scope TEXT NOT NULL,
      period TEXT NOT NULL,
      spent_usd DOUBLE PRECISION NOT NULL,
      reserved_usd DOUBLE PRECISION NOT NULL,
      PRIMARY KEY (scope, period)
    )`
  }),
  "9_experiments_and_task_types": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // One row per model call that ran in an arm of an A/B experiment.
    yield* sql`CREATE TABLE experiment_outcomes (
      tenant TEXT NOT NULL,
      id TEXT NOT NULL,
      experiment TEXT NOT NULL,
      arm TEXT NOT NULL,
      session_id TEXT,
      request_id TEXT NOT NULL,
      ok INTEGER NOT NULL,
      latency_ms DOUBLE PRECISION NOT NULL,
      cost_usd DOUBLE PRECISION NOT NULL,
      created_at TEXT NOT NULL,
      PRIMARY KEY (tenant, id)
    )`
    // Results rank each arm's latencies; feedback finds a session's arms.
    yield* sql`CREATE INDEX experiment_outcomes_arm ON experiment_outcomes (tenant, experiment, arm, latency_ms)`
    yield* sql`CREATE INDEX experiment_outcomes_session ON experiment_outcomes (tenant, experiment, session_id)`
    // Feedback on a session (not tied to an experiment: it joins to arms through the session's outcomes).
    yield* sql`CREATE TABLE session_feedback (
      tenant TEXT NOT NULL,
      id TEXT NOT NULL,
      session_id TEXT NOT NULL,
      score DOUBLE PRECISION NOT NULL,
      comment TEXT,
      created_at TEXT NOT NULL,
      PRIMARY KEY (tenant, id)
    )`
    yield* sql`CREATE INDEX session_feedback_session ON session_feedback (tenant, session_id)`
    // The task type detected for the turn that produced an assistant message.
    yield* sql`ALTER TABLE messages ADD COLUMN task_type TEXT`
  }),
  "10_model_health": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // Health shared between processes (ModelHealth): each process's window of each model, and
    // the newest breaker record of each model. Times are epoch milliseconds.
    yield* sql`CREATE TABLE health_windows (
      process_id TEXT NOT NULL,
      model TEXT NOT NULL,
      at BIGINT NOT NULL,
      summary TEXT NOT NULL,
      PRIMARY KEY (process_id, model)
    )`
    yield* sql`CREATE TABLE health_breakers (
      model TEXT PRIMARY KEY,
      updated_at BIGINT NOT NULL,
      record TEXT NOT NULL
    )`
  }),
  "11_key_fields_and_audit": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // What a key shows of itself (`pa_` and its first 8 characters), when it stops working, when it
    // was last used (written at most once a minute), the names it may ask for (a JSON array; null:
    // any), and its own rate limit (null: the configured one).
    yield* sql`ALTER TABLE api_keys ADD COLUMN prefix TEXT`
    yield* sql`ALTER TABLE api_keys ADD COLUMN expires_at TEXT`
    yield* sql`ALTER TABLE api_keys ADD COLUMN last_used_at TEXT`
    yield* sql`ALTER TABLE api_keys ADD COLUMN models TEXT`
    yield* sql`ALTER TABLE api_keys ADD COLUMN rate_limit_rpm INTEGER`
    yield* sql`ALTER TABLE api_keys ADD COLUMN rate_limit_burst INTEGER`
    // The audit log: `seq` orders the entries of one millisecond (epoch ms × 1000 + a counter).
    yield* sql`CREATE TABLE audit_log (
      tenant TEXT NOT NULL,
      seq BIGINT NOT NULL,
      time TEXT NOT NULL,
      actor TEXT NOT NULL,
      action TEXT NOT NULL,
      target TEXT NOT NULL,
      request_id TEXT,
      outcome TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX audit_log_tenant ON audit_log (tenant, seq)`
  }),
  "12_secrets_and_key_guards": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // What guards an API key beyond its hash (KeyGuards): its signing secret, sealed by SecretBox,
    // and the addresses it may be used from (a JSON array). A key without a row has no guard.
    yield* sql`CREATE TABLE key_guards (
      key_id TEXT PRIMARY KEY,
      tenant TEXT NOT NULL,
      signing_secret TEXT,
      allowed_ips TEXT,
      created_at TEXT NOT NULL
    )`
    // A tenant's own provider keys (TenantProviderKeys), sealed by SecretBox.
    yield* sql`CREATE TABLE tenant_provider_keys (
      tenant TEXT NOT NULL,
      provider TEXT NOT NULL,
      api_key TEXT NOT NULL,
      base_url TEXT,
      updated_at TEXT NOT NULL,
      PRIMARY KEY (tenant, provider)
    )`
  }),
  "13_safety_policies": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // An agent's safety policy (JSON, see Agent.AgentSafety): how it tightens its tenant's.
    yield* sql`ALTER TABLE agents ADD COLUMN safety TEXT`
  }),
  "14_workflows": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // Every version of every workflow definition: a run reads the version it started with.
    yield* sql`CREATE TABLE workflow_definitions (
      tenant TEXT NOT NULL,
      id TEXT NOT NULL,
      version INTEGER NOT NULL,
      name TEXT NOT NULL,
      definition TEXT NOT NULL,
      created_at TEXT NOT NULL,
      deleted INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (tenant, id, version)
    )`
    yield* sql`CREATE INDEX workflow_definitions_name ON workflow_definitions (tenant, name)`
    yield* sql`CREATE TABLE workflow_runs (
      id TEXT PRIMARY KEY,
      tenant TEXT NOT NULL,
      workflow_id TEXT NOT NULL,
      version INTEGER NOT NULL,
      status TEXT NOT NULL,
      input TEXT NOT NULL,
      output TEXT,
      error TEXT,
      key_id TEXT,
      deadline_ms BIGINT,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX workflow_runs_tenant ON workflow_runs (tenant, workflow_id, created_at)`
    // One row per step run (a loop's steps once per pass): its output is stored before the step
    // reports it finished, so a step re-run after a crash answers from here.
    yield* sql`CREATE TABLE workflow_steps (
      run_id TEXT NOT NULL,
      step_key TEXT NOT NULL,
      position INTEGER NOT NULL,
      status TEXT NOT NULL,
      output TEXT,
      error TEXT,
      attempts INTEGER NOT NULL,
      cost_usd DOUBLE PRECISION NOT NULL,
      started_at TEXT,
      finished_at TEXT,
      PRIMARY KEY (run_id, step_key)
    )`
    // What the run's event stream replays: step_started, step_finished, waiting, completed, failed.
    yield* sql`CREATE TABLE workflow_events (
      run_id TEXT NOT NULL,
      seq INTEGER NOT NULL,
      event TEXT NOT NULL,
      data TEXT NOT NULL,
      created_at TEXT NOT NULL,
      PRIMARY KEY (run_id, seq)
    )`
  })
}
