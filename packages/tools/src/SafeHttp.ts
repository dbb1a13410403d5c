/**
 * SafeHttp: outbound HTTP for tools that a model cannot turn against the machine or the network
 * PolyAgent runs in (server-side request forgery). Before every hop — the URL the tool was given
 * and each redirect — the target is checked: http or https only; no private, loopback,
 * link-local, multicast, reserved or cloud-metadata address, whether written as an IP literal
 * or reached through a name (every address the name resolves to must pass). The connection is
 * then made to the checked address itself, so a DNS answer that changes between check and
 * connect (rebinding) cannot slip through. The operator's allow-list lets chosen hosts and
 * networks through anyway. Bodies are read up to a bound; a timeout or an interruption
 * destroys the socket.
 */
import * as Dns from "node:dns/promises"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as Address from "./internal/address.ts"
import { exchange, type Method } from "./internal/exchange.ts"

/** Why a fetch failed; `refused` is the guard saying no, the rest are the network's doing. */
export const SafeHttpErrorReason = Schema.Literals([
  "refused",
  "invalid_url",
  "timeout",
  "too_many_redirects",
  "network"
])
export type SafeHttpErrorReason = typeof SafeHttpErrorReason.Type

/**
 * A fetch failed or was refused. `message` is written for the model that asked: it names the
 * host and the address and why, never query strings, headers or bodies. An HTTP error status
 * (404, 500) is not a failure: it is a response.
 */
export class SafeHttpError extends Schema.TaggedError<SafeHttpError>()("SafeHttpError", {
  reason: SafeHttpErrorReason,
  message: Schema.String
}) {
  /** Whether the same fetch may succeed later (a timeout, a network failure). */
  get retryable(): boolean {
    return this.reason === "timeout" || this.reason === "network"
  }
}

/** What to send. `host` among `headers` is ignored: the URL names the host. */
export interface FetchOptions {
  readonly method?: Method | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly body?: string | undefined
}

/** The final answer, after redirects. */
export interface SafeResponse {
  readonly status: number
  /** Lower-case names; repeated headers joined by ", ". */
  readonly headers: Readonly<Record<string, string>>
  /** The URL that answered, after redirects. */
  readonly url: string
  /** The body decoded as text (its `charset`, else UTF-8): at most `maxBytes` bytes of it. */
  readonly body: string
  /** Whether the body was longer than `maxBytes` and cut there. */
  readonly truncated: boolean
}

/** How the guard is configured. */
export interface Options {
  /**
   * Hosts the guard lets through although they are private: exact host names,
   * `*.example.com` (its subdomains), IP addresses and CIDR networks (`10.1.0.0/16`).
   */
  readonly allowHosts?: ReadonlyArray<string> | undefined
  /** For the whole fetch, redirects and body included; default 10 seconds. */
  readonly timeout?: Duration.Input | undefined
  /** Bytes of body read at most; default 1 MiB. */
  readonly maxBytes?: number | undefined
  /** Redirects followed at most; default 5. */
  readonly maxRedirects?: number | undefined
  /** Every address of a host name; default node's resolver (`dns.lookup`, all addresses). */
  readonly resolve?: ((host: string) => Effect.Effect<ReadonlyArray<string>, unknown>) | undefined
}

/**
 * The guarded HTTP client PolyAgent gives every tool that declares the `network` permission.
 * Tools must reach the network through it alone.
 */
export class SafeHttp extends Context.Service<
  SafeHttp,
  {
    /**
     * Fetches `url`, following redirects, and answers the final response whatever its status;
     * fails with a `SafeHttpError` when a hop is refused, times out or cannot be reached.
     */
    readonly fetch: (url: string, options?: FetchOptions) => Effect.Effect<SafeResponse, SafeHttpError>
  }
>()("@polyagent/tools/SafeHttp") {}

const refusedHint =
  "Tools may not reach private, loopback, link-local or cloud-metadata addresses unless an operator allow-lists the host."

/** A URL as shown in messages: without its query, which may carry tokens. */
const shown = (url: URL): string => `${url.origin}${url.pathname}`

const describeHref = (href: string): string => {
  const url = URL.parse(href)
  return url === null ? "the URL" : shown(url)
}

const fail = (reason: SafeHttpErrorReason, message: string) => Effect.fail(new SafeHttpError({ reason, message }))

const dnsLookup = (host: string): Effect.Effect<ReadonlyArray<string>, unknown> =>
  Effect.tryPromise({
    try: () => Dns.lookup(host, { all: true, order: "verbatim" }),
    catch: (cause) => cause
  }).pipe(Effect.map((answers) => answers.map((answer) => answer.address)))

const errorCode = (cause: unknown): string =>
  Predicate.hasProperty(cause, "code") && Predicate.isString(cause.code) ? ` (${cause.code})` : ""

/** Headers a redirect to another origin must not carry along. */
const credentialHeaders = ["authorization", "cookie", "proxy-authorization"]

