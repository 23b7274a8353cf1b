/**
 * Load for bench:leases, from this process: `POST /v1/charges` through data planes with a
 * vault key, amounts $1-$10 from a seeded generator.
 * - openLoop: a fixed schedule (request i due at start + i/rate), sent when due whether or not
 *   earlier calls have been answered, round-robin over the data planes.
 * - saturate: `perPlane` callers per data plane, each sending its next call when the previous
 *   one is answered, until no call has been accepted for `quietMs`.
 * Latency is client-measured: from handing the request to undici to the last byte of the answer.
 */
import { Pool } from 'undici';
import { quantile } from '../support/stats.js';

export interface CallOutcome {
  /** ms since the run started, when the call was sent. */
  readonly sentAtMs: number;
  readonly latencyMs: number;
  /** 0 when the connection failed. */
  readonly status: number;
  readonly code: string | null;
  readonly cents: number;
}

/** Deterministic amounts in cents, $1.00 to $10.00. */
export function amountGenerator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return 100 + ((state >>> 8) % 901);
  };
}

export class Caller {
  private readonly pool: Pool;

  constructor(
    readonly origin: string,
    private readonly vaultKey: string,
    private readonly label: string,
    connections: number,
  ) {
    this.pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 10_000, bodyTimeout: 10_000 });
  }

  async charge(cents: number, runStart: number): Promise<CallOutcome> {
    const body = `amount=${cents}&currency=usd&source=tok_visa&description=${encodeURIComponent(this.label)}`;
    const sent = performance.now();
    try {
      const response = await this.pool.request({
        method: 'POST',
        path: '/v1/charges',
        headers: { authorization: `Bearer ${this.vaultKey}`, 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      await response.body.arrayBuffer();
      const code = response.headers['keybrake-error'];
      return { sentAtMs: sent - runStart, latencyMs: performance.now() - sent, status: response.statusCode, code: typeof code === 'string' ? code : null, cents };
    } catch {
      return { sentAtMs: sent - runStart, latencyMs: performance.now() - sent, status: 0, code: 'connection_failed', cents };
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export interface OpenLoopOptions {
  readonly callers: readonly Caller[];
  readonly rate: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly seed: number;
  /** Called (synchronously, from the schedule loop) when the warm-up ends and when the measurement ends. */
  readonly onMeasureStart?: () => void;
  readonly onMeasureEnd?: () => void;
}

export interface OpenLoopResult {
  readonly outcomes: readonly CallOutcome[];
  /** Outcomes of calls sent during the measurement window. */
  readonly measured: readonly CallOutcome[];
  /** How late calls were sent relative to their schedule (p99, max), in ms. */
  readonly lagP99Ms: number;
  readonly lagMaxMs: number;
  /** Calls still unanswered when the drain timeout hit (should be 0). */
  readonly unanswered: number;
}

const DRAIN_TIMEOUT_MS = 15_000;

export async function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const { callers, rate, warmupMs, measureMs } = options;
  const total = Math.round((rate * (warmupMs + measureMs)) / 1000);
  const warmupCalls = Math.round((rate * warmupMs) / 1000);
  const intervalMs = 1000 / rate;
  const nextAmount = amountGenerator(options.seed);
  const outcomes: CallOutcome[] = [];
  const measured: CallOutcome[] = [];
  const lags: number[] = [];
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();
  let next = 0;
  let measureStarted = false;
  // Bounded: `next` grows to `total`; each pass sends every call that is due, then sleeps until the next.
  while (next < total) {
    const now = performance.now();
    while (next < total && start + next * intervalMs <= now) {
      if (next === warmupCalls && !measureStarted) {
        measureStarted = true;
        options.onMeasureStart?.();
      }
      lags.push(now - (start + next * intervalMs));
      const caller = callers[next % callers.length]!;
      const inWindow = next >= warmupCalls;
      const call = caller.charge(nextAmount(), start).then((outcome) => {
        outcomes.push(outcome);
        if (inWindow) measured.push(outcome);
      });
      inFlight.add(call);
      void call.finally(() => inFlight.delete(call));
      next++;
    }
    if (next < total) await sleep(Math.max(0, start + next * intervalMs - performance.now()));
  }
  // The schedule of the window is over: this is where the window's counters stop.
  await sleep(Math.max(0, start + total * intervalMs - performance.now()));
  options.onMeasureEnd?.();
  const drained = await Promise.race([Promise.all(inFlight).then(() => true), sleep(DRAIN_TIMEOUT_MS).then(() => false)]);
  const unanswered = drained ? 0 : inFlight.size;
  lags.sort((a, b) => a - b);
  return { outcomes, measured, lagP99Ms: quantile(lags, 0.99), lagMaxMs: lags.at(-1) ?? 0, unanswered };
}

export interface SaturateOptions {
  readonly callers: readonly Caller[];
  readonly perCaller: number;
  readonly seed: number;
  /** Stop once no call has been accepted (200) for this long, with refusals coming in. */
  readonly quietMs: number;
  /** Hard bound on the whole run. */
  readonly maxMs: number;
}

export interface SaturateResult {
  readonly outcomes: readonly CallOutcome[];
  readonly elapsedMs: number;
  /** True when the run ended because of `maxMs`, not because the cap was exhausted. */
  readonly hitMax: boolean;
}

export async function saturate(options: SaturateOptions): Promise<SaturateResult> {
  const nextAmount = amountGenerator(options.seed);
  const outcomes: CallOutcome[] = [];
  const start = performance.now();
  let lastAccepted = start;
  let refusedSinceAccept = 0;
  let stop = false;
  let hitMax = false;
  const workers = options.callers.flatMap((caller) =>
    Array.from({ length: options.perCaller }, async () => {
      // Bounded by `stop`, which the watchdog below sets within maxMs.
      while (!stop) {
        const outcome = await caller.charge(nextAmount(), start);
        outcomes.push(outcome);
        if (outcome.status === 200) {
          lastAccepted = performance.now();
          refusedSinceAccept = 0;
        } else {
          refusedSinceAccept++;
          // Do not spin on a fast error answer.
          if (outcome.status !== 429) await sleep(10);
        }
      }
    }),
  );
  const watchdog = (async () => {
    while (!stop) {
      await sleep(50);
      const now = performance.now();
      if (now - lastAccepted >= options.quietMs && refusedSinceAccept > 0) stop = true;
      if (now - start >= options.maxMs) {
        hitMax = true;
        stop = true;
      }
    }
  })();
  await Promise.all([...workers, watchdog]);
  return { outcomes, elapsedMs: performance.now() - start, hitMax };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
