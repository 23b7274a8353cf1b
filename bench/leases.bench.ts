/**
 * npm run bench:leases — spend leasing on this machine, against real processes: etcd (fsync
 * on), PostgreSQL, one control plane, data planes each behind a TCP relay (bench/leases/) that
 * can add latency and counts what the data plane sends up its gRPC stream, and the Stripe
 * simulator (wiretapped) as the vendor.
 *
 * 1. Control-plane traffic at steady state: 3 data planes, one key with a $10M cap, ~300
 *    calls/s open loop ($1-$10) for 20 s after a 3 s warm-up. Counted per 1,000 proxied calls:
 *    messages up the data planes' streams (HTTP/2 DATA frames parsed into gRPC messages, by
 *    kind) and etcd writes (etcd's own /metrics, plus a watch on the ledger prefix).
 *    Targets: <= 10 control-plane calls and <= 10 etcd writes per 1,000 calls.
 * 2. Utilisation under saturating demand: 5 data planes, a $500 cap, 16 callers in flight on
 *    each until every call has been refused (429) for 2 s. Accepted = what the simulator
 *    answered 200 (wiretap). Target >= 99 % of the cap, and never more than the cap.
 * 3. Latency with a slow control plane: 3 data planes behind relays adding 0 ms and, at the
 *    same time, 3 behind relays adding 100 ms one way, each group at 200 calls/s for 15 s
 *    (after 3 s of warm-up). Target: p99 with 100 ms no worse than with 0 ms.
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';

import { diffCounts, cloneCounts, addCounts, emptyCounts, type UpstreamCounts } from './leases/h2-upstream-tap.js';
import { diffEtcd, readEtcdCounters, watchLedger, type EtcdWriteCounters } from './leases/etcd-counters.js';
import { Caller, openLoop, saturate, type CallOutcome } from './leases/load.js';
import { quantile } from './support/stats.js';
import { ETCD_PREFIX, startStack, type BenchDataPlane, type Stack } from './leases/stack.js';
import { keepRunningWhenOutputCloses } from './support/cleanup.js';

const USD = 1_000_000;

const STEADY = { planes: 3, rate: 300, warmupMs: 3000, measureMs: 20_000, capMicros: 10_000_000 * USD };
const SATURATE = { planes: 5, perPlane: 16, capMicros: 500 * USD, quietMs: 2000, maxMs: 60_000 };
const LATENCY = { planes: 3, rate: 200, warmupMs: 3000, measureMs: 15_000, capMicros: 10_000_000 * USD, slowMs: 100 };

const TARGET_CP_CALLS_PER_1000 = 10;
const TARGET_ETCD_WRITES_PER_1000 = 10;
const TARGET_UTILISATION = 0.99;

interface Row {
  readonly figure: string;
  readonly measured: string;
  readonly target: string;
  readonly verdict: string;
}

function statusHistogram(outcomes: readonly CallOutcome[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = o.status === 200 ? '200' : `${o.status}${o.code === null ? '' : ` ${o.code}`}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}: ${n}`).join(', ');
}

/** Calls not answered 200, per `sliceMs` of the window (by send time): a burst at the start is a slow ramp, a steady count is a collapse. */
function refusedPerSlice(outcomes: readonly CallOutcome[], sliceMs: number): string {
  if (outcomes.length === 0) return 'n/a';
  const start = Math.min(...outcomes.map((o) => o.sentAtMs));
  const slices: number[] = [];
  for (const o of outcomes) {
    const i = Math.floor((o.sentAtMs - start) / sliceMs);
    while (slices.length <= i) slices.push(0);
    if (o.status !== 200) slices[i]!++;
  }
  return slices.join(' / ');
}

function relayCounts(planes: readonly BenchDataPlane[]): UpstreamCounts {
  return planes.reduce((sum, plane) => addCounts(sum, plane.relay.upstreamCounts()), emptyCounts());
}

async function stopPlanes(planes: readonly BenchDataPlane[], callers: readonly Caller[]): Promise<void> {
  await Promise.all(callers.map((c) => c.close().catch(() => {})));
  await Promise.all(planes.map((p) => p.stop()));
  await Promise.all(planes.map((p) => p.relay.stop()));
}

