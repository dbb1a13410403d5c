/**
 * Rolling windows over time, in fixed buckets: counters (the breaker's failure ratio, the retry
 * budget) and the health window of one model (counts plus latency samples). Plain synchronous
 * code over numbers the caller reads from its `Clock`: these sit on the router's hot path.
 */

/** Several counters summed over the last `windowMs`, in `buckets` slices. */
export class RollingCounts {
  readonly windowMs: number
  private readonly buckets: number
  private readonly fields: number
  private readonly bucketMs: number
  private readonly starts: Float64Array
  private readonly values: Float64Array

  constructor(windowMs: number, buckets: number, fields: number) {
    this.windowMs = windowMs
    this.buckets = buckets
    this.fields = fields
    this.bucketMs = Math.max(1, Math.ceil(windowMs / buckets))
    this.starts = new Float64Array(buckets).fill(Number.NEGATIVE_INFINITY)
    this.values = new Float64Array(buckets * fields)
  }

  /** Adds `amount` to counter `field` at time `now`. */
  add(now: number, field: number, amount = 1): void {
    const start = Math.floor(now / this.bucketMs) * this.bucketMs
    const index = Math.floor(now / this.bucketMs) % this.buckets
    if (this.starts[index] !== start) {
      this.starts[index] = start
      this.values.fill(0, index * this.fields, (index + 1) * this.fields)
    }
    this.values[index * this.fields + field] = (this.values[index * this.fields + field] ?? 0) + amount
  }

  /** Counter `field` over the window ending at `now`. */
  sum(now: number, field: number): number {
    const oldest = now - this.windowMs
    let total = 0
    for (let index = 0; index < this.buckets; index++) {
      const start = this.starts[index] ?? Number.NEGATIVE_INFINITY
      if (start + this.bucketMs > oldest && start <= now) total += this.values[index * this.fields + field] ?? 0
    }
    return total
  }

  /** Forgets everything. */
  reset(): void {
    this.starts.fill(Number.NEGATIVE_INFINITY)
    this.values.fill(0)
  }
}

/** Most latency samples kept per bucket: enough for p95, bounded under any load. */
const samplesPerBucket = 256

interface SampleBucket {
  start: number
  requests: number
  failures: number
  latency: Array<number>
  ttft: Array<number>
  /** Next slot to overwrite once a sample list is full (a ring, so the newest samples stay). */
  latencyNext: number
  ttftNext: number
}

/** What a health window holds; also what a process shares with the others. */
export interface WindowSummary {
  readonly requests: number
  readonly failures: number
  /** Latency samples in ms, sorted ascending. */
  readonly latency: ReadonlyArray<number>
  /** Time-to-first-token samples in ms, sorted ascending. */
  readonly ttft: ReadonlyArray<number>
}

const push = (samples: Array<number>, next: number, value: number): number => {
  if (samples.length < samplesPerBucket) {
    samples.push(value)
    return next
  }
  samples[next] = value
  return (next + 1) % samplesPerBucket
}

/** One model's calls over the last `windowMs`: requests, failures, latency and TTFT samples. */
export class HealthWindow {
  readonly windowMs: number
  private readonly buckets: number
  private readonly bucketMs: number
  private readonly slots: Array<SampleBucket | undefined>

  constructor(windowMs: number, buckets: number) {
    this.windowMs = windowMs
    this.buckets = buckets
    this.bucketMs = Math.max(1, Math.ceil(windowMs / buckets))
    this.slots = Array.from({ length: buckets }, () => undefined)
  }

  /** Adds one call: `failed` when it counts against the model; samples when known. */
  add(now: number, failed: boolean, latencyMs: number | undefined, ttftMs: number | undefined): void {
    const start = Math.floor(now / this.bucketMs) * this.bucketMs
    const index = Math.floor(now / this.bucketMs) % this.buckets
    let bucket = this.slots[index]
    if (bucket === undefined || bucket.start !== start) {
      bucket = { start, requests: 0, failures: 0, latency: [], ttft: [], latencyNext: 0, ttftNext: 0 }
      this.slots[index] = bucket
    }
    bucket.requests += 1
    if (failed) bucket.failures += 1
    if (latencyMs !== undefined) bucket.latencyNext = push(bucket.latency, bucket.latencyNext, latencyMs)
    if (ttftMs !== undefined) bucket.ttftNext = push(bucket.ttft, bucket.ttftNext, ttftMs)
  }

  /** Requests and failures of the window ending at `now`, without the samples (for hot paths). */
  counts(now: number): { readonly requests: number; readonly failures: number } {
    const oldest = now - this.windowMs
    let requests = 0
    let failures = 0
    for (const bucket of this.slots) {
      if (bucket === undefined || bucket.start + this.bucketMs <= oldest || bucket.start > now) continue
      requests += bucket.requests
      failures += bucket.failures
    }
    return { requests, failures }
  }

  /** The window ending at `now`. */
  summary(now: number): WindowSummary {
    const oldest = now - this.windowMs
    let requests = 0
    let failures = 0
    const latency: Array<number> = []
    const ttft: Array<number> = []
    for (const bucket of this.slots) {
      if (bucket === undefined || bucket.start + this.bucketMs <= oldest || bucket.start > now) continue
      requests += bucket.requests
      failures += bucket.failures
      latency.push(...bucket.latency)
      ttft.push(...bucket.ttft)
    }
    return { requests, failures, latency: latency.sort(ascending), ttft: ttft.sort(ascending) }
  }
}

const ascending = (a: number, b: number) => a - b

/** The `q` quantile (0..1) of ascending `sorted` samples, by nearest rank; undefined when empty. */
export const quantile = (sorted: ReadonlyArray<number>, q: number): number | undefined => {
  if (sorted.length === 0) return undefined
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]
}

/** At most `points` evenly spaced samples of ascending `sorted`: what a process shares of its window. */
export const thin = (sorted: ReadonlyArray<number>, points: number): ReadonlyArray<number> => {
  if (sorted.length <= points) return sorted
  return Array.from({ length: points }, (_, i) => sorted[Math.floor(((i + 0.5) * sorted.length) / points)] ?? 0)
}

/** Several summaries as one (this process's window and the ones other processes shared). */
export const merge = (summaries: ReadonlyArray<WindowSummary>): WindowSummary => {
  if (summaries.length === 1 && summaries[0] !== undefined) return summaries[0]
  let requests = 0
  let failures = 0
  const latency: Array<number> = []
  const ttft: Array<number> = []
  for (const summary of summaries) {
    requests += summary.requests
    failures += summary.failures
    latency.push(...summary.latency)
    ttft.push(...summary.ttft)
  }
  return { requests, failures, latency: latency.sort(ascending), ttft: ttft.sort(ascending) }
}
