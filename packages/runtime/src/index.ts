/**
 * `@polyagent/runtime`: the domain (schemas and errors), the session actor, storage, the
 * model catalogue and configuration. It knows providers and tools only by their interfaces.
 */
export * as Agent from "./Agent.ts"
export * as AppConfig from "./AppConfig.ts"
export * as CallOptions from "./CallOptions.ts"
export * as ContextWindow from "./ContextWindow.ts"
export * as Database from "./Database.ts"
export * as Identifier from "./Identifier.ts"
export * as Message from "./Message.ts"
export * as ModelCatalog from "./ModelCatalog.ts"
export * as ModelHealth from "./ModelHealth.ts"
export * as RequestId from "./RequestId.ts"
export * as RetryBudget from "./RetryBudget.ts"
export * as Session from "./Session.ts"
export * as SessionActor from "./SessionActor.ts"
export * as SessionProtocol from "./SessionProtocol.ts"
export * as SessionRecovery from "./SessionRecovery.ts"
export * as SqliteClient from "./SqliteClient.ts"
export * as Storage from "./Storage.ts"
export * as Tokens from "./Tokens.ts"
export * as Usage from "./Usage.ts"
export * as ToolLoop from "./ToolLoop.ts"