const per1000 = (count: number, calls: number) => (calls === 0 ? Number.NaN : (count / calls) * 1000);
const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');

// ---------------------------------------------------------------------------------------------

interface SteadyResult {
  readonly calls: number;
  readonly accepted: number;
  readonly statuses: string;
  readonly seconds: number;
  readonly upstream: UpstreamCounts;
  readonly etcd: EtcdWriteCounters;
  readonly ledgerPuts: number;
  readonly lagP99Ms: number;
  readonly unanswered: number;
  readonly refusedSlices: string;
  /** Per 5 s of the window: lease messages and etcd revisions per 1,000 scheduled calls. */
  readonly leaseSlices: string;
  readonly etcdSlices: string;
}

async function steadyState(stack: Stack): Promise<SteadyResult> {
  const label = 'bench/leases/steady';
  const key = await stack.issueKey(label, STEADY.capMicros);
  const planes = await stack.startDataPlanes(STEADY.planes, 0, 'steady');
  const callers = planes.map((p) => new Caller(p.url, key.vaultKey, label, 32));
  const ledger = await watchLedger(stack.etcd.endpoint, ETCD_PREFIX);
  try {
    let upBefore = emptyCounts();
    let upAfter = emptyCounts();
    let ledgerBefore = 0;
    let ledgerAfter = 0;
    let etcdBefore: Promise<EtcdWriteCounters> | null = null;
    let etcdAfter: Promise<EtcdWriteCounters> | null = null;
    let windowStart = 0;
    let windowEnd = 0;
    const samples: { at: number; up: UpstreamCounts; etcd: Promise<EtcdWriteCounters> }[] = [];
    const sample = () => samples.push({ at: performance.now(), up: cloneCounts(relayCounts(planes)), etcd: readEtcdCounters(stack.etcd.endpoint) });
    let slicer: NodeJS.Timeout | null = null;
    const result = await openLoop({
      callers,
      rate: STEADY.rate,
      warmupMs: STEADY.warmupMs,
      measureMs: STEADY.measureMs,
      seed: 1,
      onMeasureStart: () => {
        windowStart = performance.now();
        upBefore = cloneCounts(relayCounts(planes));
        ledgerBefore = ledger.puts();
        etcdBefore = readEtcdCounters(stack.etcd.endpoint);
        sample();
        slicer = setInterval(sample, 5000);
      },
      onMeasureEnd: () => {
        windowEnd = performance.now();
        upAfter = cloneCounts(relayCounts(planes));
        ledgerAfter = ledger.puts();
        etcdAfter = readEtcdCounters(stack.etcd.endpoint);
        if (slicer !== null) clearInterval(slicer);
        // The last interval sample may have landed just before the end: keep slices of at least 1 s.
        if (samples.length > 0 && windowEnd - samples.at(-1)!.at < 1000) samples.pop();
        sample();
      },
    });
    if (slicer !== null) clearInterval(slicer);
    const leaseSlices: string[] = [];
    const etcdSlices: string[] = [];
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1]!;
      const b = samples[i]!;
      const calls = (STEADY.rate * (b.at - a.at)) / 1000;
      const up = diffCounts(b.up, a.up);
      leaseSlices.push(fmt(per1000(up.messages.leaseRequest + up.messages.usageReport + up.messages.leaseBatch, calls)));
      etcdSlices.push(fmt(per1000(diffEtcd(await b.etcd, await a.etcd).revision, calls)));
    }
    if (etcdBefore === null || etcdAfter === null) throw new Error('the measurement window never opened');
    return {
      calls: result.measured.length,
      accepted: result.measured.filter((o) => o.status === 200).length,
      statuses: statusHistogram(result.measured),
      seconds: (windowEnd - windowStart) / 1000,
      upstream: diffCounts(upAfter, upBefore),
      etcd: diffEtcd(await etcdAfter, await etcdBefore),
      ledgerPuts: ledgerAfter - ledgerBefore,
      lagP99Ms: result.lagP99Ms,
      unanswered: result.unanswered,
      refusedSlices: refusedPerSlice(result.measured, 5000),
      leaseSlices: leaseSlices.join(' / '),
      etcdSlices: etcdSlices.join(' / '),
    };
  } finally {
    await ledger.stop();
    await stopPlanes(planes, callers);
  }
}

