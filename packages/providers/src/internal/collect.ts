/**
 * One request over an undici dispatcher whose whole answer is collected into one buffer, without
 * the `Readable` body, its stream state and the promises `Dispatcher.request` and `body.bytes()`
 * allocate per request: the relay's non-streamed call, its hot path (see bench/README.md, "Tail
 * latency": fewer bytes allocated per request, fewer young-generation collections).
 */
import type { IncomingHttpHeaders } from "node:http"
import { type Dispatcher, errors } from "undici"

/** A whole answer: its status, headers and body (at most `limit` bytes of an unsuccessful one). */
export interface Collected {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

/** Why a request failed, whether its answer had begun (its headers were in), and its status then. */
export class CollectError {
  readonly error: unknown
  readonly answered: boolean
  /** The answer's status when it had begun, else 0. */
  readonly status: number
  constructor(error: unknown, answered: boolean, status: number) {
    this.error = error
    this.answered = answered
    this.status = status
  }
}

/**
 * Sends `options` over `dispatcher` and resolves with the whole answer, or rejects with a
 * {@link CollectError}. Aborting `signal` aborts the request (undici closes its connection). The
 * body of a non-2xx answer is read up to `errorLimit` bytes: past it the request is aborted and
 * the answer resolves with what came.
 */
export const collect = (
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  signal: AbortSignal,
  errorLimit: number
): Promise<Collected> =>
  new Promise((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined
    let status = 0
    let headers: IncomingHttpHeaders = {}
    let answered = false
    let cut = false
    const chunks: Array<Buffer> = []
    let size = 0
    const onAbort = () => controller?.abort(abortReason(signal))
    const settle = () => signal.removeEventListener("abort", onAbort)
    const body = () => (chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, size))
    if (signal.aborted) return reject(new CollectError(abortReason(signal), false, 0))
    signal.addEventListener("abort", onAbort, { once: true })
    dispatcher.dispatch(options, {
      onRequestStart(c) {
        controller = c
      },
      onResponseStart(_c, statusCode, responseHeaders) {
        answered = true
        status = statusCode
        headers = responseHeaders
      },
      onResponseData(c, chunk) {
        chunks.push(chunk)
        size += chunk.length
        if ((status < 200 || status >= 300) && size > errorLimit) {
          cut = true
          c.abort(new Error("error body over the limit"))
        }
      },
      onResponseEnd() {
        settle()
        resolve({ status, headers, body: body() })
      },
      onResponseError(_c, error) {
        settle()
        if (cut) resolve({ status, headers, body: body() })
        else reject(new CollectError(error, answered, status))
      }
    })
  })

// undici's own abort error, as `Dispatcher.request` rejects with on an aborted signal.
const abortReason = (_signal: AbortSignal): Error => new errors.RequestAbortedError()
