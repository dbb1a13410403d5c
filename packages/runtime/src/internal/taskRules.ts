/**
 * The rules behind `TaskType.detect`: regular expressions over the prompt, grouped by task
 * type, and the few measures they need (length, the share of Chinese characters). Each group
 * has strong signals (one is enough) and, where a single word is ambiguous, weak ones that must
 * come with another signal. Everything here is synchronous and allocation-light: it runs on
 * every `model: "auto"` request.
 */

const languages =
  "english|french|spanish|german|chinese|mandarin|cantonese|japanese|korean|italian|portuguese|russian|arabic|" +
  "hindi|dutch|swedish|norwegian|danish|finnish|polish|turkish|greek|hebrew|thai|vietnamese|indonesian|malay|" +
  "ukrainian|czech|hungarian|romanian|persian|farsi|urdu|bengali|swahili|latin"

/** A natural language by name, in English or Chinese. */
const naturalLanguage = new RegExp(
  `\\b(?:${languages})\\b|(?:英文|英语|中文|汉语|日语|日文|韩语|法语|德语|西班牙语|俄语)`,
  "i"
)

const translation = {
  /** "translate", in the languages people ask it in. */
  verb: /\btranslat(?:e|es|ed|ing|ion|or)\b|\btradu(?:is|ire|cir|ce|zca|zir)\b|\bübersetz/i,
  /** Chinese requests: 翻译, 译成, 翻成, "用英文怎么说". */
  chinese: /翻译|译成|译为|翻成|(?:用|的)(?:英文|英语|中文|日语|法语|德语|韩语|西班牙语)(?:怎么说|说|写|表达)/,
  /** "how do you say … in French", "what does … mean in English", "… in French?" at the end. */
  phrase: new RegExp(
    `\\bhow (?:do|would|can) (?:you|i|we) say\\b|\\bmeans? in (?:${languages})\\b|\\b(?:into|in) (?:${languages})\\s*(?:please)?\\s*[?.!:]*\\s*$`,
    "i"
  )
}

const summarisation =
  /\bsummar(?:ise|ize|ised|ized|ising|izing|y|isation|ization)\b|\btl;?dr\b|\b(?:key|main) (?:points|takeaways)\b|\bin a nutshell\b|\bcondense\b|总结|概括|摘要|归纳|概述|要点/i