// ---------------------------------------------------------------------------------------------

interface SaturateResult {
  readonly capMicros: number;
  readonly acceptedMicros: number;
  readonly acceptedCalls: number;
  readonly client200: number;
  readonly calls: number;
  readonly statuses: string;
  readonly elapsedMs: number;
  readonly lastAcceptAtMs: number;
  readonly hitMax: boolean;
  readonly ledger: { spent: number; leased: number; atRisk: number; remaining: number } | null;
}

async function saturation(stack: Stack): Promise<SaturateResult> {
  const label = 'bench/leases/saturate';
  const key = await stack.issueKey(label, SATURATE.capMicros);
  stack.sim.wiretap.clear();
  const planes = await stack.startDataPlanes(SATURATE.planes, 0, 'saturate');
  const callers = planes.map((p) => new Caller(p.url, key.vaultKey, label, SATURATE.perPlane));
  let run;
  try {
    run = await saturate({ callers, perCaller: SATURATE.perPlane, seed: 2, quietMs: SATURATE.quietMs, maxMs: SATURATE.maxMs });
  } finally {
    // Clean shutdowns report every lease, so the ledger can be compared with the wiretap.
    await stopPlanes(planes, callers);
  }
  let acceptedMicros = 0;
  let acceptedCalls = 0;
  for (const request of stack.sim.wiretap.requests()) {
    const body = new URLSearchParams(request.body.toString('utf8'));
    if (body.get('description') !== label || request.response?.status !== 200) continue;
    acceptedMicros += Number(body.get('amount')) * 10_000;
    acceptedCalls++;
  }
  stack.sim.wiretap.clear();
  const accepted = run.outcomes.filter((o) => o.status === 200);
  const lastAcceptAtMs = accepted.reduce((max, o) => Math.max(max, o.sentAtMs + o.latencyMs), 0);
  let ledger: SaturateResult['ledger'] = null;
  try {
    const { key: record } = await stack.client.getKey({ id: key.id });
    const spend = record?.spend;
    if (spend !== undefined) ledger = { spent: spend.spentMicros, leased: spend.leasedMicros, atRisk: spend.atRiskMicros, remaining: spend.remainingMicros };
  } catch (error) {
    console.error(`getKey failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  return {
    capMicros: SATURATE.capMicros,
    acceptedMicros,
    acceptedCalls,
    client200: accepted.length,
    calls: run.outcomes.length,
    statuses: statusHistogram(run.outcomes),
    elapsedMs: run.elapsedMs,
    lastAcceptAtMs,
    hitMax: run.hitMax,
    ledger,
  };
}

// ---------------------------------------------------------------------------------------------

interface LatencyResult {
  readonly delayMs: number;
  readonly calls: number;
  readonly statuses: string;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly over200: number;
  readonly okP99: number;
  readonly leaseMessages: number;
  readonly lagP99Ms: number;
  readonly unanswered: number;
  readonly refusedSlices: string;
  /** Every measured latency, sorted. */
  readonly latencies: readonly number[];
}

/**
 * Both relays' data planes run at the same time, each group with its own key and its own
 * open-loop callers: whatever else the machine does (GC, etcd's fsync, PostgreSQL) falls on
 * both alike, instead of on whichever ran second.
 */
async function latencyRuns(stack: Stack, delays: readonly number[]): Promise<LatencyResult[]> {
  const groups = [];
  for (const delayMs of delays) {
    const label = `bench/leases/latency-${delayMs}ms`;
    const key = await stack.issueKey(label, LATENCY.capMicros);
    const planes = await stack.startDataPlanes(LATENCY.planes, delayMs, `latency${delayMs}`);
    groups.push({ delayMs, planes, callers: planes.map((p) => new Caller(p.url, key.vaultKey, label, 32)) });
  }
  try {
    return await Promise.all(groups.map(async ({ delayMs, planes, callers }, i) => {
      let upBefore = emptyCounts();
      let upAfter = emptyCounts();
      const result = await openLoop({
        callers,
        rate: LATENCY.rate,
        warmupMs: LATENCY.warmupMs,
        measureMs: LATENCY.measureMs,
        seed: 3 + i,
        onMeasureStart: () => (upBefore = cloneCounts(relayCounts(planes))),
        onMeasureEnd: () => (upAfter = cloneCounts(relayCounts(planes))),
      });
      const latencies = result.measured.map((o) => o.latencyMs).sort((a, b) => a - b);
      const up = diffCounts(upAfter, upBefore);
      return {
        delayMs,
        calls: result.measured.length,
        statuses: statusHistogram(result.measured),
        p50: quantile(latencies, 0.5),
        p99: quantile(latencies, 0.99),
        max: latencies.at(-1) ?? Number.NaN,
        over200: latencies.filter((l) => l > 200).length,
        okP99: quantile(result.measured.filter((o) => o.status === 200).map((o) => o.latencyMs).sort((a, b) => a - b), 0.99),
        leaseMessages: up.messages.leaseRequest + up.messages.usageReport + up.messages.leaseBatch,
        lagP99Ms: result.lagP99Ms,
        unanswered: result.unanswered,
        refusedSlices: refusedPerSlice(result.measured, 5000),
        latencies,
      };
    }));
  } finally {
    for (const { planes, callers } of groups) await stopPlanes(planes, callers);
  }
}

/**
 * The 95 % interval of p99(a) / p99(b), by resampling both samples 1,000 times (seeded): how far
 * apart two p99s of a few thousand calls on a shared 2-core machine can be by chance alone.
 */
function bootstrapP99Ratio(a: readonly number[], b: readonly number[]): { low: number; high: number } {
  let state = 12345;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const resampledP99 = (sample: readonly number[]) => {
    const copy = new Float64Array(sample.length);
    for (let i = 0; i < sample.length; i++) copy[i] = sample[Math.floor(random() * sample.length)]!;
    return quantile(copy.sort(), 0.99);
  };
  const ratios: number[] = [];
  for (let i = 0; i < 1000; i++) ratios.push(resampledP99(a) / resampledP99(b));
  ratios.sort((x, y) => x - y);
  return { low: ratios[25]!, high: ratios[974]! };
}

// ---------------------------------------------------------------------------------------------

function etcdVersion(): string {
  const binary = process.env['KEYBRAKE_ETCD_BIN'] || 'etcd';
  const out = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 5000 });
  return /etcd Version: (\S+)/.exec(out.stdout ?? '')?.[1] ?? 'unknown';
}

async function main(): Promise<void> {
  const started = performance.now();
  const stack = await startStack();
  const onSignal = () => {
    void stack.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let steady: SteadyResult;
  let sat: SaturateResult;
  let fast: LatencyResult;
  let slow: LatencyResult;
  try {
    console.error('bench:leases: 1/3 steady-state control-plane traffic…');
    steady = await steadyState(stack);
    console.error('bench:leases: 2/3 utilisation under saturating demand…');
    sat = await saturation(stack);
    console.error('bench:leases: 3/3 latency with 0 ms and 100 ms to the control plane…');
    [fast, slow] = (await latencyRuns(stack, [0, LATENCY.slowMs])) as [LatencyResult, LatencyResult];
  } finally {
    await stack.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const totalSeconds = (performance.now() - started) / 1000;

  const m = steady.upstream.messages;
  const leaseMessages = m.leaseRequest + m.usageReport + m.leaseBatch;
  const allMessages = m.hello + m.leaseRequest + m.usageReport + m.leaseBatch + m.auditBatch + m.other;
  const leasePer1000 = per1000(leaseMessages, steady.calls);
  const allPer1000 = per1000(allMessages, steady.calls);
  const etcdPer1000 = per1000(steady.etcd.revision, steady.calls);
  const utilisation = sat.acceptedMicros / sat.capMicros;
  const overspend = sat.acceptedMicros > sat.capMicros;
  const ratio = slow.p99 / fast.p99;
  const ratioInterval = bootstrapP99Ratio(slow.latencies, fast.latencies);
  // No worse: the slow group's p99 is not measurably above the baseline's (the 95 % interval of
  // the ratio reaches 1), and no call waited for the control plane (a round trip is >= 200 ms).
  const latencyMet = ratioInterval.low <= 1 && slow.over200 === 0;
  const verdict = (ok: boolean) => (ok ? 'met' : '**NOT met**');

  const fwd = steady.accepted;
  const steadyRefused = steady.calls - steady.accepted;
  const rows: Row[] = [
    {
      figure: '1a. control-plane calls (LeaseBatch, LeaseRequest, UsageReport messages up the streams) per 1,000 calls',
      measured: `${fmt(leasePer1000)} (${m.leaseBatch} lease batches + ${m.leaseRequest} lease requests + ${m.usageReport} usage reports sent alone / ${steady.calls} calls; ${fmt(per1000(leaseMessages, fwd))} per 1,000 forwarded)`,
      target: `<= ${TARGET_CP_CALLS_PER_1000}`,
      verdict: verdict(leasePer1000 <= TARGET_CP_CALLS_PER_1000),
    },
    {
      figure: "1a'. every message up the streams (audit batches included) per 1,000 calls",
      measured: `${fmt(allPer1000)} (+ ${m.auditBatch} audit batches; ${steady.upstream.dataFrames} DATA frames)`,
      // Audit batches are not lease traffic: they leave every 50 ms while calls come in, a
      // rate set by the audit lag target (bench:audit), not by call volume.
      target: 'for information: audit batches follow the audit lag, not the call count',
      verdict: '',
    },
    {
      figure: '1b. etcd writes (revisions) per 1,000 calls',
      measured: `${fmt(etcdPer1000)} (${steady.etcd.revision} revisions; put_total +${steady.etcd.puts}; ledger puts watched ${steady.ledgerPuts}; ${fmt(per1000(steady.etcd.revision, fwd))} per 1,000 forwarded)`,
      target: `<= ${TARGET_ETCD_WRITES_PER_1000}`,
      verdict: verdict(etcdPer1000 <= TARGET_ETCD_WRITES_PER_1000),
    },
    {
      figure: '1c. calls refused at steady state although the $10M cap had room',
      measured: `${steadyRefused} of ${steady.calls} (${steady.statuses})`,
      target: '0',
      verdict: verdict(steadyRefused === 0),
    },
    {
      figure: '2. utilisation of a $500 cap, 5 data planes x 16 in flight',
      measured: `${fmt(utilisation * 100, 2)} % ($${fmt(sat.acceptedMicros / USD, 2)} accepted in ${sat.acceptedCalls} calls)`,
      target: `>= ${TARGET_UTILISATION * 100} %`,
      verdict: verdict(utilisation >= TARGET_UTILISATION),
    },
    {
      figure: "2'. accepted <= cap",
      measured: overspend ? `**OVERSPEND** by $${fmt((sat.acceptedMicros - sat.capMicros) / USD, 2)}` : `$${fmt(sat.acceptedMicros / USD, 2)} <= $${fmt(sat.capMicros / USD, 2)}`,
      target: 'never above the cap',
      verdict: verdict(!overspend),
    },
    {
      figure: '3. proxy latency, 0 ms to the control plane (p50 / p99, all answers)',
      measured: `${fmt(fast.p50, 2)} / ${fmt(fast.p99, 2)} ms`,
      target: 'baseline',
      verdict: '',
    },
    {
      figure: `3. proxy latency, +${LATENCY.slowMs} ms one way (p50 / p99, all answers)`,
      measured: `${fmt(slow.p50, 2)} / ${fmt(slow.p99, 2)} ms`,
      target: 'p99 no worse than baseline',
      verdict: '',
    },
    {
      figure: `3. p99 ratio (+${LATENCY.slowMs} ms / 0 ms), with its 95 % bootstrap interval`,
      measured: `${fmt(ratio, 2)}x (${fmt(ratioInterval.low, 2)}x–${fmt(ratioInterval.high, 2)}x); calls > 200 ms: ${slow.over200}`,
      target: 'no worse: the interval reaches 1.00x, and no call waited for the control plane',
      verdict: verdict(latencyMet),
    },
  ];

  const cpu = cpus();
  const out: string[] = [];
  out.push('');
  out.push(`## bench:leases — ${new Date().toISOString().slice(0, 19).replace('T', ' ')} UTC`);
  out.push('');
  out.push(`Machine: ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}, etcd ${etcdVersion()} (fsync on), load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; total run ${fmt(totalSeconds, 0)} s`);
  out.push('');
  out.push('| figure | measured | target | verdict |');
  out.push('| --- | --- | --- | --- |');
  for (const row of rows) out.push(`| ${row.figure} | ${row.measured} | ${row.target} | ${row.verdict} |`);
  out.push('');
  out.push('Details:');
  out.push(`- steady: ${steady.calls} calls in ${fmt(steady.seconds, 1)} s (${fmt(steady.calls / steady.seconds, 0)}/s, ${STEADY.planes} data planes; ${steady.statuses}); schedule lag p99 ${fmt(steady.lagP99Ms, 1)} ms; unanswered ${steady.unanswered}`);
  out.push(`  per 5 s of the window: not-200 answers ${steady.refusedSlices}; control-plane calls per 1,000 calls ${steady.leaseSlices}; etcd writes per 1,000 calls ${steady.etcdSlices}`);
  out.push(`  upstream per data plane per second: ${fmt(m.leaseBatch / steady.seconds / STEADY.planes, 2)} lease batches, ${fmt(m.leaseRequest / steady.seconds / STEADY.planes, 2)} lease requests, ${fmt(m.usageReport / steady.seconds / STEADY.planes, 2)} usage reports, ${fmt(m.auditBatch / steady.seconds / STEADY.planes, 1)} audit batches; ${steady.upstream.bytes} bytes in ${steady.upstream.chunks} TCP chunks; streams opened ${steady.upstream.headersFrames}; unparsed bytes ${steady.upstream.unparsed}`);
  out.push(`- saturate: ${sat.calls} calls (${sat.statuses}); client saw ${sat.client200} x 200, simulator answered ${sat.acceptedCalls} x 200; last accept at ${fmt(sat.lastAcceptAtMs / 1000, 2)} s, run ${fmt(sat.elapsedMs / 1000, 1)} s${sat.hitMax ? ' (HIT THE TIME BOUND: cap not exhausted)' : ''}`);
  if (sat.ledger !== null) {
    out.push(`  ledger after clean shutdown: spent $${fmt(sat.ledger.spent / USD, 2)}, leased $${fmt(sat.ledger.leased / USD, 2)}, at risk $${fmt(sat.ledger.atRisk / USD, 2)}, remaining $${fmt(sat.ledger.remaining / USD, 2)}${sat.ledger.spent === sat.acceptedMicros ? ' (spent = accepted)' : ` (MISMATCH: spent != accepted $${fmt(sat.acceptedMicros / USD, 2)})`}`);
  }
  for (const r of [fast, slow]) {
    out.push(`- latency +${r.delayMs} ms: ${r.calls} calls (${r.statuses}); p50 ${fmt(r.p50, 2)}, p99 ${fmt(r.p99, 2)}, max ${fmt(r.max, 1)} ms (p99 of the 200s alone ${fmt(r.okP99, 2)} ms); ${r.over200} calls > 200 ms; ${r.leaseMessages} lease messages up; schedule lag p99 ${fmt(r.lagP99Ms, 1)} ms; unanswered ${r.unanswered}; not-200 per 5 s: ${r.refusedSlices}`);
  }
  console.log(out.join('\n'));
  if (overspend) {
    console.error(`\nOVERSPEND: the simulator accepted $${fmt(sat.acceptedMicros / USD, 2)} against a cap of $${fmt(sat.capMicros / USD, 2)}`);
    process.exitCode = 1;
  }
}

keepRunningWhenOutputCloses();
await main();
