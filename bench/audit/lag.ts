/**
 * Audit lag through a real data plane: calls at a fixed rate (open loop: call i is sent at
 * start + i/rate whether or not earlier ones were answered), each with a unique Idempotency-Key
 * (recorded as `idempotency_key`), while a poller asks the admin API for the label's newest
 * records every 50 ms. Lag of a call = when the poller first saw its record − when the client
 * had the answer. Both instants come from this process's performance.now().
 *
 * The poller's query: `GET /audit?label=…&limit=1000&since=…`, following `next_cursor`. A record
 * is stamped (`ts`) with the time its call *started* at the data plane, but becomes visible in
 * sequence order, when the call ended: "newer than the newest seen" would miss slow calls, and
 * the label's newest 1000 would miss records when more than 1000 arrive between two polls. So
 * `since` is the earliest `ts` a call answered but not yet seen can have: for each such call,
 * the later of its send time and its answer time less the longest `latency_ms` seen so far and
 * a 250 ms margin (wall clocks of the same machine). Once the load has stopped, the send time
 * alone. A record the poller never saw still shows in the full listing made at the end.
 */
import { Pool } from 'undici';
import { quantile } from '../support/stats.js';

export interface LagOptions {
  readonly origin: string;
  readonly vaultKey: string;
  readonly adminUrl: string;
  readonly adminToken: string;
  readonly label: string;
  /** Idempotency-Key prefix of this run: `<prefix>-<n>`. */
  readonly idPrefix: string;
  readonly rate: number;
  readonly durationMs: number;
  readonly connections: number;
  readonly pollIntervalMs: number;
  /** After the last answer, how long to wait for records still missing. */
  readonly stragglerMs: number;
  /** Calls sent one by one first (connections, JIT, the key's first spend lease); not measured. */
  readonly warmupCalls: number;
}

export interface LagResult {
  readonly scheduled: number;
  readonly sent: number;
  readonly answered: number;
  readonly statuses: Record<string, number>;
  readonly errors: number;
  readonly firstError: string | null;
  /** Answers per second over the sending window (first send to last answer). */
  readonly achievedRate: number;
  /** Sends per second over the schedule (first to last send). */
  readonly sendRate: number;
  readonly sendWindowMs: number;
  readonly answerWindowMs: number;
  /** How late calls were sent relative to the schedule. */
  readonly scheduleLagP99Ms: number;
  readonly scheduleLagMaxMs: number;
  readonly callLatencyMs: { p50: number; p99: number; max: number };
  /** Measured calls whose record the poller saw (before the straggler deadline). */
  readonly seenByPoller: number;
  /** Records the poller saw before their call was answered (the record is spooled first). */
  readonly seenBeforeAnswer: number;
  readonly lagsMs: number[];
  /** From a full listing of the label at the end. */
  readonly recorded: number;
  readonly recordedTwice: number;
  /** Answered calls without a record at the end. */
  readonly missing: number;
  readonly stragglerWaitMs: number;
  readonly polls: number;
  readonly pollMs: { p50: number; p99: number; max: number };
  readonly rowsPerPoll: number;
  /** The longest `latency_ms` (start of handling to answer, at the data plane) the poller saw. */
  readonly maxDataPlaneLatencyMs: number;
}

const FORM_BODY = 'amount=2000&currency=usd&customer=cus_audit&description=audit-bench';
const MAX_PAGES_PER_POLL = 30;
/** Between the data plane stamping a record's end and the client having the answer. */
const MARGIN_MS = 250;

interface AuditEntryJson {
  readonly id: string;
  readonly idempotency_key: string | null;
  readonly latency_ms: number;
}

