/**
 * A small load generator, run in its own process so that it does not share the benchmark's
 * event loop: `node bin/run-ts.js bench/support/load-generator.ts '<LoadParams JSON>'` prints
 * one line `RESULT <LoadResult JSON>`.
 *
 * - `rate`: open loop. Request i is due at start + i/rate and is sent when due, whether or not
 *   earlier ones have been answered (timers fire about every millisecond, so a due request
 *   waits at most about 1 ms; that lag is reported). Latency is measured from the moment the
 *   request is handed to undici to the last byte of the response body.
 * - `closed`: `connections` loops, each sending its next request when the previous one is
 *   answered (a fallback for saturation when wrk is not installed).
 */
import { Pool } from 'undici';

import { quantileGrid, summarise, type LatencySummary } from './stats.js';

export interface LoadParams {
  readonly origin: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly mode: 'rate' | 'closed';
  /** Requests per second (mode `rate`). */
  readonly rate: number;
  readonly connections: number;
  readonly durationMs: number;
  /** Idempotency-Key prefix; the request number is appended. */
  readonly idPrefix: string;
  /** Requests sent one by one before the measurement (opening connections, warming the JIT); not counted. */
  readonly warmupRequests: number;
}

export interface LoadResult {
  readonly sent: number;
  readonly completed: number;
  readonly ok: number;
  readonly statuses: Record<string, number>;
  readonly errors: number;
  readonly firstError: string | null;
  readonly elapsedMs: number;
  readonly requestsPerSecond: number;
  readonly latency: LatencySummary;
  /** Latency quantiles at every 0.1 % (see stats.ts), for merging runs. */
  readonly grid: number[];
  /** How late requests were sent relative to their schedule (mode `rate`). */
  readonly scheduleLag: LatencySummary | null;
}

const DRAIN_TIMEOUT_MS = 10_000;

async function run(params: LoadParams): Promise<LoadResult> {
  const pool = new Pool(params.origin, { connections: params.connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 5_000, bodyTimeout: 5_000 });
  const latencies: number[] = [];
  const lags: number[] = [];
  const statuses: Record<string, number> = {};
  let sent = 0;
  let completed = 0;
  let ok = 0;
  let errors = 0;
  let firstError: string | null = null;

  const send = async (n: number): Promise<void> => {
    const started = performance.now();
    try {
      const response = await pool.request({
        method: 'POST',
        path: params.path,
        headers: { ...params.headers, 'idempotency-key': `${params.idPrefix}-${n}` },
        body: params.body,
      });
      await response.body.arrayBuffer();
      latencies.push(performance.now() - started);
      statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1;
      if (response.statusCode >= 200 && response.statusCode < 300) ok++;
    } catch (error) {
      errors++;
      firstError ??= error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    } finally {
      completed++;
    }
  };

  for (let i = 0; i < params.warmupRequests; i++) {
    const response = await pool.request({ method: 'POST', path: params.path, headers: { ...params.headers, 'idempotency-key': `${params.idPrefix}-warm-${i}` }, body: params.body });
    await response.body.arrayBuffer();
  }

  const start = performance.now();
  if (params.mode === 'rate') {
    const interval = 1000 / params.rate;
    const total = Math.round((params.rate * params.durationMs) / 1000);
    while (sent < total) {
      const now = performance.now();
      const due = Math.min(total, Math.floor((now - start) / interval) + 1);
      while (sent < due) {
        lags.push(performance.now() - (start + sent * interval));
        void send(sent++);
      }
      const next = start + sent * interval;
      await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    }
    const drainDeadline = performance.now() + DRAIN_TIMEOUT_MS;
    while (completed < sent && performance.now() < drainDeadline) await new Promise((r) => setTimeout(r, 5));
  } else {
    const deadline = start + params.durationMs;
    const loop = async () => {
      while (performance.now() < deadline) await send(sent++);
    };
    await Promise.all(Array.from({ length: params.connections }, loop));
  }
  const elapsedMs = performance.now() - start;
  await pool.destroy();
  return {
    sent,
    completed,
    ok,
    statuses,
    errors,
    firstError,
    elapsedMs,
    requestsPerSecond: (completed / elapsedMs) * 1000,
    latency: summarise(latencies),
    grid: quantileGrid(latencies),
    scheduleLag: params.mode === 'rate' ? summarise(lags) : null,
  };
}

if (process.argv[1]?.endsWith('load-generator.ts')) {
  const text = process.argv[2];
  if (text === undefined) throw new Error("usage: load-generator.ts '<LoadParams JSON>'");
  const result = await run(JSON.parse(text) as LoadParams);
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}
