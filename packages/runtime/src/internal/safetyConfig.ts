/**
 * The `safety:` section of the configuration: the global policy and `tenants.<tenant>`
 * overrides of any of its keys (a tenant may loosen or tighten the global policy; an agent may
 * only tighten its tenant's, see `Safety.ts`). Part of `AppConfig`'s closed schema; regular
 * expressions and doses are validated at start-up. `config/polyagent.yaml` documents every key.
 */
import * as Schema from "effect/Schema"
import * as Categories from "./categories.ts"
import * as Dosage from "./dosage.ts"

const NonEmpty = Schema.NonEmptyString

/** A Llama Guard 3 category code, `S1`–`S14`. */
export const CategoryCode = Schema.Literals(Categories.codes)

/** A regular expression that compiles (JavaScript syntax, Unicode mode; matched case-insensitively). */
const RegexSource = Schema.String.check(
  Schema.isNonEmpty(),
  Schema.isMaxLength(500),
  Schema.makeFilter((source) => {
    try {
      return new RegExp(source, "iu").source === "" ? "expected a non-empty regular expression" : undefined
    } catch (error) {
      return `expected a valid regular expression: ${error instanceof Error ? error.message : String(error)}`
    }
  })
)

/** A custom blocked pattern: its name is the decision's category. */
export const BlockedPattern = Schema.Struct({ name: NonEmpty, pattern: RegexSource })

/** A maximum daily dose: "4 g", "300 mg", "500 mcg". */
const Dose = Schema.String.check(Schema.isPattern(Dosage.dosePattern, { expected: 'a dose such as "4 g" or "300 mg"' }))

const Injection = Schema.Struct({
  enabled: Schema.Boolean,
  /** A random canary in agents' system prompts; an answer that contains it stops. */
  canary: Schema.Boolean,
  /** A model asked whether the message is an injection (answers `yes`/`no`), through the router. */
  classifierModel: Schema.NullOr(NonEmpty)
}).pipe(Schema.encodeKeys({ classifierModel: "classifier_model" }))

const Medical = Schema.Struct({
  enabled: Schema.Boolean,
  emergencyNumber: NonEmpty,
  /** Drug → maximum daily dose; entries add to (or change) the built-in table. */
  maxDailyDoses: Schema.Record(Schema.String, Dose)
}).pipe(Schema.encodeKeys({ emergencyNumber: "emergency_number", maxDailyDoses: "max_daily_doses" }))

/** The holdback window, in estimated tokens: under 64. */
const HoldBackTokens = Schema.Number.check(
  Schema.isInt({ expected: "an integer between 1 and 63" }),
  Schema.isBetween({ minimum: 1, maximum: 63 }, { expected: "an integer between 1 and 63" })
)

const policyFields = {
  injection: Injection,
  blockedCategories: Schema.Array(CategoryCode),
  blockedPatterns: Schema.Array(BlockedPattern),
  /** A Llama Guard-style model that answers `safe` or `unsafe` and a category, through the router. */
  moderationModel: Schema.NullOr(NonEmpty),
  holdBackTokens: HoldBackTokens,
  medical: Medical
}
const policyKeys = {
  blockedCategories: "blocked_categories",
  blockedPatterns: "blocked_patterns",
  moderationModel: "moderation_model",
  holdBackTokens: "hold_back_tokens"
} as const

/** A policy: every key set. */
export const PolicySettings = Schema.Struct(policyFields).pipe(Schema.encodeKeys(policyKeys))
export type PolicySettings = typeof PolicySettings.Type

/** A tenant's overrides: any key of the policy, the others the global policy's. */
export const TenantPolicy = Schema.Struct({
  injection: Schema.optionalKey(
    Schema.Struct({
      enabled: Schema.optionalKey(Schema.Boolean),
      canary: Schema.optionalKey(Schema.Boolean),
      classifierModel: Schema.optionalKey(Schema.NullOr(NonEmpty))
    }).pipe(Schema.encodeKeys({ classifierModel: "classifier_model" }))
  ),
  blockedCategories: Schema.optionalKey(Schema.Array(CategoryCode)),
  blockedPatterns: Schema.optionalKey(Schema.Array(BlockedPattern)),
  moderationModel: Schema.optionalKey(Schema.NullOr(NonEmpty)),
  holdBackTokens: Schema.optionalKey(HoldBackTokens),
  medical: Schema.optionalKey(
    Schema.Struct({
      enabled: Schema.optionalKey(Schema.Boolean),
      emergencyNumber: Schema.optionalKey(NonEmpty),
      maxDailyDoses: Schema.optionalKey(Schema.Record(Schema.String, Dose))
    }).pipe(Schema.encodeKeys({ emergencyNumber: "emergency_number", maxDailyDoses: "max_daily_doses" }))
  )
}).pipe(Schema.encodeKeys(policyKeys))
export type TenantPolicy = typeof TenantPolicy.Type

/** The `safety:` section. */
export const SafetySection = Schema.Struct({
  ...policyFields,
  tenants: Schema.Record(Schema.String, TenantPolicy)
}).pipe(Schema.encodeKeys(policyKeys))

/** Everything off: with these defaults no check runs and the hot path is untouched. */
export const safetyDefaults: typeof SafetySection.Encoded = {
  injection: { enabled: false, canary: true, classifier_model: null },
  blocked_categories: [],
  blocked_patterns: [],
  moderation_model: null,
  hold_back_tokens: 48,
  medical: { enabled: false, emergency_number: "120", max_daily_doses: Dosage.defaultMaxDailyDoses },
  tenants: {}
}
