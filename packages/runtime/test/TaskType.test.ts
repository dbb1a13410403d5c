/**
 * Task-type detection: a table of realistic prompts per type (English and Chinese), the
 * precedence on prompts that carry several signals, its speed, and the classifier model's
 * fallback to the rules when it fails, times out or answers junk.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Stream } from "effect"
import { AiError, LanguageModel, type Response } from "effect/ai"
import { TestClock } from "effect/testing"
import * as CallOptions from "../src/CallOptions.ts"
import * as TaskType from "../src/TaskType.ts"

const longArticle =
  "The city council met on Tuesday to discuss the new transport plan. Residents raised concerns about " +
  "the cost of the tram extension, the loss of parking spaces in the old town and the noise during " +
  "construction. The mayor answered that the plan would cut commuting times by a third and that most of " +
  "the money would come from regional funds. Shop owners asked for compensation during the works, and the " +
  "council agreed to study a fund for them. A final vote is expected next month after a public consultation."
const longChinese =
  "昨天市议会召开会议讨论新的交通规划。居民们对有轨电车延长线的费用、老城区停车位的减少以及施工期间的噪音表示担忧。" +
  "市长回应说，该计划将把通勤时间缩短三分之一，而且大部分资金将来自地区基金。店主们要求在施工期间获得补偿，议会同意研究设立专项基金。" +
  "最终投票预计将在下个月公众咨询结束后进行。"

const table: Record<TaskType.TaskType, ReadonlyArray<string>> = {
  code: [
    "Write a Python function that returns the n-th Fibonacci number using memoization.",
    "Why does this throw?\n```js\nconst x = undefined\nconsole.log(x.length)\n```",
    "Traceback (most recent call last):\n  File \"app.py\", line 12, in <module>\n    main()\nKeyError: 'user'",
    "How do I fix TypeError: Cannot read properties of undefined (reading 'map') in my React component?",
    "SELECT name, COUNT(*) FROM orders GROUP BY name HAVING COUNT(*) > 3 is slow on Postgres, how can I speed it up?",
    'fn main() { let v = vec![1, 2, 3]; println!("{}", v[5]); } panics, why?',
    "请帮我写一段 Python 代码，读取 CSV 文件并统计每列的平均值",
    "我的 Java 程序报错 NullPointerException，怎么调试？",
    "Translate this Python function to Rust:\n```python\ndef add(a, b):\n    return a + b\n```"
  ],
  math: [
    "Solve for x: 3x + 7 = 22",
    "What is 15% of 240?",
    "Compute the integral of x^2 * sin(x) dx",
    "Find the derivative of f(x) = 4x^3 - 2x + 1",
    "A rectangle has an area of 48 and a width of 6. What is its length?",
    "解方程 2x + 5 = 17，求 x 的值",
    "计算 123 × 45 等于多少？",
    "Prove that √2 is irrational."
  ],
  reasoning: [
    "Think step by step: if a bat and a ball cost $1.10 together and the bat costs a dollar more than the ball, what does the ball cost?",
    "Here is a riddle: what has keys but can't open locks?",
    "Prove that there are infinitely many primes.",
    "Why do we have seasons on Earth even though the distance to the Sun barely changes?",
    "What are the pros and cons of remote work for a small startup?",
    "If all bloops are razzies and all razzies are lazzies, are all bloops lazzies?",
    "请一步一步地推理：三个人住店花了30元，后来退回5元，钱去哪了？",
    "这个逻辑题怎么解：甲说乙在说谎，乙说丙在说谎，丙说甲和乙都在说谎。"
  ],
  translation: [
    "Translate 'Where is the train station?' into German.",
    "How do you say 'thank you very much' in Japanese?",
    "What does 'carpe diem' mean in English?",
    "Please translate the following paragraph to Spanish: We are pleased to announce our new office in Madrid.",
    "请把这句话翻译成英文：我今天头很痛，不能去上班。",
    "“谢谢你的帮助”用英文怎么说？",
    "把下面的邮件译成中文：Dear customer, your order has shipped.",
    "Bonjour, comment ça va? in English please"
  ],
  chinese: [
    "你好，今天天气怎么样？",
    "给我推荐几本适合周末读的小说吧",
    "我想去北京旅游三天，有什么好的行程安排？",
    "帮我写一首关于秋天的诗",
    "为什么天空是蓝色的？",
    "周末和朋友一起去爬山，需要准备些什么？"
  ],
  medical: [
    "What is the maximum daily dose of ibuprofen for an adult?",
    "I've had a fever and a sore throat for three days, should I see a doctor?",
    "What are the side effects of metformin?",
    "Can I take paracetamol while pregnant?",
    "My blood pressure reads 150/95 in the morning, is that hypertension?",
    "孩子发烧38.5度，布洛芬的剂量是多少？",
    "最近经常头痛失眠，需要去医院看医生吗？",
    "阿莫西林有什么副作用？"
  ],
  summarisation: [
    `Summarize this article:\n\n${longArticle}`,
    `Please summarise the following in three bullet points.\n${longArticle}`,
    `${longArticle}\n\nTL;DR?`,
    `What are the key points of this text? ${longArticle}`,
    `请总结下面这段新闻：${longChinese}`,
    `${longChinese}\n用三句话概括上文。`
  ],
  chat: [
    "Hi there! How are you today?",
    "Tell me a joke about penguins.",
    "Write a short poem about autumn leaves.",
    "Can you recommend a good sci-fi novel for the weekend?",
    "Summarize our plan for tomorrow.",
    "こんにちは、今日はいい天気ですね。お元気ですか？",
    "Meet me on 2026-12-03 at 10:30 near the station.",
    "Thanks, that was helpful!"
  ]
}

/** Prompts with signals of several types, and words that mean something else elsewhere. */
const tricky: ReadonlyArray<[string, TaskType.TaskType]> = [
  // A translation request about a headache is a translation; Chinese text asking for one, too.
  ["请把“我头痛发烧”翻译成英文", "translation"],
  // Too short to summarise: a plain request.
  ["总结一下", "chinese"],
  ["TL;DR please", "chat"],
  // "rash" and "stroke" alone are not medicine; with a second medical word they are.
  ["That was a rash decision. Why did he make it so quickly?", "reasoning"],
  ["What a stroke of luck!", "chat"],
  ["My son has a rash and a cough since yesterday", "medical"],
  // A medical question with numbers is medical, not math.
  ["Is 2 x 500 mg of paracetamol every 6 hours too much?", "medical"],
  // Code beats math and reasoning.
  ["Write a function that solves 3x + 2 = 11 step by step in Python", "code"],
  // Math beats reasoning.
  ["Solve step by step: 2x + 3 = 11", "math"],
  ["Why is 0.1 + 0.2 not equal to 0.3?", "math"],
  // Dates and times are not arithmetic.
  ["Remind me about the meeting on 03/12/2026", "chat"],
  ["Write a poem in French", "translation"]
]

