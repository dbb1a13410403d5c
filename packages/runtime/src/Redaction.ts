/**
 * The redaction policy: what personal data is masked wherever the server writes text it did not
 * write itself (log lines, their annotations and causes), and which fields are never written at all.
 *
 * Masked in text, each as a fixed marker:
 *
 * - e-mail addresses → `[email]`;
 * - phone numbers → `[phone]`: international ones written with `+` (8–15 digits) and China's mobile
 *   numbers (11 digits, `1[3-9]…`, optionally `86`-prefixed, spaces or dashes allowed);
 * - national ids → `[id]`: China's 18-character resident id when its check digit (ISO 7064 MOD 11-2)
 *   is right, and US social security numbers written `ddd-dd-dddd` (valid area, group and serial);
 * - card numbers → `[card]`: 13–19 digits (spaces or dashes allowed) with a card network's prefix
 *   and a valid Luhn check digit, so that ids, timestamps and other numbers stay as they are.
 *
 * A number glued to letters or a decimal point (`req_4111…`, `3.1415…`) is not personal data and is
 * left alone. Text with no `@` and no run of seven digits is returned as it is after one scan.
 *
 * Sensitive fields: a schema field annotated with {@link sensitive} (`api_key`, `signing_secret`, …)
 * is never logged; {@link redactValue} replaces the value of every key of {@link SensitiveKeys} in a
 * logged object, however deep, and masks its strings.
 */
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"

/** The marker of a sensitive field's value. */
export const hidden = "[redacted]"

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g
// A run of 7 to 19 digits, single spaces or dashes between them, an optional leading `+` and an
// optional trailing X (China's ids); not glued to a word or a decimal point.
const NUMBER = /(?<![\w.+])\+?\d(?:[ -]?\d){6,18}[Xx]?(?!\w)/g
// Cheap pre-check: a run of seven digits, separators allowed.
const SEVEN_DIGITS = /\d(?:[ -]?\d){6}/

const CHINA_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
const CHINA_ID_CHECK = "10X98765432"

/** Whether `id` (18 characters) is a resident id of China with a right check digit. */
export const isChinaResidentId = (id: string): boolean => {
  if (!/^[1-9]\d{16}[\dXx]$/.test(id)) return false
  let sum = 0
  for (let i = 0; i < 17; i++) sum += (id.charCodeAt(i) - 48) * (CHINA_ID_WEIGHTS[i] ?? 0)
  return CHINA_ID_CHECK[sum % 11] === id[17]?.toUpperCase()
}

/** Whether `digits` passes the Luhn check. */
export const luhn = (digits: string): boolean => {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let digit = digits.charCodeAt(i) - 48
    if (double) {
      digit *= 2
      if (digit > 9) digit -= 9
    }
    sum += digit
    double = !double
  }
  return sum % 10 === 0
}

// Prefixes of the card networks (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro, Mir).
const CARD_PREFIX = /^(?:4|5[1-5]|2[2-7]|3[47]|6011|64[4-9]|65|35|3[068]|62|5[06-8]|6[37]|220)/

/** Whether `digits` (13–19 of them) is a card number: a network's prefix and a valid Luhn digit. */
export const isCardNumber = (digits: string): boolean =>
  digits.length >= 13 && digits.length <= 19 && CARD_PREFIX.test(digits) && luhn(digits)

const SSN = /^(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}$/
const CHINA_MOBILE = /^(?:86)?1[3-9]\d{9}$/

/** What a number found in text is, if anything the policy masks. */
const classify = (token: string): string | undefined => {
  if (token.startsWith("+")) {
    const digits = token.slice(1).replace(/[ -]/g, "")
    return /^\d{8,15}$/.test(digits) ? "[phone]" : undefined
  }
  if (token.length === 18 && isChinaResidentId(token)) return "[id]"
  if (SSN.test(token)) return "[id]"
  const digits = token.replace(/[ -]/g, "")
  if (!/^\d+$/.test(digits)) return undefined
  if (isCardNumber(digits)) return "[card]"
  if (CHINA_MOBILE.test(digits)) return "[phone]"
  return undefined
}

