/**
 * The id of the client request being served. The edge sets it for every request; the
 * session actor sets it again around a turn's model call (a turn runs on the actor's own
 * fiber), so providers can send it upstream and logs can name it.
 */
import * as Context from "effect/Context"

/** The current request id, `""` outside a request. */
export const RequestId = Context.Reference<string>("@polyagent/runtime/RequestId", { defaultValue: () => "" })
