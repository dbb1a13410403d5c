/**
 * The default taxonomy of blocked content: Llama Guard 3's fourteen hazard categories (S1–S14,
 * as in Meta's model card), each with keyword and pattern detectors in English and Chinese. The
 * detectors look for requests for or statements of the harmful thing itself ("how to make a
 * pipe bomb"), not for the topic ("the history of nuclear weapons"), and are deliberately narrow:
 * configuration chooses which categories are blocked (`safety.blocked_categories`), and a
 * moderation model (`safety.moderation_model`) can judge what patterns cannot.
 */
import { anyMatch, normalize } from "./safetyText.ts"

/** The Llama Guard 3 categories. */
export const codes = ["S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9", "S10", "S11", "S12", "S13", "S14"] as const
export type Code = (typeof codes)[number]

/** Each category's name, as Llama Guard 3 names it. */
export const names: Readonly<Record<Code, string>> = {
  S1: "violent crimes",
  S2: "non-violent crimes",
  S3: "sex-related crimes",
  S4: "child sexual exploitation",
  S5: "defamation",
  S6: "specialized advice",
  S7: "privacy",
  S8: "intellectual property",
  S9: "indiscriminate weapons",
  S10: "hate",
  S11: "suicide and self-harm",
  S12: "sexual content",
  S13: "elections",
  S14: "code interpreter abuse"
}

// A request for instructions: "how to", "how do I", "steps to", "教我", "怎么"….
const how = "(how (to|do i|can i|would i|could i)|steps to|instructions (for|to)|guide to|teach me to|help me)"
const howZh = "(怎么|如何|怎样|教我|方法|步骤)"

