/**
 * The address policy of `SafeHttp`: which IP addresses and host names a tool may not reach
 * (private, loopback, link-local, multicast, reserved and cloud-metadata ones), and the
 * operator's allow-list that lets chosen hosts and networks through anyway. Pure functions on
 * the canonical host and address text that the WHATWG URL parser and DNS produce.
 */

/** An IPv4 (4 bytes) or IPv6 (16 bytes) address. */
type Bytes = ReadonlyArray<number>

/** A network: the address bytes and the length of the prefix in bits. */
interface Network {
  readonly bytes: Bytes
  readonly prefix: number
}

/** A refused network and what to call it in a message. */
interface Refused extends Network {
  readonly label: string
}

/** Parses a dotted-quad IPv4 address (`127.0.0.1`); `undefined` if it is not one. */
export const parseIPv4 = (text: string): Bytes | undefined => {
  const parts = text.split(".")
  if (parts.length !== 4 || !parts.every((part) => /^(0|[1-9][0-9]{0,2})$/.test(part))) return undefined
  const bytes = parts.map(Number)
  return bytes.every((byte) => byte <= 255) ? bytes : undefined
}

const hexGroups = (text: string): Array<number> | undefined => {
  if (text === "") return []
  const groups = text.split(":")
  return groups.every((group) => /^[0-9a-f]{1,4}$/i.test(group))
    ? groups.map((group) => Number.parseInt(group, 16))
    : undefined
}

/**
 * Parses an IPv6 address, bracketed or not, with `::`, a dotted IPv4 tail (`::ffff:1.2.3.4`)
 * or a zone (`fe80::1%eth0`, which is ignored); `undefined` if it is not one.
 */