interface AuditPage {
  readonly entries: AuditEntryJson[];
  readonly next_cursor: string | null;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function measureAuditLag(options: LagOptions): Promise<LagResult> {
  const pool = new Pool(options.origin, { connections: options.connections, pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const admin = new Pool(options.adminUrl, { connections: 4 });
  try {
    return await run(options, pool, admin);
  } finally {
    await pool.destroy();
    await admin.destroy();
  }
}

async function run(options: LagOptions, pool: Pool, admin: Pool): Promise<LagResult> {
  const total = Math.round((options.rate * options.durationMs) / 1000);
  const headersFor = (idempotencyKey: string) => ({
    authorization: `Bearer ${options.vaultKey}`,
    'content-type': 'application/x-www-form-urlencoded',
    'idempotency-key': idempotencyKey,
  });

  const listPage = async (query: string): Promise<AuditPage> => {
    const response = await admin.request({ method: 'GET', path: `/audit?${query}`, headers: { authorization: `Bearer ${options.adminToken}` } });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`GET /audit answered ${response.statusCode}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as AuditPage;
  };
  const labelQuery = `label=${encodeURIComponent(options.label)}&limit=1000`;
  /** Every record of the label, all pages (bounded). */
  const listAll = async (): Promise<AuditEntryJson[]> => {
    const entries: AuditEntryJson[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 200; page++) {
      const body: AuditPage = await listPage(`${labelQuery}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`);
      entries.push(...body.entries);
      cursor = body.next_cursor;
      if (cursor === null) break;
    }
    return entries;
  };

  // Warm-up: one by one, then until their records are visible (so the poller starts clean).
  for (let i = 0; i < options.warmupCalls; i++) {
    const response = await pool.request({ method: 'POST', path: '/v1/charges', headers: headersFor(`${options.idPrefix}-warmup-${i}`), body: FORM_BODY });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`warm-up call answered ${response.statusCode}: ${text.slice(0, 300)}`);
  }
  for (let waited = 0; waited < 10_000; waited += 100) {
    if ((await listAll()).length >= options.warmupCalls) break;
    await sleep(100);
  }

  const sentWallMs = new Float64Array(total);
  const answeredWallMs = new Float64Array(total);
  const sentAt = new Float64Array(total).fill(Number.NaN);
  const answeredAt = new Float64Array(total).fill(Number.NaN);
  const seenAt = new Float64Array(total).fill(Number.NaN);
  const failed = new Uint8Array(total);
  const statuses: Record<string, number> = {};
  let errors = 0;
  let firstError: string | null = null;
  let answered = 0;
  let settled = 0;
  let sent = 0;
  const scheduleLags: number[] = [];
  const prefix = `${options.idPrefix}-`;

  // The poller.
  let polling = true;
  let loadDone = false;
  const answeredUnseen = new Set<number>();
  let maxLatencyMs = 0;
  let polls = 0;
  let rowsSeen = 0;
  const pollDurations: number[] = [];
  const earliestUnseenTs = () => {
    let since = Date.now() - maxLatencyMs - MARGIN_MS;
    for (const i of answeredUnseen) {
      since = Math.min(since, loadDone ? sentWallMs[i]! - 100 : Math.max(sentWallMs[i]! - 100, answeredWallMs[i]! - maxLatencyMs - MARGIN_MS));
    }
    return since;
  };
  const poller = (async () => {
    while (polling) {
      const began = performance.now();
      const sinceMs = earliestUnseenTs();
      let cursor: string | null = null;
      try {
        for (let page = 0; page < MAX_PAGES_PER_POLL; page++) {
          const body: AuditPage = await listPage(
            `${labelQuery}&since=${encodeURIComponent(new Date(sinceMs).toISOString())}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
          );
          const now = performance.now();
          rowsSeen += body.entries.length;
          for (const entry of body.entries) {
            maxLatencyMs = Math.max(maxLatencyMs, entry.latency_ms);
            const key = entry.idempotency_key;
            if (key === null || !key.startsWith(prefix) || key.includes('warmup')) continue;
            const index = Number(key.slice(prefix.length));
            if (Number.isInteger(index) && index >= 0 && index < total && Number.isNaN(seenAt[index]!)) {
              seenAt[index] = now;
              answeredUnseen.delete(index);
            }
          }
          cursor = body.next_cursor;
          if (cursor === null) break;
        }
      } catch (error) {
        if (firstError === null) firstError = `poller: ${error instanceof Error ? error.message : String(error)}`;
      }
      polls++;
      pollDurations.push(performance.now() - began);
      const wait = options.pollIntervalMs - (performance.now() - began);
      await sleep(Math.max(1, wait));
    }
  })();

  // The load: open loop on a fixed schedule.
  const inFlight = new Set<Promise<void>>();
  const send = (index: number) => {
    sentWallMs[index] = Date.now();
    sentAt[index] = performance.now();
    const call = pool
      .request({ method: 'POST', path: '/v1/charges', headers: headersFor(`${prefix}${index}`), body: FORM_BODY })
      .then(async (response) => {
        await response.body.dump({ limit: 1 << 20 });
        answeredAt[index] = performance.now();
        answeredWallMs[index] = Date.now();
        if (Number.isNaN(seenAt[index]!)) answeredUnseen.add(index);
        answered++;
        statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1;
      })
      .catch((error: unknown) => {
        failed[index] = 1;
        errors++;
        if (firstError === null) firstError = error instanceof Error ? error.message : String(error);
      })
      .finally(() => {
        settled++;
        inFlight.delete(call);
      });
    inFlight.add(call);
  };
  const start = performance.now();
  const interval = 1000 / options.rate;
  while (sent < total) {
    const now = performance.now();
    while (sent < total && start + sent * interval <= now) {
      scheduleLags.push(now - (start + sent * interval));
      send(sent);
      sent++;
    }
    if (sent < total) await sleep(1);
  }
  const lastSent = performance.now();
  for (let waited = 0; settled < total && waited < 60_000; waited += 50) await sleep(50);
  const lastAnswer = answeredAt.reduce((max, t) => (Number.isNaN(t) ? max : Math.max(max, t)), start);
  loadDone = true;

  // Stragglers: wait until every answered call has been seen, at most stragglerMs.
  const stragglersFrom = performance.now();
  const unseen = () => {
    let count = 0;
    for (let i = 0; i < total; i++) if (!Number.isNaN(answeredAt[i]!) && Number.isNaN(seenAt[i]!)) count++;
    return count;
  };
  while (unseen() > 0 && performance.now() - stragglersFrom < options.stragglerMs) await sleep(50);
  const stragglerWaitMs = performance.now() - stragglersFrom;
  polling = false;
  await poller;
  await Promise.allSettled([...inFlight]);

  // The record of truth: a full listing of the label.
  const all = await listAll();
  const counts = new Map<number, number>();
  for (const entry of all) {
    const key = entry.idempotency_key;
    if (key === null || !key.startsWith(prefix) || key.includes('warmup')) continue;
    const index = Number(key.slice(prefix.length));
    counts.set(index, (counts.get(index) ?? 0) + 1);
  }
  let recorded = 0;
  let recordedTwice = 0;
  let missing = 0;
  for (let i = 0; i < total; i++) {
    const n = counts.get(i) ?? 0;
    if (n > 0) recorded++;
    if (n > 1) recordedTwice++;
    if (n === 0 && !Number.isNaN(answeredAt[i]!)) missing++;
  }

  const lagsMs: number[] = [];
  const latencies: number[] = [];
  let seenBeforeAnswer = 0;
  for (let i = 0; i < total; i++) {
    if (!Number.isNaN(answeredAt[i]!)) latencies.push(answeredAt[i]! - sentAt[i]!);
    if (!Number.isNaN(answeredAt[i]!) && !Number.isNaN(seenAt[i]!)) {
      lagsMs.push(seenAt[i]! - answeredAt[i]!);
      if (seenAt[i]! < answeredAt[i]!) seenBeforeAnswer++;
    }
  }
  lagsMs.sort((a, b) => a - b);
  latencies.sort((a, b) => a - b);
  scheduleLags.sort((a, b) => a - b);
  pollDurations.sort((a, b) => a - b);
  return {
    scheduled: total,
    sent,
    answered,
    statuses,
    errors,
    firstError,
    achievedRate: (answered / (lastAnswer - start)) * 1000,
    sendRate: (sent / Math.max(1, lastSent - start)) * 1000,
    sendWindowMs: lastSent - start,
    answerWindowMs: lastAnswer - start,
    scheduleLagP99Ms: quantile(scheduleLags, 0.99),
    scheduleLagMaxMs: scheduleLags.at(-1) ?? 0,
    callLatencyMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: latencies.at(-1) ?? Number.NaN },
    seenByPoller: lagsMs.length,
    seenBeforeAnswer,
    lagsMs,
    recorded,
    recordedTwice,
    missing,
    stragglerWaitMs,
    polls,
    pollMs: { p50: quantile(pollDurations, 0.5), p99: quantile(pollDurations, 0.99), max: pollDurations.at(-1) ?? Number.NaN },
    rowsPerPoll: polls === 0 ? 0 : rowsSeen / polls,
    maxDataPlaneLatencyMs: maxLatencyMs,
  };
}
