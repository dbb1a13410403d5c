/**
 * `@polyagent/providers/testing`: fake model providers for tests — a local `node:http` server
 * (`FakeUpstream`) and handlers that speak OpenAI Chat Completions and Anthropic Messages as
 * documented, with markers in the last user message that choose tool calls or faults. No test
 * of PolyAgent talks to a real provider.
 */
export * as AnthropicWire from "./anthropic-wire.ts"
export * as FakeUpstream from "./FakeUpstream.ts"
export * as OpenAiWire from "./openai-wire.ts"
