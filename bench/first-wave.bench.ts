/**
 * npm run bench:first-wave [-- <keys present> [<data planes, e.g. 1,2,5>]] — a foreach's first
 * wave: 10,000 freshly issued keys each make their first `POST /v1/charges` ($20) at once, 200 in flight spread round-robin
 * over the data planes, with 1, 2 and 5 data planes (a fresh set and a fresh wave each time).
 * Meanwhile one busy, warmed key calls 100 times a second on the same data planes: none of its
 * calls may be refused. `keys present` (default 100,000) other keys are issued first, as in a
 * fleet's ordinary day.
 *
 * Measured per wave: wall time, first calls per second, p50/p99/max of a first call (client-side,
 * send to last byte), statuses, and etcd's own counters per 1,000 first grants: transactions
 * (`etcd_mvcc_txn_total`, reads included), ledger puts (a watch) and revisions (committed writes).
 * Real etcd (fsync on), PostgreSQL, control plane and data-plane processes and a fixed-answer
 * Stripe-like upstream (its own process), on this machine's cores. The integration test
 * first-wave.test.ts drives a smaller wave against the wiretapped simulator.
 */
import { cpus, loadavg } from 'node:os';

import { Pool } from 'undici';

import type { KeySpec } from '../gen/keybrake/v1/operator.js';
import { cpuSeconds } from './audit/machine.js';
import { diffEtcd, readEtcdCounters, readEtcdRpcs, watchLedger } from './leases/etcd-counters.js';
import { ETCD_PREFIX, startStack, type BenchDataPlane } from './leases/stack.js';
import { keepRunningWhenOutputCloses } from './support/cleanup.js';
import { ms, summarise, thousands } from './support/stats.js';

const PRESENT = Number(process.argv[2] ?? 100_000);
const WAVE = 10_000;
const IN_FLIGHT = 200;
/** Data-plane counts to run, e.g. `2` or `1,2,5` (the default). */
const PLANES = (process.argv[3] ?? '1,2,5').split(',').map(Number);
const ISSUE_BATCH = 10_000;
const BUSY_RATE = 100;
const USD = 1_000_000;

const TARGET_WAVE_MS = 5000;
const TARGET_P99_MS = 500;
const TARGET_TXNS_PER_1000 = 50;

const spec = (label: string, budgetMicros: number): KeySpec => ({
  vendor: 'stripe', label, allowedEndpoints: ['POST /v1/charges'], dailyCapMicros: 0, budgetMicros, expiresInSeconds: 3600, perCallEstimateMicros: 0,
});

interface Outcome {
  readonly status: number;
  readonly code: string | null;
  readonly latencyMs: number;
}

