/**
 * npm run bench:proxy — what the data plane costs on the request path. One simulated Stripe
 * upstream (its own process) reached four ways in one run:
 *   direct         the upstream itself
 *   nginx          nginx (one process) as a reverse proxy with upstream keep-alive; skipped if absent
 *   bare proxy     node:http + undici Pool pass-through (bench/support/bare-proxy.ts): the baseline
 *   data plane     a real `keybrake data-plane` process, with a real control plane, etcd, PostgreSQL
 * Each target: a 2 s warm-up, then saturation (wrk, 10 connections) and a fixed open-loop rate
 * of 1,000 req/s (bench/support/load-generator.ts, its own process), 10 s each. The 10 s are
 * taken as 5 slices of 2 s, the targets taking turns, so that a burst of load from elsewhere on
 * the machine spreads over all targets instead of falsifying one of them.
 * Targets: data plane >= 0.85x the bare pass-through's throughput; <= 0.3 ms added p50 at
 * 1,000 req/s (versus direct). Next to the verdicts, the room the throughput target leaves per
 * call and the least extra work the contract asks for (bench/support/mandated-work.ts).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

import { request } from 'undici';

import { startListeningHelper } from './support/children.js';
import { withCleanup } from './support/cleanup.js';
import { cpuLayout, pinProcess, type CpuLayout } from './support/cpus.js';
import { processTreeSeconds, waitForQuiet, watchInterference, type Interference } from './support/interference.js';
import { benchKeySpec, startKeybrakeStack } from './support/keybrake-stack.js';
import { CHARGE_FORM_BODY, chargeShape, hasWrk, runGenerator, runSaturation, type RequestShape, type SaturationResult } from './support/load.js';
import type { LoadResult } from './support/load-generator.js';
import { measureMandatedWork } from './support/mandated-work.js';
import { hasNginx, NGINX_BIN, startNginx } from './support/nginx.js';
import { codeVersion } from './support/provenance.js';
import { markdownTable, mergedPercentile, ms, plusMs, textTable, thousands } from './support/stats.js';
import { CHARGE_BODY } from './support/upstream-server.js';

const CONNECTIONS = 10;
const WARMUP_SECONDS = 2;
/** 5 slices x 2 s = 10 s of saturation and 10 s at the fixed rate per target. */
const SLICES = 5;
const SLICE_SECONDS = 2;
const RATE = 1000;
/** Connections the fixed-rate generator may open (it opens more only while answers are outstanding). */
const RATE_CONNECTIONS = 32;
/** Sent one by one before each fixed-rate slice (connections, JIT), not measured. */
const RATE_WARMUP_REQUESTS = 50;
const TARGET_THROUGHPUT_RATIO = 0.85;
const TARGET_ADDED_P50_MS = 0.3;
/** CPU that processes outside the benchmark (and the hypervisor) may take, in % of a core, before a result is flagged. */
const INTERFERENCE_WARNING_PERCENT = 15;


interface Target {
  readonly name: string;
  readonly origin: string;
  readonly authorization: string;
  /** The process that does this target's work (the upstream itself for direct). */
  readonly pid: number;
  /** Processes working behind it (the data plane's control plane, etcd, PostgreSQL). */
  readonly backendPids?: readonly number[];
}

interface CpuUse {
  readonly proxySeconds: number;
  readonly backendSeconds: number;
}

interface Slices {
  readonly saturation: SaturationResult[];
  readonly saturationCpu: CpuUse[];
  readonly rate: LoadResult[];
  readonly saturationInterference: Interference[];
  readonly rateInterference: Interference[];
}

interface Measured {
  readonly target: Target;
  readonly saturation: {
    requests: number;
    requestsPerSecond: number;
    p50: number;
    p99: number;
    sliceMin: number;
    sliceMax: number;
    failures: string[];
    /** CPU time of the target's process per request, and of its backend processes. */
    cpuMicrosPerRequest: number;
    backendCpuMicrosPerRequest: number;
  };
  readonly rate: { sent: number; ok: number; achieved: number; p50: number; p99: number; max: number; worstLagP99: number; failures: string[] };
  readonly interference: { saturation: Interference; rate: Interference };
}

const progress = (text: string) => process.stderr.write(`${text}\n`);

function shapeFor(target: Target): RequestShape {
  return chargeShape(target.authorization);
}

