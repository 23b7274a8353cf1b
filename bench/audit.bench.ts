/**
 * npm run bench:audit — the audit trail under load, on a real etcd (fsync on), PostgreSQL
 * (fsync on) and control-plane process.
 *
 * 1. Ingest: two simulated data planes (bench/audit/ingest.ts: DataPlaneService/Connect spoken
 *    directly, batches of 500, 4 in flight, like data-plane/audit-shipper.ts) send 200,000
 *    records in parallel; records/s acknowledged (= committed to PostgreSQL), then
 *    `SELECT count(*) FROM audit_records` must be 200,000. A second pass sends the same
 *    records again (a data plane replaying its spool): the count must stay 200,000.
 *    Target: >= 20,000 records/s for one control plane.
 * 2. Lag: a real data-plane process in front of a simulated Stripe, driven at 2,000 calls/s
 *    (open loop) for 10 s, while the admin API is polled every 50 ms (bench/audit/lag.ts);
 *    lag = first seen by the poller − answer received by the client. Target: p99 <= 1 s; every
 *    answered call recorded.
 * Everything runs on this machine's cores (load generator, data plane, control plane, etcd,
 * PostgreSQL): the figures are for that shared setting.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';

import type { AuditRecord } from '../gen/keybrake/v1/dataplane.js';
import { withCleanup, type Cleanup } from './support/cleanup.js';
import { BATCH_SIZE, BATCHES_IN_FLIGHT, connectFeeder, makeRecords } from './audit/ingest.js';
import { measureAuditLag, type LagResult } from './audit/lag.js';
import { quantile } from './support/stats.js';
import { cpuSeconds, machineCpu, MAX_LOAD, treeCpuSeconds, waitForNoInterference, waitForQuietMachine } from './audit/machine.js';
import { startAuditStack, startDataPlane, startStripeUpstream, type AuditStack } from './audit/stack.js';

const INGEST_RECORDS = 200_000;
const INGEST_STREAMS = 2;
const INGEST_TIMEOUT_MS = 90_000;
const TARGET_INGEST_PER_SECOND = 20_000;

const LAG_RATE = 2000;
const LAG_DURATION_MS = 10_000;
const LAG_CONNECTIONS = 256;
const POLL_INTERVAL_MS = 50;
const STRAGGLER_MS = 10_000;
const WARMUP_CALLS = 200;
const TARGET_LAG_P99_MS = 1000;
/** Above this much CPU (% of one core) taken by processes outside the benchmark, a phase waits (60 s at most) and its figures are flagged. */
const FOREIGN_CPU_LIMIT_PERCENT = 25;

interface IngestPass {
  readonly name: string;
  readonly records: number;
  readonly ms: number;
  readonly perSecond: number;
  readonly perStream: string;
  readonly rowsAfter: number;
  readonly cpu: CpuShare;
}

interface CpuShare {
  readonly controlPlane: number;
  readonly postgres: number;
  readonly etcd: number;
  readonly bench: number;
  readonly dataPlane: number;
  readonly upstream: number;
  readonly machineBusy: number;
  readonly machineTotal: number;
}

