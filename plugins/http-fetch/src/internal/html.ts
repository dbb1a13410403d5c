/**
 * HTML to the text a model reads: the title, then the visible text with paragraphs and list
 * items on lines of their own. Scripts, styles and the head are dropped, entities decoded,
 * whitespace collapsed as a browser would (except inside `<pre>`), link text kept. Regular
 * expressions, not a parser: pages are untrusted and often broken, and the worst a malformed
 * page can do here is leave some markup or drop some text.
 */

/** Elements whose content is never shown (`head` goes too: its title is read first). */
const hidden = /<(script|style|noscript|head|template|svg|iframe|object|select)\b[^>]*>[\s\S]*?<\/\1\s*>/gi

/** An element left open to the end of the page hides the rest. */
const hiddenUnclosed = /<(script|style|noscript|template)\b[^>]*>[\s\S]*$/i

const comments = /<!--[\s\S]*?(?:-->|$)/g

/** A tag, its quoted attributes may hold `>`; also `<!doctype>` and `<?xml?>`. */
const tags = /<\/?[a-z][^\s/>]*(?:[^>"']|"[^"]*"|'[^']*')*>|<[!?][^>]*>/gi

/** Blocks that stand as paragraphs (a blank line around them). */
const paragraphs =
  /<\/?(p|h[1-6]|table|blockquote|section|article|header|footer|nav|main|aside|figure|form|fieldset|details|dl|ul|ol|hr)\b[^>]*>/gi

/** Elements that end a line. */
const lines = /<\/?(div|br|tr|dt|dd|caption|figcaption|summary|address|thead|tbody|tfoot)\b[^>]*>/gi

const listItems = /<li\b[^>]*>/gi

const cells = /<\/?(td|th)\b[^>]*>/gi

const named: ReadonlyMap<string, string> = new Map([
  ["amp", "&"],
  ["AMP", "&"],
  ["LT", "<"],
  ["GT", ">"],
  ["QUOT", '"'],
  ["lt", "<"],
  ["gt", ">"],
  ["quot", '"'],
  ["apos", "'"],
  ["nbsp", " "],
  ["ensp", " "],
  ["emsp", " "],
  ["thinsp", " "],
  ["shy", ""],
  ["zwj", ""],
  ["zwnj", ""],
  ["copy", "©"],
  ["reg", "®"],
  ["trade", "™"],
  ["hellip", "…"],
  ["mdash", "—"],
  ["ndash", "–"],
  ["minus", "−"],
  ["lsquo", "‘"],
  ["rsquo", "’"],
  ["sbquo", "‚"],
  ["ldquo", "“"],
  ["rdquo", "”"],
  ["bdquo", "„"],
  ["laquo", "«"],
  ["raquo", "»"],
  ["bull", "•"],
  ["middot", "·"],
  ["deg", "°"],
  ["plusmn", "±"],
  ["times", "×"],
  ["divide", "÷"],
  ["frac12", "½"],
  ["frac14", "¼"],
  ["frac34", "¾"],
  ["euro", "€"],
  ["pound", "£"],
  ["yen", "¥"],
  ["cent", "¢"],
  ["sect", "§"],
  ["para", "¶"],
  ["dagger", "†"],
  ["larr", "←"],
  ["rarr", "→"],
  ["uarr", "↑"],
  ["darr", "↓"],
  ["hearts", "♥"],
  ["check", "✓"],
  ["szlig", "ß"],
  ["aelig", "æ"],
  ["AElig", "Æ"],
  ["oslash", "ø"],
  ["Oslash", "Ø"],
  ["eth", "ð"],
  ["thorn", "þ"],
  ["iexcl", "¡"],
  ["iquest", "¿"]
])

/** `&eacute;`, `&Uuml;`, `&ccedil;` …: a letter and a combining mark, composed. */
const marks: ReadonlyMap<string, string> = new Map([
  ["acute", "\u0301"],
  ["grave", "\u0300"],
  ["circ", "\u0302"],
  ["tilde", "\u0303"],
  ["uml", "\u0308"],
  ["ring", "\u030a"],
  ["cedil", "\u0327"],
  ["caron", "\u030c"]
])

const accented = (name: string): string | undefined => {
  const mark = marks.get(name.slice(1))
  return mark === undefined || !/^[a-z]$/i.test(name.charAt(0))
    ? undefined
    : `${name.charAt(0)}${mark}`.normalize("NFC")
}

const codePoint = (value: number): string =>
  value > 0 && value <= 0x10ffff && (value < 0xd800 || value > 0xdfff) ? String.fromCodePoint(value) : "\uFFFD"

/** Decodes `&amp;`, `&#233;`, `&#xE9;` and the common named entities; others stay as written. */
export const decodeEntities = (text: string): string =>
  text.replace(/&(#[0-9]{1,7}|#x[0-9a-f]{1,6}|[a-z][a-z0-9]{1,31});/gi, (entity, name: string) => {
    if (name.startsWith("#x") || name.startsWith("#X")) return codePoint(Number.parseInt(name.slice(2), 16))
    if (name.startsWith("#")) return codePoint(Number(name.slice(1)))
    return named.get(name) ?? accented(name) ?? entity
  })

const collapse = (text: string): string => text.replace(/\s+/g, " ").trim()

/** The flowing text of markup outside `<pre>`. */
const flowText = (html: string): string =>
  decodeEntities(
    html
      .replace(/\s+/g, " ")
      .replace(listItems, "\n- ")
      .replace(paragraphs, "\n\n")
      .replace(lines, "\n")
      .replace(cells, " ")
      .replace(tags, "")
  )
    .replace(/[ \t\u00a0]+/g, " ")
    .replace(/ *\n */g, "\n")

/** The text of a `<pre>` block, its line breaks and indentation kept. */
const preformattedText = (html: string): string =>
  `\n\n${decodeEntities(html.replace(/<br\b[^>]*>/gi, "\n").replace(tags, ""))
    .replace(/^\n/, "")
    .trimEnd()}\n\n`

/** The text of an HTML page, and its `<title>` when it has a non-empty one. */
export const toText = (html: string): { readonly title: string | undefined; readonly text: string } => {
  const withoutComments = html.replace(comments, "")
  const titleMatch = /<title\b[^>]*>([\s\S]*?)<\/title\s*>/i.exec(withoutComments)
  const title = titleMatch?.[1] === undefined ? "" : collapse(decodeEntities(titleMatch[1].replace(tags, "")))
  const visible = withoutComments.replace(hidden, "").replace(hiddenUnclosed, "")
  // split with a capturing group: odd indices are the <pre> blocks.
  const text = visible
    .split(/(<pre\b[^>]*>[\s\S]*?<\/pre\s*>)/i)
    .map((part, index) => (index % 2 === 1 ? preformattedText(part) : flowText(part)))
    .join("")
    .replace(/\n{3,}/g, "\n\n")
    .trim()
  return { title: title === "" ? undefined : title, text }
}
