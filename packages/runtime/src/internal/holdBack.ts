/**
 * The hold-back window of streamed output. Pieces of an answer (text deltas, or relayed SSE
 * events with the text they carry) are held until the text held passes the window, checked
 * together with the text before them, and only then released, oldest first. A check that fails
 * stops the stream while the span that failed it is still held: the client never receives it.
 * At the end the rest is checked once more, as a whole answer, and released.
 *
 * The check runs when something is due to leave (the text held passed the window), and then
 * releases down to three quarters of the window, so it runs about once per quarter window rather
 * than once per piece. The window is counted in estimated tokens (`estimateTokens`), which
 * over-count `o200k_base` for English and Chinese, so a window of `n` estimated tokens holds at
 * most `n` real ones plus the newest piece. A span is always stopped before any of it is released
 * when it is at most three quarters of the window long (36 tokens with the default 48); a longer
 * span may be partly released before it is complete. Detectors look for spans shorter than that
 * (a dose, a canary, a phrase).
 */

/** Why a check stopped the output. */
export interface Verdict {
  readonly action: "refuse" | "block"
  readonly category: string
}

/** What a push or the end releases, or that the output must stop. */
export type Step<A> =
  | { readonly _tag: "Release"; readonly items: ReadonlyArray<A> }
  | { readonly _tag: "Stop"; readonly verdict: Verdict }

/** The check of the text so far; `final` at the end of the answer. */
export type Check = (text: string, final: boolean) => Verdict | undefined

/**
 * An estimate of the tokens of `text` that is not below `o200k_base`'s count for English and
 * Chinese: one per CJK character, one per three other characters.
 */
export const estimateTokens = (text: string): number => {
  let cjk = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code >= 0x2e80) cjk++
  }
  return cjk + Math.ceil((text.length - cjk) / 3)
}

/** The text before the held pieces that a check still reads: enough for a sentence's context. */
const contextChars = 400

/** A hold-back window over pieces of type `A`. */
export class HoldBack<A> {
  private readonly held: Array<{ readonly item: A; readonly text: string; readonly tokens: number }> = []
  private heldTokens = 0
  private heldText = ""
  private released = ""
  private stopped = false

  private readonly windowTokens: number
  private readonly check: Check

  constructor(windowTokens: number, check: Check) {
    this.windowTokens = windowTokens
    this.check = check
  }

  /** Holds `item` (carrying `text`, empty for none), checks, and releases what left the window. */
  push(item: A, text: string): Step<A> {
    if (this.stopped) return { _tag: "Release", items: [] }
    const tokens = text === "" ? 0 : estimateTokens(text)
    this.held.push({ item, text, tokens })
    this.heldTokens += tokens
    this.heldText += text
    // Nothing leaves yet: nothing to check yet.
    if (this.heldTokens <= this.windowTokens || this.held.length === 1) return { _tag: "Release", items: [] }
    const verdict = this.check(this.released + this.heldText, false)
    if (verdict !== undefined) return this.stop(verdict)
    const items: Array<A> = []
    const keep = Math.floor((this.windowTokens * 3) / 4)
    // The newest piece stays held: it was checked only with what precedes it.
    while (this.held.length > 1 && this.heldTokens > keep) {
      const first = this.held.shift()
      if (first === undefined) break
      this.heldTokens -= first.tokens
      this.heldText = this.heldText.slice(first.text.length)
      this.released = (this.released + first.text).slice(-contextChars)
      items.push(first.item)
    }
    return { _tag: "Release", items }
  }

  /** The end of the answer: the whole answer `answer` is checked, and everything held released. */
  end(answer: string): Step<A> {
    if (this.stopped) return { _tag: "Release", items: [] }
    const verdict = this.check(answer, true)
    if (verdict !== undefined) return this.stop(verdict)
    const items = this.held.map((piece) => piece.item)
    this.held.length = 0
    this.heldTokens = 0
    this.heldText = ""
    return { _tag: "Release", items }
  }

  /** The estimated tokens held now. */
  get holding(): number {
    return this.heldTokens
  }

  private stop(verdict: Verdict): Step<A> {
    this.stopped = true
    this.held.length = 0
    return { _tag: "Stop", verdict }
  }
}
