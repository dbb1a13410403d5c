/**
 * The dosage check: finds the doses an answer (or a question) states for a known drug — an
 * amount in mg, g, mcg/µg, 毫克, 克 or 微克, times a tablet count, times a frequency ("every 4
 * hours", "3 times a day", "每6小时", "一天3次"), or an amount stated per day ("4 g a day",
 * "每天10克") — and compares the daily total with the drug's maximum daily dose.
 *
 * Reading is per sentence; a sentence without a drug name takes the previous sentence's drug. A
 * range of intervals ("every 4 to 6 hours") counts as its least frequent end, and an amount that
 * is a stated daily limit ("up to 4 g in 24 hours") is compared as a daily amount, so the usual
 * label wording does not count as an overdose. What it does not read: doses spread over several
 * sentences ("Take 2 g. Repeat hourly."), weight-based doses (mg/kg), and drugs not in the table.
 */

/** A drug of the table: its names (English, Chinese, common brands) and its maximum daily dose. */
export interface Drug {
  readonly name: string
  readonly aliases: ReadonlyArray<string>
  readonly maxDailyMg: number
  /** Any of its names: Latin ones as whole words, Chinese ones anywhere. */
  readonly pattern: RegExp
}

/**
 * Default maximum daily doses for adults, as configuration writes them (`safety.medical.max_daily_doses`).
 * - paracetamol/acetaminophen 4 g: FDA OTC label and NHS (4 g in 24 h).
 * - ibuprofen 3.2 g: FDA prescription label maximum (OTC labels stop at 1.2 g; anything above 3.2 g is unsafe).
 * - aspirin 4 g: analgesic maximum (OTC label: 12 × 325 mg = 3.9 g in 24 h).
 * - naproxen 1.5 g: prescription maximum (OTC labels 660 mg).
 * - diphenhydramine 300 mg: OTC label (50 mg every 4–6 h, at most 6 doses).
 * - dextromethorphan 120 mg: OTC label.
 * - loratadine 10 mg, cetirizine 10 mg: once-daily labels.
 * - codeine 240 mg, tramadol 400 mg: prescription label maxima.
 * - metformin 2,550 mg: immediate-release label maximum.
 * - loperamide 16 mg: prescription maximum (OTC 8 mg).
 */
export const defaultMaxDailyDoses: Readonly<Record<string, string>> = {
  paracetamol: "4 g",
  ibuprofen: "3.2 g",
  aspirin: "4 g",
  naproxen: "1.5 g",
  diphenhydramine: "300 mg",
  dextromethorphan: "120 mg",
  loratadine: "10 mg",
  cetirizine: "10 mg",
  codeine: "240 mg",
  tramadol: "400 mg",
  metformin: "2550 mg",
  loperamide: "16 mg"
}

/** Other names of the default drugs: international names, Chinese names, brands. */
const knownAliases: Readonly<Record<string, ReadonlyArray<string>>> = {
  paracetamol: ["acetaminophen", "tylenol", "panadol", "apap", "对乙酰氨基酚", "扑热息痛", "泰诺", "必理通"],
  ibuprofen: ["advil", "motrin", "nurofen", "布洛芬", "芬必得", "美林"],
  aspirin: ["acetylsalicylic acid", "阿司匹林", "乙酰水杨酸"],
  naproxen: ["aleve", "萘普生"],
  diphenhydramine: ["benadryl", "苯海拉明"],
  dextromethorphan: ["右美沙芬"],
  loratadine: ["claritin", "氯雷他定", "开瑞坦"],
  cetirizine: ["zyrtec", "西替利嗪"],
  codeine: ["可待因"],
  tramadol: ["曲马多"],
  metformin: ["glucophage", "二甲双胍"],
  loperamide: ["imodium", "洛哌丁胺", "易蒙停"]
}

const unitMg: ReadonlyArray<readonly [RegExp, number]> = [
  [/^(mcg|µg|μg|ug|micrograms?|微克)$/, 0.001],
  [/^(mg|milligrams?|毫克)$/, 1],
  [/^(g|gm|grams?|克)$/, 1000]
]

/** The pattern of a dose as configuration writes it: "4 g", "300 mg", "500 mcg". */
export const dosePattern = /^\s*(\d+(?:\.\d+)?)\s*(mg|g|mcg|µg|ug)\s*$/

/** A configured dose ("4 g") in milligrams; undefined when it does not read. */
export const parseDose = (dose: string): number | undefined => {
  const match = dosePattern.exec(dose)
  if (match === null) return undefined
  const factor = unitMg.find(([unit]) => unit.test(match[2] ?? ""))?.[1]
  return factor === undefined ? undefined : Number(match[1]) * factor
}

/** The drug table of a configuration: every configured drug, with its known other names. */
export const table = (maxDailyDoses: Readonly<Record<string, string>>): ReadonlyArray<Drug> =>
  Object.entries(maxDailyDoses).flatMap(([name, dose]) => {
    const maxDailyMg = parseDose(dose)
    const key = name.toLowerCase()
    if (maxDailyMg === undefined) return []
    const aliases = [key, ...(knownAliases[key] ?? [])]
    const alternatives = aliases.map((alias) => {
      const escaped = alias.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
      return /^[a-z ]+$/.test(alias) ? `\\b${escaped}\\b` : escaped
    })
    return [{ name: key, aliases, maxDailyMg, pattern: new RegExp(alternatives.join("|")) }]
  })

/** A stated dose over its drug's maximum. */
export interface Overdose {
  readonly drug: string
  readonly dailyMg: number
  readonly maxDailyMg: number
}