/**
 * Makes the guarded client. Dies when `allowHosts` holds an entry it cannot read (a malformed
 * network such as `10.0.0.0/33`): a mistyped allow-list is a configuration bug.
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const { allowList, invalid } = Address.parseAllowList(options.allowHosts ?? [])
  if (invalid.length > 0) {
    return yield* Effect.die(new Error(`SafeHttp: cannot read allowHosts entries ${JSON.stringify(invalid)}`))
  }
  const timeout = Duration.fromInputUnsafe(options.timeout ?? Duration.seconds(10))
  const maxBytes = options.maxBytes ?? 1024 * 1024
  const maxRedirects = options.maxRedirects ?? 5
  const resolve = options.resolve ?? dnsLookup

  /** Parses and checks one hop; answers the URL and the address to connect to. */
  const check = Effect.fnUntraced(function* (href: string, base: URL | undefined) {
    const url = URL.parse(href, base?.href)
    if (url === null) return yield* fail("invalid_url", `${JSON.stringify(href.slice(0, 200))} is not a valid URL.`)
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return yield* fail("invalid_url", `Only http and https URLs can be fetched, not ${url.protocol} URLs.`)
    }
    if (url.username !== "" || url.password !== "") {
      return yield* fail("invalid_url", "URLs with credentials (user:password@host) are not fetched.")
    }
    // The WHATWG parser has already canonicalized 0x7f.1, 2130706433 and the like to 127.0.0.1.
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname
    if (Address.parseAddress(host) !== undefined) {
      const why = Address.allowsAddress(allowList, host) ? undefined : Address.refusedAddress(host)
      if (why !== undefined) return yield* fail("refused", `Refused ${shown(url)}: ${host} is ${why}. ${refusedHint}`)
      return { url, address: host }
    }
    const allowedByName = Address.allowsHost(allowList, host)
    const nameWhy = allowedByName ? undefined : Address.refusedName(host)
    if (nameWhy !== undefined) {
      return yield* fail("refused", `Refused ${shown(url)}: ${host} is ${nameWhy}. ${refusedHint}`)
    }
    const addresses = yield* resolve(host).pipe(
      Effect.catch((cause) => fail("network", `Could not resolve the host name ${host}${errorCode(cause)}.`))
    )
    const [first] = addresses
    if (first === undefined) return yield* fail("network", `The host name ${host} has no addresses.`)
    for (const address of allowedByName ? [] : addresses) {
      const why = Address.allowsAddress(allowList, address) ? undefined : Address.refusedAddress(address)
      if (why !== undefined) {
        return yield* fail("refused", `Refused ${shown(url)}: ${host} resolves to ${address}, ${why}. ${refusedHint}`)
      }
    }
    return { url, address: first }
  })

  const fetch = Effect.fn("SafeHttp.fetch")(
    function* (href: string, fetchOptions: FetchOptions = {}) {
      let method: Method = fetchOptions.method ?? "GET"
      let body = fetchOptions.body
      const headers: Record<string, string> = { "accept-encoding": "gzip, deflate, br" }
      for (const [name, value] of Object.entries(fetchOptions.headers ?? {})) {
        if (name.toLowerCase() !== "host") headers[name.toLowerCase()] = value
      }
      let target = yield* check(href, undefined)
      for (let redirects = 0; ; redirects++) {
        const { url, address } = target
        const response = yield* exchange({ url, address, method, headers, body, maxBytes }).pipe(
          Effect.catchTag("ExchangeFailure", (failure) =>
            fail("network", `Could not fetch ${shown(url)}: ${failure.detail}.`)
          )
        )
        if (response.location === undefined) {
          const { status, headers, body, truncated } = response
          return { status, headers, url: url.href, body, truncated } satisfies SafeResponse
        }
        if (redirects >= maxRedirects) {
          return yield* fail("too_many_redirects", `${shown(url)} redirected more than ${maxRedirects} times.`)
        }
        // As browsers do: 303, and 301/302 after a POST, continue as a GET without the body.
        if (response.status === 303 || (method === "POST" && response.status <= 302)) {
          method = method === "HEAD" ? "HEAD" : "GET"
          body = undefined
          delete headers["content-type"]
        }
        target = yield* check(response.location, url)
        if (target.url.origin !== url.origin) for (const name of credentialHeaders) delete headers[name]
      }
    },
    (effect, href) =>
      Effect.timeoutOrElse(effect, {
        duration: timeout,
        orElse: () => fail("timeout", `Fetching ${describeHref(href)} took longer than ${Duration.format(timeout)}.`)
      })
  )

  return SafeHttp.of({ fetch })
})

/** The guarded client with `options`; see {@link Options} for the defaults. */
export const layer = (options: Options = {}): Layer.Layer<SafeHttp> => Layer.effect(SafeHttp, make(options))

/** The `allowHosts` entries that cannot be read (configuration checks them before `make` would die). */
export const invalidAllowHosts = (entries: ReadonlyArray<string>): ReadonlyArray<string> =>
  Address.parseAllowList(entries).invalid