export const parseIPv6 = (text: string): Bytes | undefined => {
  let rest = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text
  const zone = rest.indexOf("%")
  if (zone >= 0) rest = rest.slice(0, zone)
  const lastColon = rest.lastIndexOf(":")
  if (lastColon < 0) return undefined
  if (rest.includes(".", lastColon)) {
    // A dotted IPv4 tail is the last two groups written differently.
    const ipv4 = parseIPv4(rest.slice(lastColon + 1))
    if (ipv4 === undefined) return undefined
    const [a = 0, b = 0, c = 0, d = 0] = ipv4
    rest = `${rest.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const halves = rest.split("::")
  if (halves.length > 2) return undefined
  const head = hexGroups(halves[0] ?? "")
  const tailGroups = hexGroups(halves[1] ?? "")
  if (head === undefined || tailGroups === undefined) return undefined
  const missing = 8 - head.length - tailGroups.length
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined
  const groups = [...head, ...Array.from({ length: halves.length === 1 ? 0 : missing }, () => 0), ...tailGroups]
  return groups.flatMap((group) => [group >> 8, group & 0xff])
}

/** Parses an IPv4 or IPv6 address. */
export const parseAddress = (text: string): Bytes | undefined => parseIPv4(text) ?? parseIPv6(text)

/** Parses `10.0.0.0/8`, `fc00::/7` or a single address (a network of one). */
const parseNetwork = (text: string): Network | undefined => {
  const slash = text.indexOf("/")
  const bytes = parseAddress(slash < 0 ? text : text.slice(0, slash))
  if (bytes === undefined) return undefined
  if (slash < 0) return { bytes, prefix: bytes.length * 8 }
  const prefixText = text.slice(slash + 1)
  const prefix = Number(prefixText)
  return /^[0-9]{1,3}$/.test(prefixText) && prefix <= bytes.length * 8 ? { bytes, prefix } : undefined
}

const contains = (network: Network, bytes: Bytes): boolean => {
  if (network.bytes.length !== bytes.length) return false
  for (let bit = 0; bit < network.prefix; bit += 8) {
    const mask = (0xff << (8 - Math.min(8, network.prefix - bit))) & 0xff
    if (((network.bytes[bit / 8] ?? 0) & mask) !== ((bytes[bit / 8] ?? 0) & mask)) return false
  }
  return true
}

const network = (cidr: string): Network =>
  // The tables below are literals; one that did not parse would match nothing, and the tests would say so.
  parseNetwork(cidr) ?? { bytes: [], prefix: 0 }

const refused = (cidr: string, label: string): Refused => ({ ...network(cidr), label: `${label} (${cidr})` })

/** Refused IPv4 networks, the most specific first so the message names the narrowest. */
const refusedIPv4: ReadonlyArray<Refused> = [
  refused("169.254.169.254/32", "the cloud metadata service"),
  refused("255.255.255.255/32", "the broadcast address"),
  refused("0.0.0.0/8", "a 'this network' address"),
  refused("10.0.0.0/8", "a private address"),
  refused("100.64.0.0/10", "a carrier-grade NAT address"),
  refused("127.0.0.0/8", "a loopback address"),
  refused("169.254.0.0/16", "a link-local address"),
  refused("172.16.0.0/12", "a private address"),
  refused("192.0.0.0/24", "an IETF protocol assignment"),
  refused("192.168.0.0/16", "a private address"),
  refused("198.18.0.0/15", "a benchmarking address"),
  refused("224.0.0.0/4", "a multicast address"),
  refused("240.0.0.0/4", "a reserved address")
]

/** IPv6 networks that carry an IPv4 address, checked as that address: bytes `from`..`from+4`. */
const embeddingIPv4: ReadonlyArray<Network & { readonly from: number; readonly form: string }> = [
  { ...network("::ffff:0:0/96"), from: 12, form: "IPv4-mapped" },
  { ...network("64:ff9b::/96"), from: 12, form: "NAT64" },
  { ...network("2002::/16"), from: 2, form: "6to4" }
]

/** Refused IPv6 networks (after the embedded-IPv4 ones above). */
const refusedIPv6: ReadonlyArray<Refused> = [
  refused("::/128", "the unspecified address"),
  refused("::1/128", "the loopback address"),
  refused("::/96", "an IPv4-compatible address"),
  refused("64:ff9b:1::/48", "a local-use NAT64 address"),
  refused("100::/64", "a discard-only address"),
  refused("2001::/32", "a Teredo tunnel address"),
  refused("fc00::/7", "a unique local address"),
  refused("fe80::/10", "a link-local address"),
  refused("fec0::/10", "a site-local address"),
  refused("ff00::/8", "a multicast address")
]

const reasonForBytes = (bytes: Bytes): string | undefined => {
  if (bytes.length === 4) return refusedIPv4.find((network) => contains(network, bytes))?.label
  const embedding = embeddingIPv4.find((network) => contains(network, bytes))
  if (embedding !== undefined) {
    const inner = reasonForBytes(bytes.slice(embedding.from, embedding.from + 4))
    return inner === undefined ? undefined : `${inner} in ${embedding.form} form`
  }
  return refusedIPv6.find((network) => contains(network, bytes))?.label
}

/**
 * Why a tool may not connect to `address` ("a loopback address (127.0.0.0/8)"), or
 * `undefined` if it may. Anything that is not an IP address is refused.
 */
export const refusedAddress = (address: string): string | undefined => {
  const bytes = parseAddress(address)
  return bytes === undefined ? "not an IP address" : reasonForBytes(bytes)
}

/** Host names that reach the machine itself or a cloud's metadata service. */
const refusedNames: ReadonlyMap<string, string> = new Map([
  ["localhost", "the local machine"],
  ["metadata", "a cloud metadata service"],
  ["metadata.google.internal", "a cloud metadata service"],
  ["metadata.goog", "a cloud metadata service"],
  ["instance-data", "a cloud metadata service"]
])

/** Suffixes of names that are private by definition (RFC 6761, ICANN's `.internal`). */
const refusedSuffixes: ReadonlyArray<readonly [string, string]> = [
  [".localhost", "the local machine"],
  [".internal", "a private network name"]
]

/** A host name as compared: lower case, without the trailing dot of a fully qualified name. */
export const normalizeHost = (host: string): string => {
  const lower = host.toLowerCase()
  return lower.endsWith(".") ? lower.slice(0, -1) : lower
}

/** Why a tool may not connect to the host name `host`, whatever it resolves to; or `undefined`. */
export const refusedName = (host: string): string | undefined => {
  const name = normalizeHost(host)
  return refusedNames.get(name) ?? refusedSuffixes.find(([suffix]) => name.endsWith(suffix))?.[1]
}

/**
 * The operator's allow-list: exact host names, `*.example.com` (its subdomains) and IP
 * addresses or CIDR networks, which bypass the private-address check.
 */
export interface AllowList {
  readonly hosts: ReadonlySet<string>
  readonly suffixes: ReadonlyArray<string>
  readonly networks: ReadonlyArray<Network>
}

/** Parses the allow-list; answers the entries it cannot read (a malformed network, an empty entry). */
export const parseAllowList = (
  entries: ReadonlyArray<string>
): { readonly allowList: AllowList; readonly invalid: ReadonlyArray<string> } => {
  const hosts = new Set<string>()
  const suffixes: Array<string> = []
  const networks: Array<Network> = []
  const invalid: Array<string> = []
  for (const entry of entries) {
    const text = entry.trim()
    const network = parseNetwork(text)
    if (network !== undefined) networks.push(network)
    else if (text === "" || text.includes("/") || text.includes(":")) invalid.push(entry)
    else if (text.startsWith("*.")) suffixes.push(normalizeHost(text.slice(1)))
    else hosts.add(normalizeHost(text))
  }
  return { allowList: { hosts, suffixes, networks }, invalid }
}

/** Whether the host name (or IP literal) `host` is allow-listed by name. */
export const allowsHost = (allowList: AllowList, host: string): boolean => {
  const name = normalizeHost(host)
  return allowList.hosts.has(name) || allowList.suffixes.some((suffix) => name.endsWith(suffix))
}

/** Whether `address` lies in an allow-listed network (an IPv4-mapped IPv6 address as its IPv4). */
export const allowsAddress = (allowList: AllowList, address: string): boolean => {
  const bytes = parseAddress(address)
  if (bytes === undefined) return false
  const mapped = embeddingIPv4[0]
  const candidates = mapped !== undefined && contains(mapped, bytes) ? [bytes, bytes.slice(12)] : [bytes]
  return allowList.networks.some((network) => candidates.some((candidate) => contains(network, candidate)))
}
