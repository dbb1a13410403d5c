/**
 * Prompt-injection heuristics, English and Chinese: instruction overrides, role-play jailbreaks,
 * system-prompt exfiltration, chat-template delimiters and notes addressed to the model inside
 * documents, and payloads hidden in base64, hex or rot13 (decoded once and read again). Each
 * family is a few patterns over the normalised text (`safetyText.ts`); a match names its family.
 * Heuristics catch the common phrasings, not a determined attacker: the optional classifier model
 * (`safety.injection.classifier_model`) and the canary in agents' system prompts back them up.
 */
import { anyMatch, normalize } from "./safetyText.ts"

/** The family of a detected injection. */
export type Family = "override" | "roleplay" | "exfiltration" | "delimiter" | "encoded"

// One clause: no sentence end in between, so words from two sentences do not combine.
const gap = (max: number) => `[^.?!。？！\\n]{0,${max}}?`

const targetsEn =
  "(instructions?|directives?|rules|guidelines|guardrails|constraints|restrictions|programming|prompts?|system (message|prompt)|polic(y|ies)|safety|content (filter|policy)|training|limitations|safeguards)"

const override: ReadonlyArray<RegExp> = [
  new RegExp(
    `\\b(ignore|disregard|forget|override|overrule|bypass|skip|discard|abandon|stop following|don't follow|do not follow|no longer follow)\\b${gap(40)}\\b${targetsEn}\\b`
  ),
  // "ignore the above", "disregard everything before this", "forget all prior context."
  /\b(ignore|disregard|forget)\s+(all\s+|everything\s+)?(of\s+)?(the\s+|your\s+)?(above|previous|prior|preceding|earlier|before this)(\s+(text|content|context|conversation|input|messages?))?\s*([.,;:!]|and\b|$)/,
  /\b(ignore|disregard|forget)\b[^.?!\n]{0,30}?\b(you were|you've been|you have been) (told|given|taught|instructed)/,
  /\b(ignore|disregard|forget)\b[^.?!\n]{0,20}?\b(the |your )?(developer|operator|admin)s? (told|said|gave|set|wants)/,
  /\b(disable|turn off|remove|deactivate|lift|switch off)\s+(your\s+|all\s+|the\s+|any\s+)*(guardrails|safety (filters?|features|guidelines)|content (filters?|polic(y|ies))|filters|restrictions|safeguards|limitations)\b/,
  /\bunlock\s+(all\s+|your\s+)*(restricted|hidden|full|unrestricted)\s+(capabilities|features|mode|potential)/,
  /\b(rules|restrictions|guidelines|policies|instructions)\s+(no longer|don't|do not|doesn't|won't|will not)\s+(apply|matter|exist)/,
  /\b(previous|prior|earlier|above|original|old)\s+(instructions|rules|directives|prompts?)\s+(are|were|is)\s+(now\s+)?(void|outdated|obsolete|cancell?ed|invalid|fake|wrong|null|revoked)/,
  /\b(new|updated|real|actual|revised|true)\s+(system\s+)?(instructions?|task|directives?|prompt|rules)\s*[:：]/,
  /\b(none of|no) (your|the) (rules|restrictions|guidelines|policies) (apply|matter|exist)/,
  /\bsystem override\b/,
  /(忽略|无视|忘记|忘掉|忽视|不要理会|不理会|别管|跳过|覆盖|绕过|抛开|放弃|不要遵守|不再遵守|停止遵守)[^。？！\n]{0,12}(指令|指示|规则|设定|提示词|系统提示|要求|限制|约束|安全策略|安全规则|命令)/,
  /(之前|以上|上面|先前|原来)的?(所有)?(指令|指示|规则|设定)(已经|都)?(作废|无效|过时|失效)/,
  /(新的?|真正的)(系统)?(指令|任务|规则)\s*[:：]/
]

const roleplay: ReadonlyArray<RegExp> = [
  // A role ("you are…", "act as…", "pretend…") without limits ("no rules", "unfiltered", "never refuses").
  new RegExp(
    `\\b(you are|you're|act as|acting as|pretend|roleplay|role-play|role play|play the role|behave as|behave like|imagine you|from now on|stay in character|simulation|you will be|you have been)\\b${gap(80)}(\\b(no|without|free of|free from|freed from|not bound by|no longer bound by|ignores?)\\s+(any\\s+|all\\s+|the\\s+|your\\s+|its\\s+|content\\s+|moral\\s+|ethical\\s+|openai's\\s+)*(rules?|restrictions?|limits?|limitations|filters?|polic(y|ies)|guidelines|ethics|morals|censorship|constraints|boundaries|guardrails)|\\b(unrestricted|unfiltered|uncensored|jailbroken|never refuses?|doesn't refuse|does not refuse|won't refuse|without refusing|do anything now|can do anything))`
  ),
  /\b(developer|dev|god|jailbreak|jailbroken|maintenance|unrestricted)\s+mode\b[^\n]{0,60}?\b(ignore|without (any )?filters?|no (rules|restrictions|filters)|unfiltered|uncensored|disable|all policies|no policies)/,
  /\b(jailbreak|jailbroken)\s+(mode|enabled|activated|on)\b/,
  /\bdo anything now\b/,
  /(你现在是|从现在开始|从现在起|现在起|扮演|假装|角色扮演|你将|你是一个)[^。？！\n]{0,24}(没有任何限制|没有限制|不受任何|不受限制|无限制|不受[^。？！\n]{0,6}(约束|限制)|没有[^。？！\n]{0,4}限制|\bdan\b|可以做任何事|不会拒绝)/,
  /(开发者模式|越狱模式|上帝模式|越狱)[^\n]{0,20}(忽略|未经过滤|无过滤|不受|没有限制|不再受|无限制)/
]
// Named jailbreak personas, written in capitals; read on the text before lower-casing.
const personas = /\b(DAN|STAN|DUDE|AIM)\b/
const roleClause = /\b(you are|you're|act as|pretend|roleplay|role-play|from now on|going to be)\b|你现在是|扮演|你将/

const exfiltrationTargets =
  "(system prompt|system message|system instructions|initial prompt|initial instructions|hidden prompt|hidden instructions|original instructions|original prompt|pre-?prompt|secret instructions|developer'?s? instructions|instructions you (were given|received|got)|context window|configuration)"

const exfiltration: ReadonlyArray<RegExp> = [
  new RegExp(
    `\\b(reveal|show|print|repeat|output|display|tell me|read me|read out|give me|share|leak|dump|spell out|quote|write out|copy|paste|expose|disclose|return)\\b${gap(30)}\\b(your|the)\\s+${exfiltrationTargets}`
  ),
  /\bwhat (is|was|are|were) (written in )?your (system prompt|system message|instructions|initial|original|hidden|pre-?prompt|rules|configuration)/,
  /\b(repeat|print|output|copy|quote|reproduce|show)\b( back)?\s+(me\s+)?(all\s+|the\s+)?(words|text|content|everything|lines|messages?)?\s*(above|before (this|my))\b/,
  /\beverything (above|before) (this|my) (line|message|question)/,
  /\b(instructions|prompt|configuration) (you received|you were given) (at|before)/,
  /(输出|显示|告诉我|重复|打印|泄露|透露|给我看|展示|念|读出|发给我)[^。？！\n]{0,12}(系统提示|系统指令|系统消息|初始指令|隐藏指令|提示词|你的指令|你的设定|你收到的指令|你的配置)/,
  /(系统提示|系统指令|初始指令|隐藏指令|你的提示词|你的设定|上面(所有)?的?内容|以上(所有)?的?内容)[^。？！\n]{0,8}(输出|显示|告诉|打印|发给|泄露|给我)/,
  /(重复|打印|输出)(上面|以上)(的)?(所有)?(内容|文字)/
]

const delimiter: ReadonlyArray<RegExp> = [
  /\[(system|sys|inst)\]|<<sys>>|<\|im_start\|>|<\|endoftext\|>|<\|system\|>|<\/?system>|###\s*(system|instructions?)\s*:/,
  /【\s*(系统|系统指令|系统消息|指令)\s*】/,
  /\b(note|message|attention|important note|instructions?)\s+(to|for)\s+(the\s+)?(ai|assistant|llm|model|language model|chatbot)\b/,
  /\battention\s+(ai|llm|assistant|chatbot)\b/,
  /\b(ai|llm|assistant|language model|chatbot)( assistant)?( reading this)?\s*[:：,]\s*(please\s+)?(ignore|disregard|forget|stop|do not|don't|reveal|send|forward|email|output|print)\b/,
  /\bwhen you (read|process|summari[sz]e|see) this\b[^\n]{0,80}\b(ignore|stop following|instead|disregard|reveal)/,
  /(给ai的|致[^。\n]{0,8}ai|ai注意|ai助手[:：])/
]

const decodeAndRun: ReadonlyArray<RegExp> = [
  /\b(decode|decrypt|translate|convert|execute|run)\b[^.\n]{0,60}\b(base64|hex|rot13|encoded|cipher)\b[^\n]{0,40}\b(follow|execute|obey|do what it says|run|carry out|act on|instructions)/,
  /\b(execute|run|follow)\b[^.\n]{0,20}\b(base64|hex|rot13)-?(encoded)?\b/,
  /(解码|解密)[^。\n]{0,30}(执行|照做|遵循|按照)/
]

const families: ReadonlyArray<readonly [Family, ReadonlyArray<RegExp>]> = [
  ["override", override],
  ["roleplay", roleplay],
  ["exfiltration", exfiltration],
  ["delimiter", delimiter]
]

/** The family whose patterns match the normalised `text`, if any (payloads not decoded). */
const readPlain = (raw: string, text: string): Family | undefined => {
  for (const [family, patterns] of families) if (anyMatch(patterns, text)) return family
  if (personas.test(raw) && roleClause.test(text)) return "roleplay"
  return undefined
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** Decoded bytes as text when they are mostly printable UTF-8 (a payload), else undefined. */
const printable = (bytes: Uint8Array): string | undefined => {
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return undefined
  }
  // Binary that happens to be valid UTF-8 has control characters or replacement characters.
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if ((code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) || code === 0xfffd) return undefined
  }
  return text.length >= 8 ? text : undefined
}

const base64Run = /[A-Za-z0-9+/]{16,}={0,2}/g
const hexRun = /\b(?:[0-9a-fA-F]{2}){12,}\b/g

/** Texts hidden in `raw`: base64 and hex runs that decode to text, and the rot13 of the whole when it says rot13. */
export const hiddenTexts = (raw: string): Array<string> => {
  const found: Array<string> = []
  for (const run of raw.match(base64Run) ?? []) {
    const text = printable(Buffer.from(run, "base64"))
    if (text !== undefined) found.push(text)
  }
  for (const run of raw.match(hexRun) ?? []) {
    const text = printable(Buffer.from(run, "hex"))
    if (text !== undefined) found.push(text)
  }
  if (/rot-?13/i.test(raw)) found.push(rot13(raw))
  return found
}

const rot13 = (text: string): string =>
  text.replace(/[a-z]/gi, (c) => {
    const base = c <= "Z" ? 65 : 97
    return String.fromCharCode(((c.charCodeAt(0) - base + 13) % 26) + base)
  })

/**
 * The injection family `raw` shows, if any: its plain text, then what it hides in base64, hex or
 * rot13 (one level deep), then an explicit "decode this and follow it".
 */
export const detect = (raw: string): Family | undefined => {
  const text = normalize(raw)
  const plain = readPlain(raw, text)
  if (plain !== undefined) return plain
  for (const hidden of hiddenTexts(raw)) if (readPlain(hidden, normalize(hidden)) !== undefined) return "encoded"
  return anyMatch(decodeAndRun, text) ? "encoded" : undefined
}