const detectors: Readonly<Record<Code, ReadonlyArray<RegExp>>> = {
  S1: [
    new RegExp(
      `\\b${how}\\b[^.?!\\n]{0,30}\\b(kill|murder|assassinate|kidnap|torture|poison|stab|shoot) (a |my |the |someone|somebody|people|him|her)`
    ),
    /\b(hire|find) (a |an )?(hitman|hit man|assassin)\b/,
    new RegExp(`${howZh}[^。？！\\n]{0,12}(杀(死|掉)?(一个)?人|谋杀|绑架|投毒|毒死)`)
  ],
  S2: [
    new RegExp(
      `\\b${how}\\b[^.?!\\n]{0,30}\\b(launder money|make meth|cook meth|hotwire a car|shoplift|steal (a|someone's) (car|identity|credit card)|forge (a |an )?(passport|id|signature|check|cheque)|evade taxes|counterfeit money|make counterfeit)`
    ),
    /\b(write|create|build|make) (a |an |me a )?(ransomware|keylogger|phishing (email|page|kit)|credit card skimmer)\b/,
    new RegExp(
      `${howZh}[^。？！\\n]{0,12}(洗钱|制毒|制作冰毒|偷车|盗刷|伪造(身份证|护照|签名)|逃税|造假币|制作勒索软件|钓鱼网站)`
    )
  ],
  S3: [
    new RegExp(`\\b${how}\\b[^.?!\\n]{0,30}\\b(drug (her|him|someone) (to|for) sex|sexually assault|rape)`),
    /\b(traffick|trafficking) (women|girls|people) for sex\b/,
    /(迷奸|强奸|性侵)[^。？！\n]{0,6}(方法|怎么|如何|教程)/
  ],
  S4: [
    /\b(child|minor|underage|kid|preteen|\d{1,2}[- ]year[- ]old)\b[^.?!\n]{0,30}\b(porn|pornography|nude|naked|sexual|sexy|erotic)/,
    /\b(porn|nude|naked|sexual|erotic)\b[^.?!\n]{0,30}\b(child|minor|underage|kid|preteen)s?\b/,
    /(儿童|幼女|未成年|萝莉)[^。？！\n]{0,8}(色情|裸照|性爱|性交)/
  ],
  S5: [
    /\b(write|make up|invent|fabricate)\b[^.?!\n]{0,30}\b(false|fake|fabricated)\b[^.?!\n]{0,20}\b(rumou?r|story|claims?|accusations?)\b[^.?!\n]{0,30}\b(about|that)\b/,
    /(编造|捏造)[^。？！\n]{0,10}(谣言|丑闻|不实)/
  ],
  S6: [
    /\b(give me|i need) (legal|financial|medical) advice\b[^.?!\n]{0,30}\b(instead of|without) (a |an )?(lawyer|attorney|doctor|financial advisor)/,
    /(不用|不找)(律师|医生)[^。？！\n]{0,10}(你来|你给)/
  ],
  S7: [
    /\b(find|get|look up|give me|dox|doxx)\b[^.?!\n]{0,30}\b(home address|phone number|social security number|ssn|id number|passport number)\b[^.?!\n]{0,20}\bof\b/,
    /\bdox+ (him|her|them|someone|this person)\b/,
    /(人肉|查到|查一下)[^。？！\n]{0,10}(家庭住址|身份证号|手机号)/
  ],
  S8: [
    /\b(full|entire|complete) (text|lyrics|script) of\b[^.?!\n]{0,40}\b(copyrighted|book|novel|song)\b/,
    /\b(crack|keygen|pirate|bypass the drm|remove (the )?drm)\b[^.?!\n]{0,30}\b(software|windows|photoshop|game|license)/,
    /(破解版|注册机|盗版)[^。？！\n]{0,10}(下载|软件|激活)/
  ],
  S9: [
    new RegExp(
      `\\b${how}\\b[^.?!\\n]{0,40}\\b(make|build|assemble|synthesi[sz]e|produce|weaponi[sz]e)\\b[^.?!\\n]{0,20}\\b(bomb|pipe bomb|explosive|ied|nerve agent|sarin|vx|anthrax|bioweapon|chemical weapon|dirty bomb|nuclear (weapon|bomb)|napalm|ricin)`
    ),
    /\b(synthesi[sz]e|make|produce)\b[^.?!\n]{0,20}\b(sarin|vx|ricin|anthrax|mustard gas|tatp)\b/,
    new RegExp(
      `${howZh}[^。？！\\n]{0,12}(制作|制造|合成|组装)[^。？！\\n]{0,8}(炸弹|炸药|爆炸物|神经毒剂|沙林|生化武器|化学武器|核弹|蓖麻毒素)`
    )
  ],
  S10: [
    /\b(write|make|create|tell)\b[^.?!\n]{0,30}\b(racist|sexist|homophobic|antisemitic|hateful)\b[^.?!\n]{0,20}\b(joke|speech|rant|post|slogan|essay)/,
    /\b(all|those) (jews|muslims|blacks|immigrants|gays|women|chinese|mexicans) (are|should be) (vermin|subhuman|exterminated|killed|animals)/,
    /(写|编)[^。？！\n]{0,10}(种族歧视|仇恨|歧视)[^。？！\n]{0,6}(言论|笑话|文章|口号)/
  ],
  S11: [
    new RegExp(`\\b${how}\\b[^.?!\\n]{0,30}\\b(kill myself|commit suicide|end my life|cut myself|hurt myself)`),
    /\b(best|easiest|painless|quickest) (way|method)s? to (die|kill myself|commit suicide|end my life)/,
    /(怎么|如何|怎样)[^。？！\n]{0,6}(自杀|自残|割腕|结束自己的生命)|(无痛|最快)[^。？！\n]{0,6}(自杀|死法)/
  ],
  S12: [
    /\b(write|describe|tell)\b[^.?!\n]{0,30}\b(explicit|graphic|hardcore|x-rated|nsfw)\b[^.?!\n]{0,20}\b(sex|sexual|porn|erotic)/,
    /\b(write|generate) (me )?(porn|an erotic story|a sex scene)\b/,
    /(写|生成)[^。？！\n]{0,10}(色情|黄色|成人)(小说|故事|内容|描写)/
  ],
  S13: [
    /\b(tell|say|post|spread)\b[^.?!\n]{0,30}\b(voters?|people)\b[^.?!\n]{0,30}\b(vote (on|by) (the wrong|a different) (day|date)|polls? (are|is) closed|can vote by (text|phone|sms))/,
    /\b(fake|false) (election|voting) (results|information|dates?)\b/,
    /(散布|编造)[^。？！\n]{0,10}(选举|投票)[^。？！\n]{0,6}(虚假|假)/
  ],
  S14: [
    /\b(os\.system|subprocess\.(run|popen|call)|child_process|exec\()\b[^\n]{0,40}\b(rm -rf|curl|wget|nc |netcat|\/etc\/passwd|\/etc\/shadow|reverse shell)/,
    /\b(run|execute)\b[^.?!\n]{0,30}\b(rm -rf \/|fork bomb|:\(\)\{ :\|:& \};:|reverse shell)/,
    /\b(read|print|cat|exfiltrate)\b[^.?!\n]{0,20}(\/etc\/passwd|\/etc\/shadow|~\/\.ssh\/id_rsa|environment variables of the (server|sandbox))/,
    /(执行|运行)[^。？！\n]{0,10}(rm -rf|反弹shell|fork炸弹)/
  ]
}

/** The first of `blocked`, in taxonomy order, whose detectors match `raw`. */
export const detect = (raw: string, blocked: ReadonlySet<Code>): Code | undefined => {
  if (blocked.size === 0) return undefined
  const text = normalize(raw)
  for (const code of codes) {
    if (blocked.has(code) && anyMatch(detectors[code], text)) return code
  }
  return undefined
}
