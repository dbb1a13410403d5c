/**
 * One model's circuit breaker, as a synchronous state machine over times read from the caller's
 * `Clock` (resilience4j's count-based and rate-based triggers, Envoy's growing ejection time).
 *
 * - closed → open: `consecutiveFailures` counted failures in a row, or a failure ratio of at
 *   least `failureRatio` over the rolling window once it holds `minRequests` counted calls.
 * - open → half-open: when the open period ends. The period is `openBaseMs × 2^(level-1)`, capped
 *   at `openMaxMs`, where `level` counts the openings since the breaker last closed.
 * - half-open: at most `halfOpenProbes` trial calls in flight (a slot whose outcome never comes
 *   back is freed after `probeTimeoutMs`); `halfOpenProbes` successes close it, one failure
 *   reopens it one level up.
 */
import { RollingCounts } from "./rolling.ts"

/** A breaker's state. */
export type Circuit = "closed" | "open" | "half_open"

/** How a breaker decides. */
export interface BreakerSettings {
  readonly windowMs: number
  readonly failureRatio: number
  readonly minRequests: number
  readonly consecutiveFailures: number
  readonly openBaseMs: number
  readonly openMaxMs: number
  readonly halfOpenProbes: number
  readonly probeTimeoutMs: number
}

/** What one process tells the others about a breaker: the newest record (by `updatedAt`) wins. */
export interface BreakerRecord {
  readonly state: "open" | "closed"
  readonly openUntil: number
  readonly level: number
  readonly updatedAt: number
}

/** What a call's outcome means to the breaker. */
export type Verdict = "success" | "failure" | "neutral"

/** A transition other processes must hear about. */
export type Transition = "opened" | "closed" | undefined

const REQUESTS = 0
const FAILURES = 1

export class CircuitBreaker {
  private state: "closed" | "open" | "half_open" = "closed"
  private openUntil = 0
  private level = 0
  private consecutive = 0
  private trialSuccesses = 0
  private readonly trials: Array<number> = []
  private updatedAt = Number.NEGATIVE_INFINITY
  private readonly counts: RollingCounts
  private readonly settings: BreakerSettings

  constructor(settings: BreakerSettings) {
    this.settings = settings
    this.counts = new RollingCounts(settings.windowMs, 10, 2)
  }

  /** The state at `now` (an open breaker whose period ended is half-open). */
  circuit(now: number): Circuit {
    if (this.state === "open" && now >= this.openUntil) this.halfOpen()
    return this.state
  }

  /** Whether a call may go now; in half-open, taking a trial slot. */
  admit(now: number): boolean {
    const circuit = this.circuit(now)
    if (circuit === "closed") return true
    if (circuit === "open") return false
    while (this.trials.length > 0 && (this.trials[0] ?? now) + this.settings.probeTimeoutMs <= now) this.trials.shift()
    if (this.trials.length >= this.settings.halfOpenProbes) return false
    this.trials.push(now)
    return true
  }

  /** Feeds a call's outcome; tells a transition to open or closed. */
  record(now: number, verdict: Verdict): Transition {
    const circuit = this.circuit(now)
    if (circuit === "open") return undefined
    if (circuit === "half_open") {
      // Only outcomes of admitted trials decide; late answers of calls sent before it opened do not.
      if (this.trials.shift() === undefined || verdict === "neutral") return undefined
      if (verdict === "failure") return this.open(now)
      this.trialSuccesses += 1
      return this.trialSuccesses >= this.settings.halfOpenProbes ? this.close(now) : undefined
    }
    if (verdict === "neutral") return undefined
    this.counts.add(now, REQUESTS)
    if (verdict === "success") {
      this.consecutive = 0
      return undefined
    }
    this.counts.add(now, FAILURES)
    this.consecutive += 1
    if (this.consecutive >= this.settings.consecutiveFailures) return this.open(now)
    const requests = this.counts.sum(now, REQUESTS)
    if (
      requests >= this.settings.minRequests &&
      this.counts.sum(now, FAILURES) >= this.settings.failureRatio * requests
    ) {
      return this.open(now)
    }
    return undefined
  }

  /** This breaker as other processes should see it. */
  snapshot(): BreakerRecord {
    return {
      state: this.state === "closed" ? "closed" : "open",
      openUntil: this.openUntil,
      level: this.level,
      updatedAt: this.updatedAt
    }
  }

  /** Takes another process's record when it is newer than this breaker's last transition. */
  adopt(record: BreakerRecord, now: number): void {
    // An old opening whose period is over (a process that stopped long ago) says nothing now.
    if (record.updatedAt <= this.updatedAt || (record.state === "open" && record.openUntil <= now)) return
    this.updatedAt = record.updatedAt
    this.level = record.level
    if (record.state === "open") {
      this.openUntil = record.openUntil
      this.state = "open"
      this.trials.length = 0
      this.circuit(now)
    } else {
      this.reset()
    }
  }

  private open(now: number): Transition {
    this.level += 1
    const period = Math.min(this.settings.openMaxMs, this.settings.openBaseMs * 2 ** (this.level - 1))
    this.state = "open"
    this.openUntil = now + period
    this.trials.length = 0
    this.updatedAt = now
    return "opened"
  }

  private halfOpen(): void {
    this.state = "half_open"
    this.trialSuccesses = 0
    this.trials.length = 0
  }

  private close(now: number): Transition {
    this.reset()
    this.updatedAt = now
    return "closed"
  }

  private reset(): void {
    this.state = "closed"
    this.level = 0
    this.openUntil = 0
    this.consecutive = 0
    this.trials.length = 0
    this.counts.reset()
  }
}
