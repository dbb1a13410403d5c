/**
 * The medical safety check of a user's message, English and Chinese, with three outcomes:
 * - `escalate` (`medical_emergency`): an emergency in the message — chest pain, stroke signs
 *   (FAST: face drooping, arm weakness, speech), suicidal intent, an overdose taken, severe
 *   bleeding, anaphylaxis, collapse, a long seizure, a thunderclap headache. The answer is the
 *   fixed urgent-care guidance with the configured emergency number; no model is called.
 * - `refuse`: what a model must not do — write a prescription (`medical_prescription`; China's
 *   rules on internet diagnosis forbid AI-generated prescriptions), stand in for a physician
 *   (`medical_diagnosis`), or give dangerous dosing (`medical_dosage`: lethal-dose questions, a
 *   dose over the table's maximum). The answer is a fixed refusal; no model is called.
 * - `disclaim` (`medical_general`): general health information. The model answers, and a fixed
 *   disclaimer follows its answer.
 * Suicidal intent is read before dosing questions, so "how many pills to never wake up" escalates.
 */
import * as Dosage from "./dosage.ts"
import { anyMatch, isChinese, normalize } from "./safetyText.ts"

/** The medical decision on a message. */
export interface Finding {
  readonly action: "escalate" | "refuse" | "disclaim"
  readonly category:
    | "medical_emergency"
    | "medical_prescription"
    | "medical_diagnosis"
    | "medical_dosage"
    | "medical_general"
}

const suicidal: ReadonlyArray<RegExp> = [
  /\b(kill|hurt|harm) (myself|my self)\b|\bsuicid|\bend(ing)? (my|his|her) (own )?life\b|\btake my (own )?life\b|\bdon'?t want to (live|be alive)\b|\bwant to die\b|\bbetter off dead\b|\bnever wake up\b/,
  /自杀|不想活|结束(自己的|我的)?生命|轻生|想死|一睡不醒|活着没意思|活不下去/
]

const lethalDose: ReadonlyArray<RegExp> = [
  /\b(lethal|fatal|deadly|toxic) (dose|amount|quantity)\b|\bhow (much|many)\b[^.?!]{0,40}\b(to overdose|to die|would kill|is lethal|is fatal)\b/,
  /致死(量|剂量)?|致命(剂量|量)|吃多少[^。？！]{0,10}(会死|致死|能死)/
]

