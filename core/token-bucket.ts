/**
 * A token bucket: at most `burst` at once, refilled at `ratePerSecond`. Time is passed in
 * (monotonic milliseconds), so it is pure and tests drive it. What a data plane allows a
 * stranger per second (records of refusals, lookups of keys it cannot tell from forged ones).
 */
export class TokenBucket {
  private tokens: number;
  private refilledAtMs: number | null = null;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  /** Takes one token if there is one; false when the bucket is empty. */
  take(nowMs: number): boolean {
    if (this.refilledAtMs !== null) this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.refilledAtMs) / 1000) * this.ratePerSecond);
    this.refilledAtMs = nowMs;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