const smallNumbers: Readonly<Record<string, number>> = {
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  fifteen: 15,
  twenty: 20,
  thirty: 30,
  forty: 40,
  fifty: 50,
  hundred: 100
}
const zhDigits: Readonly<Record<string, number>> = {
  零: 0,
  一: 1,
  二: 2,
  两: 2,
  三: 3,
  四: 4,
  五: 5,
  六: 6,
  七: 7,
  八: 8,
  九: 9
}

/** A number written in digits, in English words or in Chinese numerals (below 100). */
const readNumber = (word: string): number | undefined => {
  if (/^\d+(\.\d+)?$/.test(word)) return Number(word)
  const english = smallNumbers[word]
  if (english !== undefined) return english
  if (!/^[零一二两三四五六七八九十]+$/.test(word)) return undefined
  const ten = word.indexOf("十")
  if (ten === -1) return zhDigits[word]
  const tens = ten === 0 ? 1 : (zhDigits[word.slice(0, ten)] ?? 1)
  const ones = ten === word.length - 1 ? 0 : (zhDigits[word.slice(ten + 1)] ?? 0)
  return tens * 10 + ones
}

const numberWord =
  "(\\d+(?:\\.\\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|[零一二两三四五六七八九十]+)"
const amountPattern = /(\d+(?:\.\d+)?)\s*(mcg|µg|μg|ug|micrograms?|mg|milligrams?|grams?|gm|g|毫克|微克|克)(?![a-z])/g
const countBefore = new RegExp(
  `${numberWord}\\s*(?:x\\s*|×\\s*|(?:tablets?|pills?|capsules?|caplets?|doses?|片|粒|颗)\\s*(?:of\\s*)?(?:the\\s*)?)$`
)
const everyHours = new RegExp(
  `(every|each|q)\\s*${numberWord}(?:\\s*(?:-|to|–|or)\\s*${numberWord})?\\s*(hours?|hrs?|h)\\b|每(?:隔)?\\s*${numberWord}(?:\\s*(?:-|到|至|~)\\s*${numberWord})?\\s*(?:个)?小时`
)
const hourly = /\b(every hour|hourly)\b|每(?:个)?小时/
const timesADay = new RegExp(
  `${numberWord}\\s*times\\s*(a|per|each)\\s*day|${numberWord}\\s*times\\s*daily|(每天|每日|一天|一日)[^，。,]{0,6}?${numberWord}\\s*次`
)
const onceTwice = /\b(once|twice|thrice)\s*(a|per|each)\s*day|\b(once|twice|thrice) daily\b/
const dailyAfter =
  /^[^\d]{0,30}?\b(a day|per day|daily|each day|every day|\/day|in 24 hours|per 24 hours|a 24-hour|in a day)\b|^[^\d]{0,12}?(每天|每日|一天|一日|24小时)/
const dailyBefore = /(每天|每日|一天|一日|日剂量|24小时内?|daily dose of|total of|a day of)[^\d]{0,8}$/

const sentenceBreak = /(?<=[!?。！？\n；;])|(?<=\.)(?=\s|$)/

/** Doses per day a sentence states (1 when it names no frequency). */
const frequencyOf = (sentence: string): number => {
  const interval = everyHours.exec(sentence)
  if (interval !== null) {
    // The less frequent end of a range: "every 4 to 6 hours" is 4 doses a day.
    const hours = [interval[2], interval[3], interval[5], interval[6]].flatMap((word) => {
      const value = word === undefined ? undefined : readNumber(word)
      return value === undefined || value <= 0 ? [] : [value]
    })
    if (hours.length > 0) return 24 / Math.max(...hours)
  }
  if (hourly.test(sentence)) return 24
  const times = timesADay.exec(sentence)
  if (times !== null) {
    const value = readNumber(times[1] ?? times[3] ?? times[5] ?? "")
    if (value !== undefined && value > 0) return value
  }
  const word = onceTwice.exec(sentence)
  if (word !== null) return { once: 1, twice: 2, thrice: 3 }[word[1] ?? word[3] ?? "once"] ?? 1
  return 1
}

/** The daily dose `sentence` states, in mg: its largest dose times its frequency, or its largest daily amount. */
const dailyOf = (sentence: string): number => {
  let perDose = 0
  let daily = 0
  for (const match of sentence.matchAll(amountPattern)) {
    const factor = unitMg.find(([unit]) => unit.test(match[2] ?? ""))?.[1] ?? 1
    const before = sentence.slice(0, match.index)
    const after = sentence.slice(match.index + match[0].length)
    const count = countBefore.exec(before)
    const amount = Number(match[1]) * factor * (count === null ? 1 : (readNumber(count[1] ?? "") ?? 1))
    const afterWithoutTimes = after.replace(timesADay, "").replace(onceTwice, "")
    if (dailyAfter.test(afterWithoutTimes) || dailyBefore.test(before)) daily = Math.max(daily, amount)
    else perDose = Math.max(perDose, amount)
  }
  return Math.max(perDose * frequencyOf(sentence), daily)
}

/**
 * The first dose in `text` over its drug's maximum daily dose, if any. `text` is read as
 * written (normalisation is the caller's: lower case, NFKC).
 */
export const check = (text: string, drugs: ReadonlyArray<Drug>): Overdose | undefined => {
  // A dose is a number: text without digits states none.
  if (drugs.length === 0 || !/\d/.test(text)) return undefined
  let previous: Drug | undefined
  for (const sentence of text.split(sentenceBreak)) {
    const drug = drugs.find((candidate) => candidate.pattern.test(sentence)) ?? previous
    previous = drug
    if (drug === undefined || !/\d/.test(sentence)) continue
    const dailyMg = dailyOf(sentence)
    if (dailyMg > drug.maxDailyMg) return { drug: drug.name, dailyMg, maxDailyMg: drug.maxDailyMg }
  }
  return undefined
}
