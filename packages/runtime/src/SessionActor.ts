/**
 * The session actor: one `effect/cluster` entity per conversation, addressed by
 * `tenant/sessionId`. It owns the conversation: its history (loaded from storage the first time
 * it is needed after activation; a session the edge has just minted is known to be new and is not
 * read at all), the numbering of its messages, and the idempotency keys of its turns. It runs one
 * turn at a time — many sessions run in parallel — stores the user message and the assistant's
 * answer together before it replies (a new session's row in the same write), and passivates when
 * idle. Turns are volatile messages: a turn is stored by the actor itself, so a crash loses at most
 * the turn in flight, never a stored one.
 *
 * A session whose agent enables tools runs the tool-call loop: model → the tool calls it asks
 * for (parallel where it asks) → results → model, for at most `maxToolSteps` steps. Each step's
 * assistant message with its calls is stored before the calls run, and each result is stored
 * as a `tool` message under its call id before the model sees it.
 *
 * A turn with an idempotency key that the session already stored is not run again: the actor
 * answers with the stored answer (a stream replays it), so a client that retries a turn whose
 * answer it never received does not store it twice.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Semaphore from "effect/Semaphore"
import * as Stream from "effect/Stream"
import type * as Prompt from "effect/ai/Prompt"
import { ToolExecutor, ToolRegistry } from "@polyagent/tools"
import { storedTurn, toolContent, toPrompt } from "./internal/turnTools.ts"
import * as ToolLoop from "./ToolLoop.ts"
import * as ContextWindow from "./ContextWindow.ts"
import * as AgentTurn from "./internal/agentTurn.ts"
import { newMessage, traced } from "./internal/turnParts.ts"
import * as Entity from "effect/cluster/Entity"
import * as Safety from "./Safety.ts"
import type { Message } from "./Message.ts"
import type { Model } from "./ModelCatalog.ts"
import { type Caller, ModelRouter, type Plan } from "./ModelRouter.ts"
import * as Tokens from "./Tokens.ts"
import { IdempotencyConflict, SessionAgentConflict, SessionNotFound } from "./Session.ts"
import { type Agent, AgentNotFound } from "./Agent.ts"
import { CallOptions } from "./CallOptions.ts"
import { type AppendOptions, Storage } from "./Storage.ts"
import * as Usage from "./Usage.ts"
import {
  parseEntityId,
  Session,
  SessionSettings,
  type TurnError,
  type TurnEvent,
  type TurnInput,
  TurnResult,
  TurnTimeout
} from "./SessionProtocol.ts"

/** Where a streamed turn sends its pieces, with the model answering at the time. */
type Emit = (event: TurnEvent, model: string) => Effect.Effect<void>

/** What the loop of a turn starts from. */
interface Turn {
  readonly plan: Plan
  readonly caller: Caller
  readonly prompt: ReadonlyArray<Prompt.MessageEncoded>
  readonly callOptions: CallOptions
  readonly toolkit: ToolLoop.Toolkit
  readonly builtins: ToolLoop.Builtins
  readonly requestId: string
  /** Messages of the turn not stored yet (its user message, until the first store). */
  readonly unstored: ReadonlyArray<Message>
  /** What the first store of the turn also writes: the new session's row, the idempotency key. */
  readonly firstWrite: AppendOptions
  /** The safety policy's checks of the turn, when any runs. */
  readonly safety: AgentTurn.TurnSafety | undefined
}

/** The model and provider an answer of a safety policy (an escalation, a refusal) is stored with. */
const safetyAnswer = { model: "safety", provider: "polyagent" } as const

/** The fields of an assistant message `model` wrote. */
const answeredBy = (model: Model) =>
  ({ role: "assistant", model: model.info.id, provider: model.info.provider }) as const