const emergency: ReadonlyArray<RegExp> = [
  // Chest pain and heart attack.
  /\b(crushing|severe|sudden|bad) (chest )?pain\b[^.?!]{0,40}\b(chest|arm|jaw)\b|\bchest (pain|tightness|pressure)\b|\bpain (spreading|radiating) to (my |the |his |her )?(left )?(arm|jaw)/,
  /\b(i'?m|i am|i think i'?m|he'?s|she'?s|is) having a (heart attack|stroke)\b|\b(heart attack|stroke) (symptoms )?(right now|now)\b/,
  // Stroke: face, arm, speech.
  /\b(face|mouth) (is )?(drooping|droops|drooped)\b|\bdrooping (face|mouth)\b|\bslurred speech\b|\bspeech is slurred\b|\b(can'?t|cannot|can not|unable to) (lift|raise|move) (his|her|my|their) (right |left )?(arm|leg)\b|\bsudden(ly)? (weakness|numbness|confusion)\b|\btalking nonsense\b/,
  // Overdose taken, poisoning.
  /\boverdos(e|ed|ing)\b|\bswallowed (a|the|an entire|a whole|all( of)?( the| my)?) [^.?!]{0,20}(pills|tablets|bottle|medicine)\b|\btook (\d{2,}|twenty|thirty|forty|fifty|a (whole|entire) (bottle|pack)|all (of )?(my|the)) [^.?!]{0,20}(pills|tablets|capsules)?/,
  // Bleeding.
  /\bbleeding\b[^.?!]{0,30}\b(won'?t stop|not stopping|doesn'?t stop|spurting|heavily)\b|\b(severe|heavy|uncontrolled|massive) bleeding\b|\bspurting\b/,
  // Anaphylaxis and breathing.
  /\banaphyla|\bthroat (is )?(swelling|closing)\b|\b(can'?t|cannot) breathe\b|\bnot breathing\b|\bstopped breathing\b/,
  // Collapse, seizures, thunderclap headache.
  /\bcollapsed\b|\bunconscious\b|\bunresponsive\b|\bseizure\b[^.?!]{0,40}\b(minutes|won'?t stop|lasting|lasted)\b|\bconvulsing\b|\bworst headache of (my|his|her) life\b|\bthunderclap\b/,
  /胸(口|部)?[^。？！]{0,4}(剧烈)?(疼|痛|闷)|压榨感|心梗|心肌梗(塞|死)|心脏病(发作|犯了)|(脸|嘴|口角)[^。？！]{0,2}歪|说话含糊|口齿不清|(胳膊|手臂|腿)[^。？！]{0,4}(抬不起来|没力气|无力|不能动)|中风了|突然中风/,
  /误服|吞(了|下)[^。？！]{0,4}(一整?瓶|很多|整瓶)|药物过量|服药过量|吃了[^。？！]{0,4}(二十|三十|四十|五十|\d{2,})[^。？！]{0,2}(片|粒)|打多了/,
  /大出血|血止不住|流血不止|出血不止|喉咙[^。？！]{0,2}(肿|发紧)|喘不上气|呼吸困难|没有呼吸|没呼吸|停止呼吸|晕倒|昏迷|不省人事|抽搐[^。？！]{0,10}(分钟|不停)|最剧烈的头痛|雷劈|过敏性休克|严重过敏/
]

const prescription: ReadonlyArray<RegExp> = [
  /\b(write|issue|give|make|draft|sign)( me| us| him| her)?( out)? (a|an|the|my)? ?(prescription|rx|script)\b|\bprescribe (me|us|him|her|something|some)\b|\bprescription (note|slip)\b|\bwrite an rx\b|\b(need|want) (a|an) (prescription|rx) (from you|written)\b/,
  /(给我|帮我|替我|为我|请)开(一张|个|张|点|些)?[^。？！]{0,12}(处方|药)|处方单|写(个|一张|张)?处方|(给我|帮我|替我)开[\u4e00-\u9fa5]{2,6}(素|林|片|剂|胶囊|丸|泮|仑|酮|平|汀|因|星|嗪)/
]

const physician: ReadonlyArray<RegExp> = [
  /\bdiagnose me\b|\b(definitive|final|definite|certain) diagnosis\b|\bdefinitively diagnose\b|\breplace my (doctor|physician|gp)\b|\binstead of (seeing |going to )?(a|my|the) (doctor|physician)\b|\b(don'?t|won'?t|not) (have to |need to |want to )?(see|go to|visit) (a|my|the) (doctor|physician)\b|\byou are my (doctor|physician) now\b|\b(act|be) (as )?my (doctor|physician)\b/,
  /(给我|帮我|直接|你来|你就)确诊|确诊一下|下(个)?诊断|代替医生|替代医生|不用看医生|不想看医生|你当我的医生|做我的医生/
]

const health: ReadonlyArray<RegExp> = [
  /\b(symptoms?|side effects?|dose|dosage|blood pressure|diabetes|migraines?|headaches?|flu|fever|cough|sunburn|constipation|health|healthy|medicines?|medications?|drugs?|disease|infection|vaccines?|treat|treatment|cure|allerg(y|ies)|cholesterol|pregnan(t|cy)|pain|painkillers?|antibiotics?|doctor|nutrition|diet|insomnia|asthma|cancer|heart|blood sugar|rash|injury|sprain|vitamins?)\b/,
  /症状|副作用|剂量|用量|血压|糖尿病|头痛|偏头痛|流感|感冒|发烧|发热|咳嗽|晒伤|便秘|睡眠|健康|药|疾病|感染|疫苗|治疗|医生|医院|过敏|胆固醇|怀孕|疼痛|营养|失眠|哮喘|癌|心脏|血糖|皮疹|受伤|扭伤|维生素/
]

/** The medical decision on the user's message `raw`, or undefined when it is not medical. */
export const classify = (raw: string, drugs: ReadonlyArray<Dosage.Drug>): Finding | undefined => {
  const text = normalize(raw)
  if (anyMatch(suicidal, text)) return { action: "escalate", category: "medical_emergency" }
  if (anyMatch(lethalDose, text)) return { action: "refuse", category: "medical_dosage" }
  if (anyMatch(emergency, text)) return { action: "escalate", category: "medical_emergency" }
  if (anyMatch(prescription, text)) return { action: "refuse", category: "medical_prescription" }
  if (anyMatch(physician, text)) return { action: "refuse", category: "medical_diagnosis" }
  if (Dosage.check(text, drugs) !== undefined) return { action: "refuse", category: "medical_dosage" }
  if (anyMatch(health, text) || drugs.some((drug) => drug.aliases.some((alias) => text.includes(alias)))) {
    return { action: "disclaim", category: "medical_general" }
  }
  return undefined
}

/** The urgent-care guidance of an escalation, in the message's language. */
export const escalation = (raw: string, emergencyNumber: string): string =>
  isChinese(raw)
    ? `这可能是紧急情况。请立即拨打急救电话 ${emergencyNumber}，或尽快前往最近的急诊。如果有人失去意识、没有呼吸、胸痛、出现中风迹象（口角歪斜、一侧肢体无力、说话含糊）、大量出血、严重过敏或服药过量，请不要等待，现在就拨打 ${emergencyNumber}。如果你有伤害自己的想法，请马上拨打 ${emergencyNumber} 或联系身边可信任的人，你并不孤单。我是AI助手，无法提供急救，请以专业急救人员的指导为准。`
    : `This may be an emergency. Call ${emergencyNumber} now or go to the nearest emergency department. If someone is unconscious, not breathing, has chest pain, shows stroke signs (face drooping, arm weakness, slurred speech), is bleeding heavily, has a severe allergic reaction or has taken an overdose, do not wait: call ${emergencyNumber} immediately. If you are thinking about harming yourself, please call ${emergencyNumber} or reach out to someone you trust right now; you are not alone. I am an AI assistant and cannot provide emergency care; follow the instructions of the emergency services.`

/** The refusal of what a model must not do, in the message's language. */
export const refusal = (raw: string, category: Finding["category"], emergencyNumber: string): string => {
  const zh = isChinese(raw)
  switch (category) {
    case "medical_prescription":
      return zh
        ? "抱歉，我不能开具处方。根据互联网诊疗的相关规定，处方必须由执业医师在诊疗后开具，AI不能生成处方。请咨询医生或前往医院就诊。"
        : "I can't write prescriptions. A prescription must come from a licensed clinician who has assessed you; AI-generated prescriptions are not allowed. Please contact a doctor or a pharmacist."
    case "medical_diagnosis":
      return zh
        ? "抱歉，我不能代替医生做出诊断。我可以提供一般性的健康信息，但确诊需要执业医师面诊和必要的检查。请尽快就医。"
        : "I can't replace a doctor or give a definitive diagnosis. I can share general health information, but a diagnosis needs a clinician's examination and tests. Please see a doctor."
    default:
      return zh
        ? `抱歉，我不能提供可能造成危险的用药剂量信息。请严格按照说明书或医生、药师的指导用药。如果有人已经服药过量，请立即拨打 ${emergencyNumber}。`
        : `I can't give dosing information that could be dangerous. Follow the label or your doctor's or pharmacist's instructions. If someone has taken too much, call ${emergencyNumber} now.`
  }
}

/** The disclaimer that follows an answer with general health information, in the message's language. */
export const disclaimer = (raw: string): string =>
  isChinese(raw)
    ? "\n\n免责声明：以上内容仅为一般性健康信息，不能替代专业医疗建议、诊断或治疗。如有疑问，请咨询医生。"
    : "\n\nDisclaimer: this is general health information, not medical advice, diagnosis or treatment. Please consult a doctor or pharmacist about your situation."