/** One request before any load: the target must answer with the upstream's charge. */
async function checkTarget(target: Target): Promise<void> {
  const response = await request(`${target.origin}/v1/charges`, {
    method: 'POST',
    headers: { authorization: target.authorization, 'stripe-version': '2024-06-20', 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': `check-${randomBytes(6).toString('hex')}` },
    body: CHARGE_FORM_BODY,
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  const body = Buffer.from(await response.body.arrayBuffer());
  if (response.statusCode !== 200 || response.headers['request-id'] === undefined || !body.equals(CHARGE_BODY)) {
    throw new Error(`${target.name} (${target.origin}) did not pass the upstream's charge through: ${response.statusCode} ${JSON.stringify(response.headers)} ${body.toString('utf8').slice(0, 300)}`);
  }
}

const nonceFor = (target: Target, what: string) => `${target.name.replace(/\W+/g, '_')}-${what}-${randomBytes(4).toString('hex')}`;

function meanInterference(values: readonly Interference[]): Interference {
  const mean = (pick: (i: Interference) => number) => values.reduce((sum, i) => sum + pick(i), 0) / values.length;
  return { otherPercentOfCore: mean((i) => i.otherPercentOfCore), stealPercentOfCore: mean((i) => i.stealPercentOfCore) };
}

function aggregate(target: Target, slices: Slices): Measured {
  const sat = slices.saturation;
  const requests = sat.reduce((sum, r) => sum + r.requests, 0);
  const seconds = sat.reduce((sum, r) => sum + r.seconds, 0);
  const satRuns = sat.map((r) => ({ grid: r.grid, count: r.requests }));
  const perSlice = sat.map((r) => r.requestsPerSecond);
  const rate = slices.rate;
  const rateRuns = rate.map((r) => ({ grid: r.grid, count: r.latency.count }));
  const rateFailures = rate
    .filter((r) => r.ok !== r.sent)
    .map((r) => `${r.ok} of ${r.sent} answered 2xx (statuses ${JSON.stringify(r.statuses)}, errors ${r.errors}${r.firstError === null ? '' : `: ${r.firstError}`})`);
  return {
    target,
    saturation: {
      requests,
      requestsPerSecond: requests / seconds,
      p50: mergedPercentile(satRuns, 50),
      p99: mergedPercentile(satRuns, 99),
      sliceMin: Math.min(...perSlice),
      sliceMax: Math.max(...perSlice),
      failures: sat.filter((r) => r.failures > 0).map((r) => r.failureDetail),
      cpuMicrosPerRequest: (slices.saturationCpu.reduce((sum, c) => sum + c.proxySeconds, 0) / requests) * 1e6,
      backendCpuMicrosPerRequest: (slices.saturationCpu.reduce((sum, c) => sum + c.backendSeconds, 0) / requests) * 1e6,
    },
    rate: {
      sent: rate.reduce((sum, r) => sum + r.sent, 0),
      ok: rate.reduce((sum, r) => sum + r.ok, 0),
      achieved: rate.reduce((sum, r) => sum + r.completed, 0) / (rate.reduce((sum, r) => sum + r.elapsedMs, 0) / 1000),
      p50: mergedPercentile(rateRuns, 50),
      p99: mergedPercentile(rateRuns, 99),
      max: Math.max(...rate.map((r) => r.latency.max)),
      worstLagP99: Math.max(...rate.map((r) => r.scheduleLag?.p99 ?? Number.NaN)),
      failures: rateFailures,
    },
    interference: { saturation: meanInterference(slices.saturationInterference), rate: meanInterference(slices.rateInterference) },
  };
}

/** Before each slice: the Keybrake processes must have finished what the previous slices left them. */
const QUIET_LIMIT_MS = 10_000;

async function measureAll(dir: string, targets: readonly Target[], layout: CpuLayout, notes: string[]): Promise<Measured[]> {
  const keybrakePids = targets.flatMap((t) => (t.backendPids === undefined ? [] : [t.pid, ...t.backendPids]));
  let quietWaitMs = 0;
  let neverQuiet = 0;
  const settle = async () => {
    if (keybrakePids.length === 0) return;
    const waited = await waitForQuiet(keybrakePids, QUIET_LIMIT_MS);
    if (waited === null) neverQuiet++;
    else quietWaitMs += waited;
  };
  const slices = new Map<Target, Slices>(targets.map((t) => [t, { saturation: [], saturationCpu: [], rate: [], saturationInterference: [], rateInterference: [] }]));
  for (const target of targets) {
    progress(`  ${target.name}: warm-up ${WARMUP_SECONDS} s`);
    await runSaturation(dir, target.origin, shapeFor(target), CONNECTIONS, WARMUP_SECONDS, nonceFor(target, 'warm'), layout.load);
  }
  // Round-robin slices, each round starting with the next target.
  for (let round = 0; round < SLICES; round++) {
    progress(`  saturation slice ${round + 1} of ${SLICES} (${SLICE_SECONDS} s per target)`);
    for (let k = 0; k < targets.length; k++) {
      const target = targets[(round + k) % targets.length]!;
      await settle();
      const cpu = () => ({ proxy: processTreeSeconds(target.pid), backend: (target.backendPids ?? []).reduce((sum, pid) => sum + processTreeSeconds(pid), 0) });
      const before = cpu();
      const { result, interference } = await watchInterference(() =>
        runSaturation(dir, target.origin, shapeFor(target), CONNECTIONS, SLICE_SECONDS, nonceFor(target, 'sat'), layout.load),
      );
      const after = cpu();
      slices.get(target)!.saturation.push(result);
      slices.get(target)!.saturationCpu.push({ proxySeconds: after.proxy - before.proxy, backendSeconds: after.backend - before.backend });
      slices.get(target)!.saturationInterference.push(interference);
    }
  }
  for (let round = 0; round < SLICES; round++) {
    progress(`  fixed-rate slice ${round + 1} of ${SLICES} (${thousands(RATE)} req/s, ${SLICE_SECONDS} s per target)`);
    for (let k = 0; k < targets.length; k++) {
      const target = targets[(round + k) % targets.length]!;
      await settle();
      const { result, interference } = await watchInterference(() =>
        runGenerator(
          {
            origin: target.origin,
            ...shapeFor(target),
            mode: 'rate',
            rate: RATE,
            connections: RATE_CONNECTIONS,
            durationMs: SLICE_SECONDS * 1000,
            idPrefix: nonceFor(target, 'rate'),
            warmupRequests: RATE_WARMUP_REQUESTS,
          },
          layout.load,
        ),
      );
      slices.get(target)!.rate.push(result);
      slices.get(target)!.rateInterference.push(interference);
    }
  }
  notes.push(
    `before each slice, waited for the data plane, control plane, etcd and PostgreSQL to go idle (< 5% of a core): ${(quietWaitMs / 1000).toFixed(1)} s in all` +
      `${neverQuiet > 0 ? `; ${neverQuiet} times they were still busy after ${QUIET_LIMIT_MS / 1000} s` : ''}`,
  );
  return targets.map((target) => aggregate(target, slices.get(target)!));
}

function versionOf(binary: string, args: string[]): string {
  const result = spawnSync(binary, args, { encoding: 'utf8' });
  return `${result.stdout ?? ''}${result.stderr ?? ''}`.split('\n')[0]!.trim();
}

async function main(): Promise<void> {
  await withCleanup(async (cleanup) => {
    const dir = await mkdtemp(join(tmpdir(), 'keybrake-bench-proxy-'));
    cleanup.add(`temp dir ${dir}`, () => rm(dir, { recursive: true, force: true }));
    // PostgreSQL runs as the postgres user when we are root: it must traverse this directory.
    await chmod(dir, 0o755);

    const notes: string[] = [];
    const layout = cpuLayout();
    const upstream = await startListeningHelper('upstream-server.ts', [], layout.load);
    cleanup.add(`simulated upstream (pid ${upstream.process.pid})`, () => upstream.process.stop());
    const upstreamOrigin = `http://127.0.0.1:${upstream.port}`;
    const targets: Target[] = [{ name: 'direct', origin: upstreamOrigin, authorization: 'Bearer sk_test_direct', pid: upstream.process.pid }];

    if (hasNginx()) {
      const nginx = await startNginx(dir, upstream.port);
      cleanup.add(`nginx (pid ${nginx.pid})`, () => nginx.stop());
      pinProcess(nginx.pid, layout.proxy);
      targets.push({ name: 'nginx', origin: `http://127.0.0.1:${nginx.port}`, authorization: 'Bearer sk_test_nginx', pid: nginx.pid });
    } else {
      notes.push('nginx: not installed (apt-get install nginx)');
      progress('nginx: not installed (apt-get install nginx)');
    }

    const bare = await startListeningHelper('bare-proxy.ts', [upstreamOrigin], layout.proxy);
    cleanup.add(`bare pass-through (pid ${bare.process.pid})`, () => bare.process.stop());
    targets.push({ name: 'bare proxy', origin: `http://127.0.0.1:${bare.port}`, authorization: 'Bearer sk_test_bare', pid: bare.process.pid });

    progress('starting etcd, PostgreSQL, control plane, data plane…');
    const stack = await startKeybrakeStack(cleanup, dir);
    const { issued } = await stack.client.issueKey({ spec: benchKeySpec('bench/proxy') });
    if (issued === undefined) throw new Error('IssueKey returned no key');
    const dataPlane = await stack.startDataPlane('dp-bench-proxy', upstreamOrigin);
    pinProcess(dataPlane.pid, layout.proxy);
    targets.push({ name: 'data plane', origin: dataPlane.origin, authorization: `Bearer ${issued.vaultKey}`, pid: dataPlane.pid, backendPids: stack.backendPids });

    // The key reaches the data plane through its stream, possibly after the snapshot: allow it a moment (bounded).
    for (let attempt = 0; ; attempt++) {
      try {
        for (const target of targets) await checkTarget(target);
        break;
      } catch (error) {
        if (attempt >= 50) {
          const output = dataPlane.process.output().slice(-3000);
          throw new Error(`${error instanceof Error ? error.message : String(error)}${output === '' ? '' : `\ndata plane output:\n${output}`}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    const wrk = hasWrk();
    if (!wrk) {
      notes.push('wrk: not installed (apt-get install wrk); saturation measured with the Node load generator instead (more CPU per request than wrk, so lower req/s)');
      progress(notes[notes.length - 1]!);
    }

    const started = performance.now();
    const results = await measureAll(dir, targets, layout, notes);
    const measuringSeconds = (performance.now() - started) / 1000;

    const byName = (name: string) => results.find((r) => r.target.name === name)!;
    const direct = byName('direct');
    const barePass = byName('bare proxy');
    const dp = byName('data plane');

    const header = ['target', 'req/s @10 conns', 'vs bare', 'p50 / p99 @10 conns', `p50 / p99 @${thousands(RATE)}/s`, 'added p50 / p99 vs direct'];
    const rows = results.map((r) => [
      r.target.name,
      thousands(r.saturation.requestsPerSecond),
      `${(r.saturation.requestsPerSecond / barePass.saturation.requestsPerSecond).toFixed(2)}x`,
      `${ms(r.saturation.p50)} / ${ms(r.saturation.p99)}`,
      `${ms(r.rate.p50)} / ${ms(r.rate.p99)}`,
      r === direct ? '—' : `${plusMs(r.rate.p50 - direct.rate.p50)} / ${plusMs(r.rate.p99 - direct.rate.p99)}`,
    ]);

    const date = new Date().toISOString().slice(0, 10);
    const cpu = cpus();
    const machine = `${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}`;
    const nginxVersion = hasNginx() ? versionOf(NGINX_BIN, ['-v']).replace('nginx version: ', '') : 'nginx not installed';
    console.log(`\nbench:proxy — ${date}, ${machine}, ${nginxVersion}; Keybrake ${codeVersion()}`);
    console.log(
      `  saturation: ${wrk ? 'wrk, 1 thread' : 'Node load generator (wrk not installed)'}, ${CONNECTIONS} connections; fixed rate: open-loop Node/undici generator, ${thousands(RATE)} req/s. ` +
        `Per target ${SLICES * SLICE_SECONDS} s of each (${SLICES} slices of ${SLICE_SECONDS} s, targets taking turns) after a ${WARMUP_SECONDS} s warm-up.`,
    );
    console.log(`  POST /v1/charges, ${CHARGE_FORM_BODY.length}-byte form body, unique Idempotency-Key per request; the upstream answers a ${CHARGE_BODY.length}-byte charge.`);
    console.log(`  The load generator, the upstream and the proxy (and, idle, etcd, PostgreSQL and the control plane) share the ${cpu.length} cores: ${layout.description}.`);
    console.log(
      `  Latency: ${wrk ? "wrk's per-request latency" : "the Node generator's, from handing the request to undici to the body's last byte,"} at saturation; ` +
        "at the fixed rate, from handing the request to undici to the body's last byte.",
    );
    console.log('  "added" is the difference of the percentiles (target minus direct), not a percentile of differences.\n');
    console.log(
      textTable(header, rows)
        .split('\n')
        .map((line) => `  ${line}`)
        .join('\n'),
    );

    console.log('');
    const other = (i: Interference) => `${i.otherPercentOfCore.toFixed(0)}% / ${i.stealPercentOfCore.toFixed(0)}%`;
    for (const r of results) {
      const problems = [...r.saturation.failures.map((f) => `saturation failures: ${f}`), ...r.rate.failures.map((f) => `fixed rate: ${f}`)];
      console.log(
        `  ${r.target.name.padEnd(11)} saturation: ${thousands(r.saturation.requests)} requests, ${thousands(r.saturation.sliceMin)}–${thousands(r.saturation.sliceMax)} req/s per slice, ` +
          `CPU ${r.saturation.cpuMicrosPerRequest.toFixed(0)} µs/request${r.target.backendPids === undefined ? '' : ` (+ ${r.saturation.backendCpuMicrosPerRequest.toFixed(0)} µs in control plane, etcd, PostgreSQL)`}; ` +
          `fixed rate: ${thousands(r.rate.sent)} sent, ${thousands(r.rate.achieved)} req/s achieved, max ${ms(r.rate.max)}, send lag p99 ${ms(r.rate.worstLagP99)} (worst slice); ` +
          `${problems.length === 0 ? 'all 2xx' : problems.join('; ')}; ` +
          `others / steal: ${other(r.interference.saturation)} (saturation), ${other(r.interference.rate)} (fixed rate) of a core`,
      );
    }

    const ratio = dp.saturation.requestsPerSecond / barePass.saturation.requestsPerSecond;
    const addedP50 = dp.rate.p50 - direct.rate.p50;
    console.log('');
    const cpuRatio = barePass.saturation.cpuMicrosPerRequest / dp.saturation.cpuMicrosPerRequest;
    console.log(
      `  target: data plane >= ${TARGET_THROUGHPUT_RATIO}x bare pass-through throughput: ${ratio >= TARGET_THROUGHPUT_RATIO ? 'met' : 'NOT met'} (${ratio.toFixed(2)}x; ` +
        `by CPU per request, which load from elsewhere disturbs less: ${cpuRatio.toFixed(2)}x)`,
    );
    console.log(`  target: <= ${TARGET_ADDED_P50_MS} ms added p50 at ${thousands(RATE)} req/s: ${addedP50 <= TARGET_ADDED_P50_MS ? 'met' : 'NOT met'} (${plusMs(addedP50)})`);
    // What the targets leave room for: the data plane's extra CPU per call at 0.85x, against
    // the least extra work the contract asks for, measured in-process with hot caches.
    const mandated = await measureMandatedWork();
    const budgetMicros = barePass.saturation.cpuMicrosPerRequest * (1 / TARGET_THROUGHPUT_RATIO - 1);
    console.log(
      `  room: at ${TARGET_THROUGHPUT_RATIO}x the data plane may spend ${budgetMicros.toFixed(1)} µs per call more than the bare pass-through (it spends ${(dp.saturation.cpuMicrosPerRequest - barePass.saturation.cpuMicrosPerRequest).toFixed(1)}); ` +
        `the contract's least extra work, in-process with hot caches, is ${mandated.totalMicros.toFixed(1)} µs ` +
        `(${Object.entries(mandated.stages).map(([stage, us]) => `${stage} ${us.toFixed(2)}`).join(', ')}; bench/support/mandated-work.ts)`,
    );
    if (results.some((r) => r.saturation.failures.length > 0 || r.rate.failures.length > 0)) {
      console.log('  WARNING: some requests failed (see above); the numbers are not comparable.');
    }
    const disturbed = results.filter((r) =>
      [r.interference.saturation, r.interference.rate].some((i) => i.otherPercentOfCore + i.stealPercentOfCore > INTERFERENCE_WARNING_PERCENT),
    );
    if (disturbed.length > 0) {
      console.log(
        `  WARNING: processes outside this benchmark (or the hypervisor) took more than ${INTERFERENCE_WARNING_PERCENT}% of a core on average while measuring ` +
          `${disturbed.map((r) => r.target.name).join(', ')}: run again on a quiet machine before quoting these numbers.`,
      );
    }
    for (const note of notes) console.log(`  note: ${note}`);
    console.log(`  (measuring took ${measuringSeconds.toFixed(0)} s)`);

    console.log('\nFor the README:\n');
    console.log(
      `${date}, ${cpu.length} cores, Node ${process.version.replace(/^v/, '')}, ${nginxVersion}, Keybrake ${codeVersion()}; load generator, upstream and proxy on the same machine (${layout.description}).\n`,
    );
    console.log(markdownTable(header, rows));
  });
}

await main();