async function call(pool: Pool, vaultKey: string, body: string): Promise<Outcome> {
  const sent = performance.now();
  try {
    const response = await pool.request({
      method: 'POST',
      path: '/v1/charges',
      headers: { authorization: `Bearer ${vaultKey}`, 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    await response.body.arrayBuffer();
    const code = response.headers['keybrake-error'];
    return { status: response.statusCode, code: typeof code === 'string' ? code : null, latencyMs: performance.now() - sent };
  } catch {
    return { status: 0, code: 'connection_failed', latencyMs: performance.now() - sent };
  }
}

function statuses(outcomes: readonly Outcome[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = o.status === 200 ? '200' : `${o.status}${o.code === null ? '' : ` ${o.code}`}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}: ${thousands(n)}`).join(', ');
}

/** A counter from the control plane's /metrics. */
async function controlPlaneCounter(adminUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const match = new RegExp(`^${name} ([0-9.eE+-]+)$`, 'm').exec(text);
  // NaN (shown as such) for a control plane from before the counter existed: an A/B run against an older commit.
  return match === null ? Number.NaN : Number(match[1]);
}

async function main(): Promise<void> {
  if (!Number.isSafeInteger(PRESENT) || PRESENT < 0) throw new Error('keys present must be a whole number');
  keepRunningWhenOutputCloses();
  const stack = await startStack({ fixedUpstream: true });
  const rows: string[] = [];
  try {
    const issue = async (label: string, count: number, budgetMicros: number): Promise<string[]> => {
      const vaultKeys: string[] = [];
      for (let done = 0; done < count; done += ISSUE_BATCH) {
        const n = Math.min(ISSUE_BATCH, count - done);
        const { issued } = await stack.client.issueKeys({ specs: Array.from({ length: n }, () => spec(label, budgetMicros)) });
        for (const one of issued) vaultKeys.push(one.vaultKey);
      }
      return vaultKeys;
    };
    const presentStart = performance.now();
    await issue('fleet/present', PRESENT, 50 * USD);
    console.error(`issued ${thousands(PRESENT)} keys present in ${ms(performance.now() - presentStart, 0)}`);

    for (const planes of PLANES) {
      const dataPlanes: BenchDataPlane[] = await stack.startDataPlanes(planes, 0, `wave${planes}`);
      const pools = dataPlanes.map((dp) => new Pool(dp.url, { connections: Math.ceil(IN_FLIGHT / planes) + 4, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 }));
      try {
        const wave = await issue(`metaflow/FirstWave/${planes}`, WAVE, 50 * USD);
        const [busyKey] = await issue(`metaflow/Busy/${planes}`, 1, 1_000_000 * USD);
        // The busy key warms on every data plane, then keeps calling through the wave.
        for (const pool of pools) for (let i = 0; i < 3; i++) await call(pool, busyKey!, 'amount=2000&currency=usd&source=tok_visa');
        const busy: Outcome[] = [];
        let busyRunning = true;
        const busyLoop = (async () => {
          const start = performance.now();
          const inFlight = new Set<Promise<void>>();
          for (let i = 0; busyRunning; i++) {
            const due = start + (i * 1000) / BUSY_RATE;
            const wait = due - performance.now();
            if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
            const p = call(pools[i % pools.length]!, busyKey!, 'amount=2000&currency=usd&source=tok_visa').then((o) => void busy.push(o));
            inFlight.add(p);
            void p.finally(() => inFlight.delete(p));
          }
          await Promise.all(inFlight);
        })();

        const ledger = await watchLedger(stack.etcd.endpoint, ETCD_PREFIX);
        const before = await readEtcdCounters(stack.etcd.endpoint);
        const rpcsBefore = await readEtcdRpcs(stack.etcd.endpoint);
        const ledgerRequestsBefore = await controlPlaneCounter(stack.adminUrl, 'keybrake_ledger_etcd_requests_total');
        const pids = { cp: [stack.controlPlane.child.pid!], dp: dataPlanes.map((dp) => dp.pid), etcd: [stack.etcd.pid] };
        const cpu = () => Object.fromEntries(Object.entries(pids).map(([name, list]) => [name, list.reduce((sum, pid) => sum + cpuSeconds(pid), 0)]));
        const cpuBefore = cpu();
        const benchCpuBefore = process.cpuUsage();
        const runWave = async (): Promise<{ outcomes: Outcome[]; ms: number }> => {
          const outcomes: Outcome[] = new Array(WAVE);
          let next = 0;
          const start = performance.now();
          await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
            for (let i = next++; i < WAVE; i = next++) outcomes[i] = await call(pools[i % planes]!, wave[i]!, `amount=2000&currency=usd&source=tok_visa&description=branch-${i}`);
          }));
          return { outcomes, ms: performance.now() - start };
        };
        const { outcomes, ms: waveMs } = await runWave();
        const etcd = diffEtcd(await readEtcdCounters(stack.etcd.endpoint), before);
        const ledgerPuts = ledger.puts();
        const cpuAfter = cpu();
        const benchCpu = process.cpuUsage(benchCpuBefore);
        const rpcsAfter = await readEtcdRpcs(stack.etcd.endpoint);
        const ledgerRequests = (await controlPlaneCounter(stack.adminUrl, 'keybrake_ledger_etcd_requests_total')) - ledgerRequestsBefore;
        const rpcs = [...rpcsAfter].map(([method, n]) => [method, n - (rpcsBefore.get(method) ?? 0)] as const).filter(([, n]) => n > 0);
        console.error(`  ${planes} data planes: CPU s during the wave: ${Object.entries(cpuAfter).map(([name, s]) => `${name} ${(s - cpuBefore[name]!).toFixed(1)}`).join(', ')}, bench ${((benchCpu.user + benchCpu.system) / 1e6).toFixed(1)}; etcd calls: ${rpcs.map(([m, n]) => `${m} ${n}`).join(', ')}`);
        await ledger.stop();
        // The same keys' second calls: leases held, policies known. What the proxying itself costs here.
        const warmCpuBefore = cpu();
        const { outcomes: warmOutcomes, ms: warmMs } = await runWave();
        const warmCpuAfter = cpu();
        busyRunning = false;
        await busyLoop;
        const productCpu = (after: Record<string, number>, before: Record<string, number>) => ['cp', 'dp', 'etcd'].reduce((sum, name) => sum + after[name]! - before[name]!, 0);
        const cpuPerCallUs = (seconds: number) => `${Math.round((seconds * 1e6) / WAVE)} µs`;
        const warm = summarise(warmOutcomes.map((o) => o.latencyMs));

        const latency = summarise(outcomes.map((o) => o.latencyMs));
        const ok = outcomes.filter((o) => o.status === 200).length;
        const per1000 = (n: number) => ((n * 1000) / WAVE).toFixed(1);
        const busyRefused = busy.filter((o) => o.status !== 200).length;
        const met = ok === WAVE && waveMs <= TARGET_WAVE_MS && latency.p99 <= TARGET_P99_MS && (ledgerRequests * 1000) / WAVE <= TARGET_TXNS_PER_1000 && busyRefused === 0;
        rows.push(
          `| ${planes} | ${ms(waveMs, 0)} (${thousands(Math.round((WAVE * 1000) / waveMs))}/s) | ${ms(latency.p50, 1)} / ${ms(latency.p99, 1)} / ${ms(latency.max, 0)} | ${statuses(outcomes)} | ${per1000(ledgerRequests)} / ${per1000(etcd.txns)} / ${per1000(ledgerPuts)} / ${per1000(etcd.revision)} | ${thousands(busy.length - busyRefused)} of ${thousands(busy.length)} answered 200${busyRefused > 0 ? ` (${statuses(busy.filter((o) => o.status !== 200))})` : ''} | ${ms(warmMs, 0)}, p50 ${ms(warm.p50, 1)} / p99 ${ms(warm.p99, 1)}, ${statuses(warmOutcomes)} | ${cpuPerCallUs(productCpu(cpuAfter, cpuBefore))} / ${cpuPerCallUs(productCpu(warmCpuAfter, warmCpuBefore))} | ${met ? 'met' : 'NOT met'} |`,
        );
        console.error(rows.at(-1));
      } finally {
        await Promise.all(pools.map((pool) => pool.close()));
        await Promise.all(dataPlanes.map((dp) => dp.stop()));
      }
    }
  } finally {
    await stack.stop();
  }
  const [load1] = loadavg();
  console.log(`\nbench:first-wave — ${thousands(WAVE)} new keys' first calls, ${IN_FLIGHT} in flight, ${thousands(PRESENT)} other keys present (${new Date().toISOString()}, ${cpus().length} cores, load ${load1!.toFixed(2)})\n`);
  console.log('| data planes | wave (first calls/s) | first call p50 / p99 / max | statuses | per 1,000 first grants: ledger etcd requests / all etcd txns (key lookups too) / ledger puts / etcd revisions | busy key meanwhile | the same keys’ second calls (leases held) | CPU per call, control plane + data planes + etcd: first / second | targets |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const row of rows) console.log(row);
  console.log(`\nTargets: all 2xx in ≤ ${TARGET_WAVE_MS / 1000} s, p99 ≤ ${TARGET_P99_MS} ms, ≤ ${TARGET_TXNS_PER_1000} ledger etcd requests (reads and transactions) per 1,000 first grants, no busy-key call refused.`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exitCode = 1;
});