describe("TaskType.detect", () => {
  for (const [expected, prompts] of Object.entries(table)) {
    for (const prompt of prompts) {
      it(`${expected}: ${prompt.slice(0, 60).replaceAll("\n", " ")}`, () => {
        assert.strictEqual(TaskType.detect(prompt), expected)
      })
    }
  }

  for (const [prompt, expected] of tricky) {
    it(`tricky, ${expected}: ${prompt}`, () => {
      assert.strictEqual(TaskType.detect(prompt), expected)
    })
  }

  it("takes microseconds for a few KB of text", () => {
    const prompts = Object.values(table).flat()
    const text = `${longArticle.repeat(8)} tell me more`
    const start = performance.now()
    for (let i = 0; i < 1_000; i++) {
      TaskType.detect(text)
      TaskType.detect(prompts[i % prompts.length] ?? "")
    }
    const perCall = ((performance.now() - start) * 1_000) / 2_000
    assert.isBelow(perCall, 200, `${perCall.toFixed(1)} µs per detection`)
  })

  it("reads the head and tail of a very long prompt", () => {
    const filler = "lorem ipsum dolor sit amet ".repeat(4_000)
    assert.strictEqual(TaskType.detect(`${filler}\n\`\`\`ts\nconst a = 1\n\`\`\``), "code")
    assert.strictEqual(TaskType.detect(`Summarise this: ${filler}`), "summarisation")
  })
})

const finish: Response.FinishPartEncoded = {
  type: "finish",
  reason: "stop",
  usage: {
    inputTokens: { uncached: 10, total: 10, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: 1, text: 1, reasoning: 0 }
  }
}

/** A classifier model that answers with `answer`, recording the token caps it got. */
const classifier = (answer: Effect.Effect<string, AiError.AiError>) =>
  Effect.gen(function* () {
    const caps: Array<number | undefined> = []
    const model = yield* LanguageModel.make({
      generateText: () =>
        Effect.gen(function* () {
          caps.push((yield* CallOptions.CallOptions).maxTokens)
          return [{ type: "text", text: yield* answer }, finish]
        }),
      streamText: () => Stream.empty
    })
    return { model, caps }
  })

const timeout = { timeout: Duration.seconds(2) }

describe("TaskType.classify", () => {
  it.effect("takes the model's answer when it names a type, with a tiny token cap", () =>
    Effect.gen(function* () {
      const { model, caps } = yield* classifier(Effect.succeed(" Medical.\n"))
      assert.strictEqual(yield* TaskType.classify(model, "hello there", timeout), "medical")
      assert.deepStrictEqual(caps, [8])
      const spelled = yield* classifier(Effect.succeed("Summarization"))
      assert.strictEqual(yield* TaskType.classify(spelled.model, "hello", timeout), "summarisation")
    })
  )

  it.effect("falls back to the rules on an answer that is not a type", () =>
    Effect.gen(function* () {
      const { model } = yield* classifier(Effect.succeed("I think this is about programming"))
      assert.strictEqual(yield* TaskType.classify(model, "Solve for x: 2x + 1 = 9", timeout), "math")
    })
  )

  it.effect("falls back to the rules when the call fails", () =>
    Effect.gen(function* () {
      const failure = AiError.make({
        module: "test",
        method: "generateText",
        reason: new AiError.InternalProviderError({ description: "boom" })
      })
      const { model } = yield* classifier(Effect.fail(failure))
      assert.strictEqual(yield* TaskType.classify(model, "你好，今天过得怎么样？", timeout), "chinese")
    })
  )

  it.effect("falls back to the rules when the model does not answer in time", () =>
    Effect.gen(function* () {
      const { model } = yield* classifier(Effect.as(Effect.sleep(Duration.seconds(30)), "code"))
      const fiber = yield* Effect.forkChild(TaskType.classify(model, "What is the dosage of aspirin?", timeout))
      yield* TestClock.adjust(Duration.seconds(1))
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust(Duration.seconds(1))
      assert.strictEqual(yield* Fiber.join(fiber), "medical")
    })
  )
})
