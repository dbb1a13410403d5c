/**
 * Text as the safety detectors read it: Unicode-normalised (NFKC folds full-width letters and
 * compatibility forms), lower-cased, without zero-width characters, whitespace collapsed. The
 * detectors' patterns are written against this form, so an obfuscation that only changes the
 * glyphs (full-width "ｉｇｎｏｒｅ", a zero-width space inside a word) reads as plain text.
 */

const zeroWidth = /[\u200B-\u200D\u2060\uFEFF\u00AD]/g

/** `text` in the form the detectors read. */
export const normalize = (text: string): string =>
  text.normalize("NFKC").replace(zeroWidth, "").toLowerCase().replace(/\s+/g, " ")

/** Whether `text` has Chinese characters (the reply is then written in Chinese). */
export const isChinese = (text: string): boolean => /[\u3400-\u9FFF]/.test(text)

/** Whether any of `patterns` matches `text`. */
export const anyMatch = (patterns: ReadonlyArray<RegExp>, text: string): boolean => {
  for (const pattern of patterns) if (pattern.test(text)) return true
  return false
}