/** `text` with every e-mail address, phone number, national id and card number masked. */
export const redactText = (text: string): string => {
  let out = text
  if (out.includes("@")) out = out.replace(EMAIL, "[email]")
  if (SEVEN_DIGITS.test(out)) out = out.replace(NUMBER, (token) => classify(token) ?? token)
  return out
}

/** The annotation key that marks a schema as sensitive: its values are never logged. */
export const sensitiveAnnotation = "@polyagent/runtime/Redaction/sensitive"

/** `schema`, marked sensitive: a field of this schema is never logged (see {@link sensitiveKeysOf}). */
export const sensitive = <S extends Schema.Top>(schema: S): S["Rebuild"] =>
  schema.annotate({ [sensitiveAnnotation]: true })

/** Whether `ast` is marked: on itself, on one of its checks (a refined schema keeps them there), or on a member of an optional's union. */
const isSensitive = (ast: SchemaAST.AST): boolean => {
  if (ast.annotations?.[sensitiveAnnotation] === true) return true
  if (ast.checks?.some((check) => check.annotations?.[sensitiveAnnotation] === true) === true) return true
  return SchemaAST.isUnion(ast) && ast.types.some(isSensitive)
}

/**
 * The names of the fields marked {@link sensitive} in `schemas` (structs, looked into through
 * unions, arrays and optional fields).
 */
export const sensitiveKeysOf = (schemas: ReadonlyArray<Schema.Top>): ReadonlySet<string> => {
  const found = new Set<string>()
  const seen = new Set<SchemaAST.AST>()
  const walk = (ast: SchemaAST.AST): void => {
    if (seen.has(ast)) return
    seen.add(ast)
    if (SchemaAST.isObjects(ast)) {
      for (const property of ast.propertySignatures) {
        if (isSensitive(property.type) && typeof property.name === "string") found.add(property.name)
        walk(property.type)
      }
    } else if (SchemaAST.isUnion(ast)) {
      for (const member of ast.types) walk(member)
    } else if (SchemaAST.isArrays(ast)) {
      for (const element of ast.elements) walk(element)
      for (const element of ast.rest) walk(element)
    }
  }
  for (const schema of schemas) walk(schema.ast)
  return found
}

/** Field names whose values are never logged, whatever schema they come from. */
export const baseSensitiveKeys: ReadonlyArray<string> = [
  "api_key",
  "key",
  "apiKey",
  "signing_secret",
  "signingSecret",
  "password",
  "secret",
  "authorization",
  "x-polyagent-signature",
  "admin_key",
  "adminKey",
  "jwt_secret",
  "jwtSecret"
]

/** The set the logger masks: {@link baseSensitiveKeys} and the fields marked sensitive in `schemas`. */
export const SensitiveKeys = (schemas: ReadonlyArray<Schema.Top> = []): ReadonlySet<string> =>
  new Set([...baseSensitiveKeys, ...sensitiveKeysOf(schemas)])

/**
 * `value` as it may be logged: strings masked by {@link redactText}, the values of `keys` replaced
 * by {@link hidden} at any depth (plain objects and arrays are copied; other objects are left to the
 * formatter, which hides `Redacted` values itself). Without `maskText`, only the sensitive keys.
 */
export const redactValue = (value: unknown, keys: ReadonlySet<string>, maskText = true, depth = 0): unknown => {
  if (typeof value === "string") return maskText ? redactText(value) : value
  if (typeof value !== "object" || value === null || depth > 8) return value
  if (Array.isArray(value)) return value.map((item) => redactValue(item, keys, maskText, depth + 1))
  const prototype = Object.getPrototypeOf(value)
  if (prototype !== Object.prototype && prototype !== null) return value
  const copy: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) {
    copy[key] = keys.has(key) ? hidden : redactValue(item, keys, maskText, depth + 1)
  }
  return copy
}