const code = {
  strong: [
    /```/,
    // Stack traces: JavaScript, Python, Java, Rust, Go, TypeScript.
    /^\s+at \S+ \(?[^\n()]*:\d+:\d+\)?$/m,
    /Traceback \(most recent call last\)/,
    /\bFile "[^"]+", line \d+/,
    /\bException in thread\b|\bCaused by: [\w.]+(?:Exception|Error)\b/,
    /\bpanicked at\b|\bgoroutine \d+ \[|\berror\[E\d{4}\]|\berror TS\d{4}\b/,
    /\b(?:TypeError|ReferenceError|SyntaxError|NullPointerException|KeyError|IndexError|AttributeError|ValueError|ImportError|ModuleNotFoundError|Segmentation fault|NameError|RuntimeError)\b/,
    // Syntax of several languages.
    /\b(?:def|class)\s+\w+\s*[(:]/,
    /\bfunction\s*\*?\s*\w*\s*\([^)]*\)\s*\{/,
    /\b(?:const|let|var)\s+\w+\s*(?::\s*\w+\s*)?=/,
    /\)\s*=>\s*[{(\w]/,
    /#include\s*[<"]/,
    /\bimport\s+(?:[\w*{}\s,]+)\s+from\s+["']/,
    /^\s*from\s+[\w.]+\s+import\s+\w/m,
    /\bpublic\s+(?:static\s+)?(?:void|class|int|String|async)\b/,
    /\bfn\s+\w+\s*(?:<[^>]*>)?\s*\(/,
    /\bfunc\s+(?:\([^)]*\)\s*)?\w+\s*\(/,
    /\bSELECT\b[\s\S]{1,200}\bFROM\b|\bINSERT INTO\b|\bCREATE TABLE\b/,
    /\bconsole\.log\(|\bSystem\.out\.print|\bprintf\(|\bstd::/,
    /<\/?(?:div|span|html|body|script|template|button)\b[^>]*>/,
    /\b(?:git (?:commit|push|pull|rebase|merge|clone|checkout)|npm (?:install|run|i)|pip install|docker (?:run|build|compose)|kubectl)\b/
  ],
  /** Technologies: a weak signal, code only with a coding word. */
  technology:
    /\b(?:python|javascript|typescript|node\.?js|java|golang|rust|c\+\+|c#|kotlin|swift|ruby|php|scala|haskell|sql|postgres(?:ql)?|mysql|sqlite|regex|regexp|bash|shell script|powershell|html|css|react|vue|angular|django|flask|spring|docker|kubernetes|api|json|yaml|graphql|linux|git|npm|webpack)\b|正则|数据库|前端|后端/i,
  /** Coding words: a weak signal, code only with a technology. */
  activity:
    /\b(?:code|coding|function|method|class|script|program|compile[rsd]?|debug(?:ging)?|refactor|bug|exception|stack trace|unit tests?|endpoint|query|variable|loop|array|implement(?:ation)?|library|framework|syntax|crash(?:es|ing)?|runtime|deploy)\b|代码|编程|程序|脚本|函数|报错|调试|编译|接口|变量/i,
  /** Unambiguous Chinese coding words. */
  chinese: /代码|编程|报错|调试|编译|写一个(?:脚本|程序)/
}

const medical = {
  strong:
    /\b(?:symptoms?|diagnos(?:is|es|ed|e)|dosages?|doses?|prescri(?:ption|bed?)|medications?|side[- ]effects?|contraindicat\w*|ibuprofen|paracetamol|acetaminophen|aspirin|amoxicillin|metformin|lisinopril|atorvastatin|omeprazole|warfarin|prednisone|sertraline|insulin|levothyroxine|amlodipine|azithromycin|tylenol|advil|antibiotics?|chemotherapy|hypertension|diabetes|diabetic|asthma|migraine|pneumonia|tumou?r|heart attack|chest pain|blood pressure|fever|nausea|vomiting|diarrh(?:o)?ea|infection|allerg(?:y|ic)|pregnan(?:t|cy)|vaccin(?:e|ation)|\d+\s?mg\b)/i,
  weak: /\b(?:doctor|physician|nurse|clinic|hospital|medicine|medical|pain|ache|sick|illness|disease|treatment|therapy|surgery|patient|health|injury|blood|cough|sore throat|headache|dizzy|tablet|pill|rash|stroke|cancer)s?\b/i,
  chinese:
    /症状|诊断|剂量|用量|服用|吃药|药物|处方|副作用|发烧|发热|头痛|头疼|咳嗽|血压|血糖|糖尿病|高血压|医生|医院|看病|怀孕|感冒|过敏|布洛芬|阿莫西林|对乙酰氨基酚|阿司匹林|胸痛|疫苗|感染|抗生素|腹泻|呕吐|失眠|中药|治疗/
}

const math = {
  strong: [
    // Numbers with operators (not dates such as 2026-12-03 or 03/12/2026), equations, powers.
    /(?<![\d/.-])\d+(?:\.\d+)?\s*[+*×÷^]\s*\(?\d|\d\s+[-/]\s+\(?\d|(?<![\d/.-])\d+\/\d+(?![\d/])/,
    /\b\d*[a-z]\s*(?:\^|\*\*)\s*\d/i,
    /(?:^|[\s(])\d*[a-z](?:\s*[-+*/]\s*[\d(a-z]+)+\s*=\s*[-\d(a-z]/i,
    /\d+(?:\.\d+)?\s*%\s*of\s+\d/i,
    /\\(?:frac|int|sum|sqrt|lim|cdot|infty|pi)\b|[∫∑√π∞≤≥≠∂∆]/,
    /\b(?:sin|cos|tan|log|ln)\s*\(/
  ],
  keyword:
    /\b(?:solve|equations?|integral|integrate|derivative|differentiate|factori[sz]e|simplify|calculate|compute|evaluate|probability|matri(?:x|ces)|eigen\w*|logarithm|polynomial|quadratic|algebra|geometry|calculus|trigonometry|arithmetic|fraction|prime numbers?|divisible|remainder|hypotenuse|area of|volume of|how much is|what is \d)\b|解方程|方程|计算|求导|导数|积分|概率|等于多少|矩阵|几何|代数|多少度|质数|余数/i,
  /** A number or a lone variable: a math keyword needs one. */
  operand: /\d|\b[xyzn]\b/
}

const reasoning = {
  strong:
    /\bstep[- ]by[- ]step\b|\bthink (?:carefully|it through|hard)\b|\bprove\b|\bproof\b|\bpuzzle\b|\briddle\b|\bbrain ?teaser\b|\blogic(?:al)? (?:problem|question|puzzle)\b|\bdeduce\b|\bsyllogism\b|\bif all \w+ are\b|\bchain of thought\b|\breason (?:through|about)\b|\bwhich of the following\b|\btrade-?offs?\b|\bpros and cons\b|一步一步|逐步|证明|推理|逻辑题|谜题|脑筋急转弯|利弊/i,
  /** "why" questions of some length: reasoning, unless the text is Chinese chat. */
  weak: /(?:^|[.?!]\s+)(?:why\b|explain why\b|how come\b)|为什么|为何/i
}

/** Letters that mark a text as Chinese (CJK unified ideographs) or as written in another script. */
const isHan = (c: number) =>
  (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0xf900 && c <= 0xfaff)
const isOtherLetter = (c: number) =>
  (c >= 0x41 && c <= 0x5a) ||
  (c >= 0x61 && c <= 0x7a) ||
  (c >= 0xc0 && c <= 0x24f) ||
  (c >= 0x370 && c <= 0x52f) || // Greek, Cyrillic
  (c >= 0x3040 && c <= 0x30ff) || // Japanese kana
  (c >= 0xac00 && c <= 0xd7af) // Korean syllables

/**
 * Whether most letters of `text` are Chinese characters. Latin words count one letter each, so a
 * sentence of Chinese with a few English terms is Chinese; kana and hangul count as other
 * letters, so Japanese and Korean are not.
 */
export const isMostlyChinese = (text: string): boolean => {
  let han = 0
  let other = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (isHan(c)) han++
    else if (isOtherLetter(c)) other++
  }
  return han > 0 && han >= other
}

/** What a summary needs besides the word: enough text to summarise (Chinese is denser). */
const longEnough = (text: string, chinese: boolean) => text.length >= (chinese ? 120 : 400)

/** The part of a long prompt the rules read: its head and its tail (instructions sit at either end). */
export const window = (text: string): string =>
  text.length <= 12_000 ? text : `${text.slice(0, 8_000)}\n${text.slice(-4_000)}`

const any = (patterns: ReadonlyArray<RegExp>, text: string) => patterns.some((pattern) => pattern.test(text))

/** The signals of one prompt, each computed only when the precedence reaches it. */
export const signals = (full: string) => {
  const text = window(full)
  let chinese: boolean | undefined
  const isChinese = () => (chinese ??= isMostlyChinese(text))
  const codeStrong = () => any(code.strong, text)
  return {
    isChinese,
    translation: () => {
      if (translation.chinese.test(text)) return true
      if (translation.phrase.test(text)) return true
      // "Translate this Python to Rust" is code; "translate this paragraph into French" is not.
      return translation.verb.test(text) && (naturalLanguage.test(text) || !codeStrong())
    },
    summarisation: () => summarisation.test(text) && longEnough(full, isChinese()),
    code: () => codeStrong() || code.chinese.test(text) || (code.technology.test(text) && code.activity.test(text)),
    medical: () => {
      if (medical.strong.test(text) || medical.chinese.test(text)) return true
      const weak = text.match(new RegExp(medical.weak.source, "gi"))
      return weak !== null && new Set(weak.map((word) => word.toLowerCase())).size >= 2
    },
    math: () => any(math.strong, text) || (math.keyword.test(text) && math.operand.test(text)),
    reasoningStrong: () => reasoning.strong.test(text),
    reasoningWeak: () => reasoning.weak.test(text) && text.length >= 20
  }
}
