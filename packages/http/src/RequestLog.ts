/**
 * The one log line of every HTTP request, written when its answer is complete (a stream when it
 * ends) by the edge (`Edge.ts`) for the whole stack, and by the fast lane (`FastLane.ts`) for the
 * requests it serves, through the same {@link write}:
 *
 * `request method=POST route=/v1/sessions/:id status=200 duration_ms=1.52 request_id=req_… tenant=default key_id=key_… model=gpt-4o-mini`
 *
 * The route is the route's pattern, not the path with its ids (an unknown route shows its path,
 * cut to {@link maxPathLength}); `tenant` and `key_id` appear once a key was verified, `model` when
 * a model answered. A client that went away before its answer is `status=499`. Nothing of the
 * request's headers or body is ever logged: no key, no token, no prompt. Level `info`, `warn` for
 * a 5xx answer (but for the 503s a server gives on purpose while it starts or stops).
 *
 * What only the inner layers learn (who called, which model answered) they record in the request's
 * {@link Facts}, which the edge provides as {@link CurrentFacts}.
 *
 * The same place counts the request for `/metrics`: {@link requestsTotal} by method, route and
 * status, and {@link requestDuration} by method and route (no tenant, key or id: a series per
 * route, never per caller).
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"

/** Who called and which model answered: what the stack learns while serving a request; one per request. */
export class Facts {
  tenant: string | undefined
  keyId: string | undefined
  model: string | undefined
  /** The `Retry-After` of a failed answer, in seconds; the edge sets the header. */
  retryAfter: number | undefined
  constructor(tenant?: string, keyId?: string, model?: string) {
    this.tenant = tenant
    this.keyId = keyId
    this.model = model
  }
}

/** The facts of the request being served; `undefined` outside one (a turn on a session's fiber). */
export const CurrentFacts = Context.Reference<Facts | undefined>("@polyagent/http/RequestLog/CurrentFacts", {
  defaultValue: () => undefined
})

/** Records the verified caller of the current request. */
export const recordCaller = (caller: { readonly tenant: string; readonly subject: string }): Effect.Effect<void> =>
  Effect.map(Effect.service(CurrentFacts), (facts) => {
    if (facts === undefined) return
    facts.tenant = caller.tenant
    facts.keyId = caller.subject
  })

/** Records the model that answers the current request. */
export const recordModel = (model: string): Effect.Effect<void> =>
  Effect.map(Effect.service(CurrentFacts), (facts) => {
    if (facts !== undefined) facts.model = model
  })

/** Records the `Retry-After` of the current request's failure (the edge writes the header). */
export const recordRetryAfter = (seconds: number): Effect.Effect<void> =>
  Effect.map(Effect.service(CurrentFacts), (facts) => {
    if (facts !== undefined) facts.retryAfter = seconds
  })

/** The status logged for a request whose client went away before its answer (as nginx logs it). */
export const clientClosed = 499

/**
 * The status to log for an answer written by hand (the relay's): what it wrote, 499 when the client
 * went away first, 500 for a defect (which wrote nothing).
 */
export const statusOfExit = (exit: Exit.Exit<number>): number =>
  Exit.isSuccess(exit) ? exit.value : Cause.hasInterruptsOnly(exit.cause) ? clientClosed : 500

/** Longest path logged for a request that matched no route. */
export const maxPathLength = 128

/** The path of an unknown route as logged: no query, at most {@link maxPathLength} characters. */
export const unknownRoute = (url: string): string => {
  const query = url.indexOf("?")
  const path = query === -1 ? url : url.slice(0, query)
  return path.length > maxPathLength ? `${path.slice(0, maxPathLength)}…` : path
}

/** One request's line. */
export interface Entry {
  readonly method: string
  readonly route: string
  readonly status: number
  /** When the request began, from `Clock.monotonicTimeNanos`. */
  readonly startedAt: bigint
  /** When its answer ended, from the same clock. */
  readonly endedAt: bigint
  readonly requestId: string
  readonly facts: Facts | undefined
  /** A 5xx the server gives on purpose while it starts or stops: logged at `info`, not `warn`. */
  readonly expected?: boolean
}

/** Requests answered, by `method`, `route` (as logged) and `status`. */
export const requestsTotal = Metric.counter("polyagent_http_requests_total", {
  description: "HTTP requests answered, by method, route and status (499: the client went away)",
  incremental: true
})

/** How long requests took, to the end of their answer, by `method` and `route`. */
export const requestDuration = Metric.histogram("polyagent_http_request_duration_seconds", {
  description: "Time from a request's arrival to the end of its answer (a stream's end), by method and route",
  boundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
})

// The series of each method, route and status, made once: a request adds to them without allocating.
const series = new Map<
  string,
  { readonly count: Metric.Metric<number, unknown>; readonly duration: Metric.Metric<number, unknown> }
>()
/** Unknown routes are logged by path; past this many series they are counted under one route. */
const maxSeries = 1_000

const seriesOf = (method: string, route: string, status: number) => {
  // Past the cap, new routes are counted as one.
  const counted = series.size < maxSeries || series.has(`${method} ${route} ${status}`) ? route : "(other)"
  const key = `${method} ${counted} ${status}`
  let found = series.get(key)
  if (found === undefined) {
    found = {
      count: Metric.withAttributes(requestsTotal, { method, route: counted, status: String(status) }),
      duration: Metric.withAttributes(requestDuration, { method, route: counted })
    }
    series.set(key, found)
  }
  return found
}

/** Writes the line of `entry`, and counts it. */
export const write = (entry: Entry): Effect.Effect<void> => {
  const fields: Record<string, string | number> = {
    method: entry.method,
    route: entry.route,
    status: entry.status,
    // Microseconds are plenty; two decimals keep the line short.
    duration_ms: Math.round(Number(entry.endedAt - entry.startedAt) / 10_000) / 100,
    request_id: entry.requestId
  }
  const facts = entry.facts
  if (facts !== undefined) {
    if (facts.tenant !== undefined) fields["tenant"] = facts.tenant
    if (facts.keyId !== undefined) fields["key_id"] = facts.keyId
    if (facts.model !== undefined) fields["model"] = facts.model
  }
  const warn = entry.status >= 500 && entry.expected !== true
  const { count, duration } = seriesOf(entry.method, entry.route, entry.status)
  return Effect.contextWith((context: Context.Context<never>) => {
    count.updateUnsafe(1, context)
    duration.updateUnsafe(Number(entry.endedAt - entry.startedAt) / 1e9, context)
    return Effect.annotateLogs(warn ? Effect.logWarning("request") : Effect.logInfo("request"), fields)
  })
}
