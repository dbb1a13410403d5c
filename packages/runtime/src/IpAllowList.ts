/**
 * IP allow-lists: lists of addresses and CIDR ranges, IPv4 and IPv6 (parsed by `ipaddr.js`), and
 * the client address of a request. IPv4 clients seen as IPv4-mapped IPv6 (`::ffff:127.0.0.1`, as
 * a dual-stack socket reports them) match IPv4 entries.
 *
 * The client address is the socket's remote address; `X-Forwarded-For` counts only when the socket
 * belongs to a trusted proxy (`server.trusted_proxies`), and then the client is the right-most
 * address of the header that is not itself a trusted proxy, so a client cannot choose its address
 * by sending the header itself.
 */
import ipaddr from "ipaddr.js"

type Address = ReturnType<typeof ipaddr.parse>

/** A parsed list: an address matches when any range holds it. */
export interface AllowList {
  /** The entries as they were written, for messages and listings. */
  readonly entries: ReadonlyArray<string>
  readonly ranges: ReadonlyArray<readonly [Address, number]>
}

/** An address without an IPv4-mapped disguise. */
const normal = (address: Address): Address =>
  address.kind() === "ipv6" && address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress()
    ? address.toIPv4Address()
    : address

/** One entry: an address (a range of one) or a CIDR range; undefined when it is neither. */
const rangeOf = (entry: string): readonly [Address, number] | undefined => {
  const text = entry.trim()
  if (text.includes("/")) {
    if (!ipaddr.isValidCIDR(text)) return undefined
    const [address, bits] = ipaddr.parseCIDR(text)
    const plain = normal(address)
    // `::ffff:10.0.0.0/104` is `10.0.0.0/8`.
    return plain === address ? [address, bits] : [plain, Math.max(0, bits - 96)]
  }
  if (!ipaddr.isValid(text)) return undefined
  const address = normal(ipaddr.parse(text))
  return [address, address.kind() === "ipv4" ? 32 : 128]
}

/** The entries of `entries` that are neither an address nor a CIDR range. */
export const invalidEntries = (entries: ReadonlyArray<string>): ReadonlyArray<string> =>
  entries.filter((entry) => rangeOf(entry) === undefined)

/**
 * The allow-list of `entries`. Entries that do not parse are left out: validate them first with
 * {@link invalidEntries} (configuration and key creation do).
 */
export const make = (entries: ReadonlyArray<string>): AllowList => {
  const ranges: Array<readonly [Address, number]> = []
  for (const entry of entries) {
    const range = rangeOf(entry)
    if (range !== undefined) ranges.push(range)
  }
  return { entries, ranges }
}

/** The address in `text`, unmapped; undefined when it is none. */
export const parseAddress = (text: string | undefined): Address | undefined => {
  if (text === undefined) return undefined
  const trimmed = text.trim()
  return ipaddr.isValid(trimmed) ? normal(ipaddr.parse(trimmed)) : undefined
}

/** Whether `list` holds `address` (an address of another family never matches). */
export const allows = (list: AllowList, address: Address | undefined): boolean => {
  if (address === undefined) return false
  for (const [range, bits] of list.ranges) {
    if (range.kind() === address.kind() && address.match(range, bits)) return true
  }
  return false
}

/**
 * The client of a request: the socket's `remote` address, or, when `remote` is a trusted proxy,
 * the right-most address of `forwardedFor` that is not a trusted proxy. Undefined when the socket
 * has no address (it closed).
 */
export const clientAddress = (
  remote: string | undefined,
  forwardedFor: string | ReadonlyArray<string> | undefined,
  trustedProxies: AllowList
): Address | undefined => {
  const socket = parseAddress(remote)
  if (socket === undefined || forwardedFor === undefined || !allows(trustedProxies, socket)) return socket
  const hops = (typeof forwardedFor === "string" ? [forwardedFor] : forwardedFor).flatMap((header) => header.split(","))
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = parseAddress(hops[i])
    // A hop that is not an address: the chain is broken here; trust nothing left of it.
    if (hop === undefined) return socket
    if (!allows(trustedProxies, hop)) return hop
  }
  return socket
}

/** `address` as text, e.g. for an audit entry. */
export const format = (address: Address | undefined): string => (address === undefined ? "unknown" : address.toString())
