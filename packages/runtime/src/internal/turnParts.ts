/** Small pieces every turn uses: the spans of its hot path and the messages it makes. */
import * as Effect from "effect/Effect"
import * as Identifier from "../Identifier.ts"
import { type Message, unset } from "../Message.ts"
import { nowIso } from "../Storage.ts"

/**
 * A span for a function of the turn's hot path, without the stack traces `Effect.fn` captures at
 * every call (an `Error` each time) and at every definition (the actor defines its functions on
 * every activation, so once per new session).
 */
export const traced = (name: string) => Effect.withSpan(name, undefined, { captureStackTrace: false })

/** A new message with the defaults of the fields not given. */
export const newMessage = (fields: Partial<Message> & Pick<Message, "role" | "content">) =>
  Effect.gen(function* () {
    const message: Message = {
      id: yield* Identifier.make("msg"),
      seq: 0,
      ...unset,
      created_at: yield* nowIso,
      ...fields
    }
    return message
  })