const thousands = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(0)} ms` : 'n/a');

/** CPU seconds each part of the deployment took from now until the returned function is called. */
function cpuMeter(stack: AuditStack, extra: { dataPlane?: number; upstream?: number } = {}): () => CpuShare {
  const sample = () => ({
    controlPlane: cpuSeconds(stack.controlPlanePid),
    postgres: stack.postgresPid > 0 ? treeCpuSeconds(stack.postgresPid) : 0,
    etcd: cpuSeconds(stack.etcdPid),
    bench: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    dataPlane: extra.dataPlane === undefined ? 0 : cpuSeconds(extra.dataPlane),
    upstream: extra.upstream === undefined ? 0 : treeCpuSeconds(extra.upstream),
    machine: machineCpu(),
  });
  const before = sample();
  return () => {
    const after = sample();
    return {
      controlPlane: after.controlPlane - before.controlPlane,
      postgres: after.postgres - before.postgres,
      etcd: after.etcd - before.etcd,
      bench: after.bench - before.bench,
      dataPlane: after.dataPlane - before.dataPlane,
      upstream: after.upstream - before.upstream,
      machineBusy: after.machine.busy - before.machine.busy,
      machineTotal: after.machine.total - before.machine.total,
    };
  };
}

/** CPU of the other processes on the machine during a phase, in % of one core. */
function foreignPercent(cpu: CpuShare, seconds: number): number {
  const ours = cpu.controlPlane + cpu.postgres + cpu.etcd + cpu.bench + cpu.dataPlane + cpu.upstream;
  return (Math.max(0, cpu.machineBusy - ours) / seconds) * 100;
}

function describeCpu(cpu: CpuShare, seconds: number, withDataPlane: boolean): string {
  const pct = (s: number) => `${((s / seconds) * 100).toFixed(0)}%`;
  return [
    `control plane ${pct(cpu.controlPlane)}`,
    `PostgreSQL ${pct(cpu.postgres)}`,
    `etcd ${pct(cpu.etcd)}`,
    ...(withDataPlane ? [`data plane ${pct(cpu.dataPlane)}`, `simulated Stripe ${pct(cpu.upstream)}`] : []),
    `bench process ${pct(cpu.bench)}`,
    `other processes ${foreignPercent(cpu, seconds).toFixed(0)}%`,
  ].join(', ') + ` of one core; machine ${((cpu.machineBusy / Math.max(cpu.machineTotal, 1e-9)) * 100).toFixed(0)}% busy (${cpus().length} cores)`;
}

async function countRows(db: pg.Client, table: 'audit_records' | 'audit_gaps'): Promise<number> {
  const result = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(result.rows[0]!.n);
}

async function ingestPass(name: string, stack: AuditStack, db: pg.Client, streams: { dataplaneId: string; incarnation: string; records: AuditRecord[] }[]): Promise<IngestPass> {
  const feeders = await Promise.all(
    streams.map((s) => connectFeeder({ address: stack.grpcAddress, token: stack.dataplaneToken, dataplaneId: s.dataplaneId, incarnation: s.incarnation, records: s.records, timeoutMs: INGEST_TIMEOUT_MS })),
  );
  try {
    const meter = cpuMeter(stack);
    const start = performance.now();
    const results = await Promise.all(feeders.map((f) => f.run()));
    const end = Math.max(...results.map((r) => r.finishedAt));
    const cpu = meter();
    const records = results.reduce((sum, r) => sum + r.acked, 0);
    const duration = end - start;
    return {
      name,
      records,
      ms: duration,
      perSecond: (records / duration) * 1000,
      perStream: results.map((r) => `${r.dataplaneId} ${thousands(r.acked)} in ${((r.finishedAt - start) / 1000).toFixed(2)} s`).join(', '),
      rowsAfter: await countRows(db, 'audit_records'),
      cpu,
    };
  } finally {
    for (const feeder of feeders) feeder.close();
  }
}

async function main(cleanup: Cleanup): Promise<void> {
  const began = performance.now();
  const date = new Date().toISOString().slice(0, 10);
  console.log(`bench:audit — ${date}, ${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}`);
  console.log(`  load generator, data plane, control plane, etcd and PostgreSQL all share these ${cpus().length} cores`);
  const quiet = await waitForQuietMachine();
  console.log(`  1-min load average before starting: ${quiet.load.toFixed(2)}${quiet.waitedMs > 1000 ? ` (after waiting ${Math.round(quiet.waitedMs / 1000)} s)` : ''}`);

  const dir = await mkdtemp(join(tmpdir(), 'keybrake-bench-audit-'));
  // PostgreSQL runs as its own user when this runs as root: the directory must be traversable.
  await chmod(dir, 0o755);
  cleanup.add(`temp dir ${dir}`, () => rm(dir, { recursive: true, force: true }));
  const stack = await startAuditStack(cleanup, dir);
  const db = new pg.Client({ connectionString: stack.databaseUrl });
  await db.connect();
  cleanup.add('PostgreSQL client', () => db.end());

  // 1. Ingest.
  const perStream = INGEST_RECORDS / INGEST_STREAMS;
  const streams = Array.from({ length: INGEST_STREAMS }, (_, i) => {
    const incarnation = randomBytes(8).toString('hex');
    return { dataplaneId: `dp-bench-${String.fromCharCode(97 + i)}`, incarnation, records: makeRecords(perStream, incarnation, 0x9e3779b9 ^ (i + 1)) };
  });
  const backendPids = [stack.controlPlanePid, stack.postgresPid, stack.etcdPid].filter((pid) => pid > 0);
  await waitForNoInterference(backendPids, 'the ingest run', FOREIGN_CPU_LIMIT_PERCENT);
  const loadBeforeIngest = loadavg()[0]!;
  console.log(`\ningest: ${INGEST_STREAMS} streams x ${thousands(perStream)} records, batches of ${BATCH_SIZE}, ${BATCHES_IN_FLIGHT} in flight per stream (1-min load ${loadBeforeIngest.toFixed(2)})`);
  const first = await ingestPass('new records', stack, db, streams);
  console.log(`  new:        ${thousands(first.perSecond)} records/s acknowledged (${(first.ms / 1000).toFixed(2)} s; ${first.perStream}); rows: ${thousands(first.rowsAfter)}`);
  console.log(`              CPU: ${describeCpu(first.cpu, first.ms / 1000, false)}`);
  const second = await ingestPass('duplicates', stack, db, streams);
  console.log(`  duplicates: ${thousands(second.perSecond)} records/s acknowledged (${(second.ms / 1000).toFixed(2)} s; ${second.perStream}); rows: ${thousands(second.rowsAfter)}`);
  console.log(`              CPU: ${describeCpu(second.cpu, second.ms / 1000, false)}`);
  const gaps = await countRows(db, 'audit_gaps');

  // 2. Lag through a real data plane.
  const runId = randomBytes(4).toString('hex');
  const label = `metaflow/audit-bench-${runId}`;
  const upstream = await startStripeUpstream(cleanup);
  const { issued } = await stack.client.issueKey({
    spec: { vendor: 'stripe', label, allowedEndpoints: ['POST /v1/charges'], dailyCapMicros: 1_000_000_000_000_000, budgetMicros: 0, expiresInSeconds: 3600, perCallEstimateMicros: 0 },
  });
  if (issued === undefined) throw new Error('issueKey returned no key');
  const dataPlane = await startDataPlane(cleanup, stack, dir, `dp-audit-bench-${runId}`, upstream.origin);
  await waitForNoInterference([...backendPids, dataPlane.pid, upstream.pid], 'the lag run', FOREIGN_CPU_LIMIT_PERCENT);
  const loadBeforeLag = loadavg()[0]!;
  console.log(`\nlag: ${thousands(LAG_RATE)} calls/s for ${LAG_DURATION_MS / 1000} s through data plane pid ${dataPlane.pid}, polling GET /audit every ${POLL_INTERVAL_MS} ms (1-min load ${loadBeforeLag.toFixed(2)})`);
  const meter = cpuMeter(stack, { dataPlane: dataPlane.pid, upstream: upstream.pid });
  const lagStarted = performance.now();
  const lag: LagResult = await measureAuditLag({
    origin: dataPlane.origin,
    vaultKey: issued.vaultKey,
    adminUrl: stack.adminUrl,
    adminToken: stack.adminToken,
    label,
    idPrefix: `audit-bench-${runId}`,
    rate: LAG_RATE,
    durationMs: LAG_DURATION_MS,
    connections: LAG_CONNECTIONS,
    pollIntervalMs: POLL_INTERVAL_MS,
    stragglerMs: STRAGGLER_MS,
    warmupCalls: WARMUP_CALLS,
  });
  const lagCpu = meter();
  const lagSeconds = (performance.now() - lagStarted) / 1000;
  const p50 = quantile(lag.lagsMs, 0.5);
  const p99 = quantile(lag.lagsMs, 0.99);
  const max = lag.lagsMs.at(-1) ?? Number.NaN;
  const statusText = Object.entries(lag.statuses).map(([status, n]) => `${status}: ${thousands(n)}`).join(', ');
  console.log(`  sent ${thousands(lag.sent)} of ${thousands(lag.scheduled)} scheduled in ${(lag.sendWindowMs / 1000).toFixed(2)} s (${thousands(lag.sendRate)}/s; schedule lag p99 ${lag.scheduleLagP99Ms.toFixed(1)} ms, max ${lag.scheduleLagMaxMs.toFixed(1)} ms)`);
  console.log(`  answered ${thousands(lag.answered)} (${statusText || 'none'}), ${lag.errors} errors${lag.firstError === null ? '' : ` (first: ${lag.firstError})`}; last answer after ${(lag.answerWindowMs / 1000).toFixed(2)} s: ${thousands(lag.achievedRate)} calls/s`);
  console.log(`  call latency p50 ${lag.callLatencyMs.p50.toFixed(1)} ms, p99 ${lag.callLatencyMs.p99.toFixed(1)} ms, max ${lag.callLatencyMs.max.toFixed(1)} ms`);
  console.log(`  audit lag p50 ${ms(p50)}, p99 ${ms(p99)}, max ${ms(max)}; seen by the poller ${thousands(lag.seenByPoller)} (${lag.seenBeforeAnswer} before the client had the answer); recorded ${thousands(lag.recorded)} (${lag.recordedTwice} twice, ${lag.missing} answered but missing); waited ${(lag.stragglerWaitMs / 1000).toFixed(2)} s for stragglers`);
  console.log(`  poller: ${lag.polls} polls, ${lag.rowsPerPoll.toFixed(0)} rows per poll, query p50 ${lag.pollMs.p50.toFixed(1)} ms, p99 ${lag.pollMs.p99.toFixed(1)} ms, max ${lag.pollMs.max.toFixed(1)} ms; longest latency_ms recorded ${lag.maxDataPlaneLatencyMs} ms`);
  console.log(`  CPU: ${describeCpu(lagCpu, lagSeconds, true)}`);

  // The report.
  const ingestForeign = foreignPercent(first.cpu, first.ms / 1000);
  const lagForeign = foreignPercent(lagCpu, lagSeconds);
  const verdict = (ok: boolean) => (ok ? 'met' : '**NOT met**');
  const rateMet = lag.sent === lag.scheduled && lag.achievedRate >= LAG_RATE * 0.95 && lag.sendWindowMs <= LAG_DURATION_MS * 1.05;
  const allRecorded = lag.answered > 0 && lag.recorded === lag.answered && lag.missing === 0 && lag.recordedTwice === 0;
  const lagComplete = lag.seenByPoller === lag.answered;
  const rows: [string, string, string, string][] = [
    ['Ingest, 2 streams, 200,000 new records', `${thousands(first.perSecond)} records/s (${(first.ms / 1000).toFixed(2)} s)`, `>= ${thousands(TARGET_INGEST_PER_SECOND)} records/s`, verdict(first.perSecond >= TARGET_INGEST_PER_SECOND)],
    ['`SELECT count(*) FROM audit_records`', thousands(first.rowsAfter), `exactly ${thousands(INGEST_RECORDS)}`, verdict(first.rowsAfter === INGEST_RECORDS)],
    ['Re-send of the same 200,000 (duplicates)', `${thousands(second.perSecond)} records/s (${(second.ms / 1000).toFixed(2)} s)`, '(informative)', '—'],
    ['`count(*)` after the re-send', thousands(second.rowsAfter), `stays ${thousands(INGEST_RECORDS)}`, verdict(second.rowsAfter === INGEST_RECORDS)],
    ['`audit_gaps` rows', String(gaps), '0', verdict(gaps === 0)],
    ['Data plane, fixed-rate calls', `${thousands(lag.achievedRate)} calls/s achieved (${thousands(lag.answered)} answered)`, `${thousands(LAG_RATE)} calls/s for ${LAG_DURATION_MS / 1000} s`, verdict(rateMet)],
    ['Calls answered / recorded', `${thousands(lag.answered)} / ${thousands(lag.recorded)}`, 'equal', verdict(allRecorded)],
    ['Audit lag p50', ms(p50), '(informative)', '—'],
    ['Audit lag p99', ms(p99), `<= ${thousands(TARGET_LAG_P99_MS)} ms`, verdict(p99 <= TARGET_LAG_P99_MS && lagComplete)],
    ['Audit lag max', ms(max), '(informative)', '—'],
    [
      'Validity: CPU other processes took (ingest / lag run)',
      `${ingestForeign.toFixed(0)}% / ${lagForeign.toFixed(0)}% of a core`,
      `<= ${FOREIGN_CPU_LIMIT_PERCENT}%`,
      ingestForeign <= FOREIGN_CPU_LIMIT_PERCENT && lagForeign <= FOREIGN_CPU_LIMIT_PERCENT ? 'quiet' : '**busy: figures depressed**',
    ],
  ];
  const totalSeconds = (performance.now() - began) / 1000;
  console.log(`\n### bench:audit — ${date}\n`);
  console.log(`${cpus().length} cores, Node ${process.version}; 1-min load average ${quiet.load.toFixed(2)} at start${quiet.quiet ? '' : ` (**above ${MAX_LOAD}: the machine was busy**)`}, ${loadBeforeIngest.toFixed(2)} before ingest, ${loadBeforeLag.toFixed(2)} before the lag run. `
    + 'The load generator, data plane, control plane, etcd (fsync on) and PostgreSQL (fsync on) share these cores; '
    + `processes outside this benchmark took ${ingestForeign.toFixed(0)}% of a core during the ingest run and ${lagForeign.toFixed(0)}% during the lag run.\n`);
  console.log('| Measure | Result | Target | |');
  console.log('|---|---|---|---|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  console.log(`\n(${totalSeconds.toFixed(0)} s in all, before clean-up)`);
  if (!lagComplete) console.log(`note: ${thousands(lag.answered - lag.seenByPoller)} answered calls were not seen by the poller within the straggler wait; the lag figures exclude them`);
}

await withCleanup(main);