/** Registers the session entity with the cluster's sharding. */
export const layer = (options: {
  readonly maxIdleTime: Duration.Input
  readonly mailboxCapacity?: number | undefined
}) =>
  Session.toLayer(
    Effect.gen(function* () {
      const { tenant, sessionId } = parseEntityId((yield* Entity.CurrentAddress).entityId)
      const storage = yield* Storage
      const router = yield* ModelRouter
      const settings = yield* SessionSettings
      const timeoutMs = Duration.toMillis(settings.turnTimeout)
      // Tools run only where plugins are loaded; without them agents answer without tools.
      const registry = yield* Effect.serviceOption(ToolRegistry.ToolRegistry)
      const executor = yield* Effect.serviceOption(ToolExecutor.ToolExecutor)
      const safety = yield* Effect.serviceOption(Safety.Safety)

      // undefined until loaded; loaded lazily so a storage failure answers the caller.
      let history: Array<Message> | undefined
      // Whether the session's row is stored.
      let exists = false
      let agentId: string | null = null
      // Idempotency key → seq of the user message of its turn.
      let idempotencyKeys = new Map<string, number>()

      /** The session as stored; a session the edge has just minted (`fresh`) is new and not read. */
      const load = (fresh: boolean) =>
        Effect.gen(function* () {
          if (history !== undefined) return history
          const loaded = fresh ? undefined : yield* storage.loadSession(tenant, sessionId)
          exists = loaded?._tag === "Some"
          agentId = loaded?._tag === "Some" ? loaded.value.info.agent_id : null
          idempotencyKeys = new Map(loaded?._tag === "Some" ? loaded.value.idempotencyKeys : [])
          history = loaded?._tag === "Some" ? [...loaded.value.messages] : []
          return history
        })

      /**
       * Everything a turn needs before the model call, or the stored answer of a retried turn;
       * fails fast on an unknown session, agent or model, or a prompt over the model's window.
       */
      const prepare = Effect.fnUntraced(function* (input: TurnInput) {
        const past = yield* load(input.create)
        let agent: Agent | undefined
        if (!exists) {
          if (!input.create) return yield* new SessionNotFound({ session_id: sessionId })
          if (input.agent_id !== null) agent = yield* findAgent(input.agent_id)
        } else {
          const key = input.idempotency_key
          const answered = key === null ? undefined : idempotencyKeys.get(key)
          if (answered !== undefined) return { _tag: "Replay", result: yield* replay(answered, input) } as const
          if (input.agent_id !== null && input.agent_id !== agentId) {
            return yield* new SessionAgentConflict({ session_id: sessionId, agent_id: agentId })
          }
          // Read on every turn: a changed agent applies to the sessions that run with it.
          if (agentId !== null) agent = yield* findAgent(agentId)
        }
        const user = yield* newMessage({ role: "user", content: input.message, pinned: input.pin })
        const firstWrite: AppendOptions = {
          create: exists ? undefined : { agentId: input.agent_id, createdAt: user.created_at },
          idempotencyKey:
            input.idempotency_key === null ? undefined : { messageId: user.id, key: input.idempotency_key }
        }
        // Before any model is called: a stopped request fails here, an emergency is answered here.
        const turnSafety = yield* AgentTurn.screen({
          safety,
          agent,
          text: input.message,
          caller: callerOf(input),
          target: sessionId
        })
        if (turnSafety?.screening.reply !== undefined) {
          return { _tag: "Reply", user, firstWrite, screening: turnSafety.screening } as const
        }
        const setup = yield* AgentTurn.setup({ storage, registry, tenant, agent, userId: input.user_id })
        const system = AgentTurn.guardedSystem(setup.system, turnSafety)
        const conversation = [...past, user]
        const plan = yield* router.plan(
          AgentTurn.routeOf({
            model: input.model,
            agent,
            setup,
            promptTokens: Tokens.countMessages(system) + Tokens.countStored(conversation),
            reserveTokens: agent?.parameters.max_tokens ?? 0,
            text: () => input.message,
            stickyKey: sessionId,
            tenant,
            allowed: input.models ?? null
          })
        )
        // The conversation must fit every model the turn may fail over to.
        const contextWindow = Math.min(...plan.candidates.map((m) => m.info.capabilities.context_window))
        const fitted = yield* ContextWindow.fit({
          messages: [...system, ...toPrompt(conversation)],
          // One prompt message per stored message, after the system ones.
          pinned: conversation.flatMap((message, i) => (message.pinned ? [system.length + i] : [])),
          contextWindow,
          reserve: agent?.parameters.max_tokens ?? ContextWindow.defaultReserve,
          strategy:
            settings.contextStrategy === "summarise"
              ? { _tag: "summarise", model: plan.candidates[0].languageModel }
              : { _tag: "drop_oldest" }
        })
        return {
          _tag: "Run",
          turn: {
            plan,
            caller: callerOf(input),
            prompt: fitted.messages,
            callOptions: setup.callOptions,
            toolkit: setup.toolkit,
            builtins: setup.builtins,
            requestId: input.request_id,
            unstored: [user],
            firstWrite,
            safety: turnSafety
          } satisfies Turn
        } as const
      }, traced("SessionActor.prepare"))

      /**
       * The stored answer of the turn whose user message is `seq`, for a retry of it with the
       * same key: the same message, model, provider, usage, cost and tool results. A turn a crash
       * left between its tool calls and its answer is finished first.
       */
      const replay = Effect.fnUntraced(function* (seq: number, input: TurnInput) {
        const asked = (history ?? []).find((message) => message.seq === seq)
        if (asked?.content !== input.message) {
          return yield* new IdempotencyConflict({ session_id: sessionId, reason: "different_message" })
        }
        let found = storedTurn(seq, history ?? [])
        if (found.answer === undefined && (yield* resume())) found = storedTurn(seq, history ?? [])
        const answer = found.answer
        if (answer === undefined || answer.model === null || answer.provider === null) {
          return yield* new IdempotencyConflict({ session_id: sessionId, reason: "unanswered" })
        }
        return new TurnResult({
          session_id: sessionId,
          message: { role: "assistant", content: answer.content },
          model: answer.model,
          provider: answer.provider,
          tool_calls: found.results,
          usage: answer.usage ?? Usage.make(0, 0),
          cost_usd: answer.cost_usd ?? 0
        })
      })

      /** Who pays for a turn and what it serves. */
      const callerOf = (input: Pick<TurnInput, "key_id" | "request_id" | "models">): Caller => ({
        payer: { tenant, keyId: input.key_id },
        models: input.models ?? null,
        requestId: input.request_id,
        sessionId
      })

      const findAgent = (id: string) =>
        Effect.flatMap(storage.getAgent(tenant, id), (found) =>
          found._tag === "Some" ? Effect.succeed(found.value) : Effect.fail(new AgentNotFound({ agent_id: id }))
        )

      // Parallel tool calls store their results as they finish: one append at a time keeps `seq` in order.
      const storeLock = yield* Semaphore.make(1)
      /**
       * Numbers messages after the last stored one and stores them in one transaction. A failed
       * store drops the history: another process may have written, so the next turn reads it again.
       */
      const store = (messages: ReadonlyArray<Message>, options: AppendOptions = {}) =>
        storeLock.withPermits(1)(
          Effect.suspend(() => {
            const first = (history?.at(-1)?.seq ?? 0) + 1
            const numbered = messages.map((message, i): Message => ({ ...message, seq: first + i }))
            return storage.appendMessages(tenant, sessionId, numbered, options).pipe(
              Effect.tap(() =>
                Effect.sync(() => {
                  history?.push(...numbered)
                  if (options.create !== undefined) {
                    exists = true
                    agentId = options.create.agentId
                  }
                  const key = options.idempotencyKey
                  const keyed = key === undefined ? undefined : numbered.find((m) => m.id === key.messageId)
                  if (key !== undefined && keyed !== undefined) idempotencyKeys.set(key.key, keyed.seq)
                })
              ),
              Effect.tapError(() =>
                Effect.sync(() => {
                  history = undefined
                })
              )
            )
          })
        )

      /**
       * A new session whose first turn failed after it was accepted is stored without messages, as
       * it was before turns were written in one go: a streamed turn has already told the client its id.
       */
      const createAfterFailure = (create: AppendOptions["create"]) =>
        create === undefined || exists
          ? Effect.void
          : storage.createSession(tenant, sessionId, create.createdAt, create.agentId).pipe(
              Effect.tap(() =>
                Effect.sync(() => {
                  exists = true
                  agentId = create.agentId
                })
              ),
              Effect.catch((error) => Effect.logWarning(`could not store session ${sessionId}`, error))
            )

      // Built when a turn times out, not per activation: constructing the error validates it.
      const timedOut = Effect.suspend(() => Effect.fail(new TurnTimeout({ timeout_ms: timeoutMs })))

      /** A tool result as a stored message. */
      const storeResult = (result: ToolExecutor.ToolResult) =>
        Effect.flatMap(newMessage({ role: "tool", content: toolContent(result), tool_call_id: result.id }), (m) =>
          store([m])
        )

      /**
       * The steps of a turn from `turn.prompt` on, through the tool-call loop: each step's calls are
       * stored before they run and each result as it finishes; then the answer with the turn's usage
       * and cost. `emit` receives the pieces of a streamed turn.
       */
      const loop = Effect.fnUntraced(function* (turn: Turn, emit?: Emit) {
        let unstored = turn.unstored
        let firstWrite = turn.firstWrite
        // The model answering now, for the events of a streamed turn.
        let answering = turn.plan.candidates[0].info.id
        const tell = (event: TurnEvent) => (emit === undefined ? Effect.void : emit(event, answering))
        const guard = turn.safety?.guard
        const tellDeltas = (contents: ReadonlyArray<string>) =>
          Effect.forEach(contents, (content) => tell({ _tag: "Delta", content }), { discard: true })
        // Streamed text passes the output check's hold-back window before it is told.
        const delta =
          emit === undefined
            ? undefined
            : guard === undefined
              ? (content: string) => tell({ _tag: "Delta", content })
              : (content: string) => Effect.flatMap(guard.push(content, content), tellDeltas)
        const { outcome, models } = yield* router.run(
          turn.caller,
          turn.plan,
          (routed) =>
            ToolLoop.run({
              ...turn,
              router,
              turn: routed,
              maxSteps: settings.maxToolSteps,
              executor,
              hooks: {
                asked: (content, calls, model) =>
                  Effect.gen(function* () {
                    // The step's text is checked whole, and what it held back told, before the calls.
                    if (guard !== undefined) yield* Effect.flatMap(guard.end(content), tellDeltas)
                    // The calls are recorded before they run, so a restart knows what was asked.
                    const asking = yield* newMessage({ ...answeredBy(model), content, tool_calls: calls })
                    yield* store([...unstored, asking], firstWrite)
                    unstored = []
                    firstWrite = {}
                    yield* Effect.forEach(calls, (call) => tell({ _tag: "ToolCall", call }))
                  }),
                answered: (result) => storeResult(result).pipe(Effect.andThen(tell({ _tag: "ToolResult", result }))),
                answering: (model) => {
                  answering = model.info.id
                },
                delta,
                failover: (from, to) => tell({ _tag: "Failover", from, to })
              }
            }).pipe(Effect.map((outcome) => ({ outcome, models: [...routed.models] }))),
          turn.callOptions.maxTokens
        )
        const { model, usage, costUsd } = outcome
        if (guard !== undefined) yield* Effect.flatMap(guard.end(outcome.text), tellDeltas)
        const screening = turn.safety?.screening
        const disclaimer = screening?.disclaimer
        if (screening !== undefined && disclaimer !== undefined) {
          yield* tell({ _tag: "Safety", decision: screening.decision })
          yield* tell({ _tag: "Delta", content: disclaimer })
        }
        const text = outcome.text + (disclaimer ?? "")
        const answer = yield* newMessage({
          ...answeredBy(model),
          content: text,
          usage,
          cost_usd: costUsd,
          models,
          task_type: turn.plan.taskType
        })
        yield* store([...unstored, answer], firstWrite)
        return new TurnResult({
          session_id: sessionId,
          message: { role: "assistant", content: text },
          model: model.info.id,
          provider: model.info.provider,
          tool_calls: outcome.results,
          usage,
          cost_usd: costUsd,
          ...(disclaimer === undefined || screening === undefined ? {} : { safety: screening.decision })
        })
      }, traced("SessionActor.loop"))

      /** A turn a safety policy answered itself (an escalation, a refusal): stored, and told as one delta. */
      const answerBySafety = Effect.fnUntraced(function* (
        prepared: {
          readonly user: Message
          readonly firstWrite: AppendOptions
          readonly screening: Safety.Screening
        },
        emit?: Emit
      ) {
        const content = prepared.screening.reply ?? ""
        const answer = yield* newMessage({
          role: "assistant",
          ...safetyAnswer,
          content,
          usage: Usage.make(0, 0),
          cost_usd: 0
        })
        yield* store([prepared.user, answer], prepared.firstWrite)
        if (emit !== undefined) {
          yield* emit({ _tag: "Safety", decision: prepared.screening.decision }, safetyAnswer.model)
          yield* emit({ _tag: "Delta", content }, safetyAnswer.model)
        }
        return new TurnResult({
          session_id: sessionId,
          message: { role: "assistant", content },
          ...safetyAnswer,
          tool_calls: [],
          usage: Usage.make(0, 0),
          cost_usd: 0,
          safety: prepared.screening.decision
        })
      }, traced("SessionActor.answerBySafety"))

      const runTurn = (input: TurnInput, emit?: Emit) =>
        Effect.flatMap(prepare(input), (prepared) => {
          if (prepared._tag === "Replay") {
            const { result } = prepared
            // A replayed stream: the whole answer as one delta, then `Done`.
            return emit === undefined
              ? Effect.succeed(result)
              : Effect.as(emit({ _tag: "Delta", content: result.message.content }, result.model), result)
          }
          if (prepared._tag === "Reply") {
            return answerBySafety(prepared, emit).pipe(
              Effect.onExit((exit) =>
                Exit.isSuccess(exit) ? Effect.void : createAfterFailure(prepared.firstWrite.create)
              )
            )
          }
          const { turn } = prepared
          return loop(turn, emit).pipe(
            Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : createAfterFailure(turn.firstWrite.create)))
          )
        })

      /** Finishes a turn a crash interrupted: the calls without a result run again, then the loop goes on. */
      const resume = Effect.fnUntraced(function* () {
        const past = yield* load(false)
        const asking = past.findLast((message) => message.role === "assistant" && message.tool_calls !== null)
        const last = past.at(-1)
        if (asking === undefined || last === undefined || !(last.role === "tool" || last === asking)) return false
        const answered = new Set(past.filter((m) => m.seq > asking.seq).map((m) => m.tool_call_id))
        const pending = (asking.tool_calls ?? []).filter((call) => !answered.has(call.id))
        const agent = agentId === null ? undefined : yield* findAgent(agentId)
        // The user is not known any more: nothing is recalled, and `remember` refuses.
        const setup = yield* AgentTurn.setup({ storage, registry, tenant, agent, userId: null })
        if (pending.length > 0) yield* ToolLoop.runCalls(executor, pending, storeResult, setup.builtins)
        // Whose turn it was is not stored: the tenant pays.
        const caller = callerOf({ key_id: null, request_id: "resume" })
        const turnSafety = yield* AgentTurn.screen({ safety, agent, text: null, caller, target: sessionId })
        const prompt = [...AgentTurn.guardedSystem(setup.system, turnSafety), ...toPrompt(history ?? past)]
        const plan = yield* router.plan(
          AgentTurn.routeOf({
            model: asking.model,
            agent,
            setup,
            promptTokens: Tokens.countMessages(prompt),
            reserveTokens: 0,
            text: () => "",
            stickyKey: sessionId,
            tenant,
            // The model that was already answering the turn: its key allowed it.
            allowed: null
          })
        )
        yield* loop({
          plan,
          caller,
          prompt,
          callOptions: setup.callOptions,
          toolkit: setup.toolkit,
          builtins: setup.builtins,
          requestId: "resume",
          unstored: [],
          firstWrite: {},
          safety: turnSafety
        })
        return true
      }, traced("SessionActor.resume"))

      const send = (input: TurnInput) =>
        runTurn(input).pipe(Effect.timeoutOrElse({ duration: settings.turnTimeout, orElse: () => timedOut }))

      // The turn runs in the stream's own fiber, bounded like a sent one: a timeout fails the stream.
      // `Started` goes out with the answer's first piece: a turn that fails before (a model that
      // answers 429, a spent budget) fails the stream before it started, and the edge answers a status.
      const stream = (input: TurnInput): Stream.Stream<TurnEvent, TurnError> =>
        Stream.callback<TurnEvent, TurnError>((queue) => {
          let started = false
          const emit = (event: TurnEvent, model: string) => {
            if (started) return Effect.asVoid(Queue.offer(queue, event))
            started = true
            return Effect.asVoid(Queue.offerAll(queue, [{ _tag: "Started", model }, event]))
          }
          return runTurn(input, emit).pipe(
            Effect.timeoutOrElse({ duration: settings.turnTimeout, orElse: () => timedOut }),
            Effect.flatMap((result) => emit({ _tag: "Done", result }, result.model)),
            Effect.andThen(Queue.end(queue))
          )
        })

      return Session.of({
        Send: ({ payload }) => send(payload),
        Stream: ({ payload }) => stream(payload),
        Resume: () => resume(),
        Delete: () =>
          Effect.gen(function* () {
            const deleted = yield* storage.deleteSession(tenant, sessionId)
            history = []
            exists = false
            agentId = null
            idempotencyKeys = new Map()
            return deleted
          })
      })
    }),
    {
      maxIdleTime: options.maxIdleTime,
      mailboxCapacity: options.mailboxCapacity,
      // A failing turn answers its caller; it must never be replayed or block the session.
      disableFatalDefects: true
    }
  )
