/**
 * npm run bench:fleet [-- <keys>] — Keybrake with a fleet's worth of keys: `keys` live vault
 * keys (default 100,000; 1,000,000 is the issue's target) issued in batches of 10,000, then,
 * against that keyspace:
 *   - etcd's size per live key after the product's own compaction and an `etcdctl defrag`;
 *   - control-plane cold start to serving, and a second replica's start;
 *   - data-plane start to ready, and its resident memory idle and after serving 1,000 distinct keys;
 *   - a never-seen key's first call through a data plane against a warmed key's call (p50/p99);
 *   - listing one run's 10,000 keys (every page) over HTTP;
 *   - a flood of forged vault keys: the lookups it causes, and a warmed key's latency meanwhile;
 *   - revocation to the data plane, for keys it holds and keys it never loaded (p99).
 * Real etcd (fsync on), PostgreSQL, control-plane and data-plane processes, a fixed Stripe-like
 * upstream; everything on this machine's two cores.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Etcd3 } from 'etcd3';
import { Pool } from 'undici';

import { createOperatorClient, type OperatorClient } from '../cli/operator-client.js';
import { findEtcdBinary, startEtcd } from '../dev/etcd-process.js';
import { freePort } from '../dev/free-port.js';
import { startPostgres } from '../dev/postgres-process.js';
import { generateTaggedVaultKey, vaultKeyTagKey } from '../core/secret-format.js';
import type { KeySpec } from '../gen/keybrake/v1/operator.js';
import { waitForReady } from '../test/support/data-plane.js';
import { killIfAlive, spawnKeybrake, type SpawnedKeybrake } from '../test/support/processes.js';
import { startListeningHelper } from './support/children.js';
import { withCleanup } from './support/cleanup.js';
import { BENCH_STRIPE_SECRET } from './support/keybrake-stack.js';
import { ms, summarise, thousands } from './support/stats.js';

const KEYS = Number(process.argv[2] ?? 100_000);
const BATCH = 10_000;
const CHARGE = 'amount=2000&currency=usd&description=fleet';

const spec = (label: string): KeySpec => ({
  vendor: 'stripe', label, allowedEndpoints: ['POST /v1/charges'], dailyCapMicros: 1_000_000_000_000, budgetMicros: 0, expiresInSeconds: 86_400, perCallEstimateMicros: 0,
});

function rssMb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match === null ? Number.NaN : Number(match[1]) / 1024;
}

async function stop(spawned: SpawnedKeybrake): Promise<void> {
  spawned.child.kill('SIGTERM');
  await Promise.race([spawned.exited(), new Promise((r) => setTimeout(r, 8000))]);
  killIfAlive(spawned.child.pid);
}

async function main(): Promise<void> {
  if (!Number.isSafeInteger(KEYS) || KEYS < BATCH) throw new Error(`keys must be a whole number of at least ${BATCH}`);
  await withCleanup(async (cleanup) => {
    const dir = await mkdtemp(join(tmpdir(), 'keybrake-fleet-'));
    await chmod(dir, 0o755);
    cleanup.add('temp dir', () => rm(dir, { recursive: true, force: true }));
    const etcdBinary = findEtcdBinary(process.env);
    if (etcdBinary === null) throw new Error('etcd not found (apt-get install etcd-server)');
    const etcd = await startEtcd({ binary: etcdBinary, dataDir: join(dir, 'etcd'), extraArgs: ['--quota-backend-bytes', String(8 * 1024 ** 3)] });
    cleanup.add('etcd', () => etcd.stop());
    const postgres = await startPostgres({ dataDir: join(dir, 'pg') });
    cleanup.add('PostgreSQL', () => postgres.stop());
    await postgres.createDatabase('keybrake');
    const etcdClient = new Etcd3({ hosts: [etcd.endpoint] });
    cleanup.add('etcd client', () => etcdClient.close());
    const dbSize = async () => Number((await etcdClient.maintenance.status()).dbSize);

    const adminToken = randomBytes(16).toString('hex');
    const dataplaneToken = randomBytes(16).toString('hex');
    const masterKey = randomBytes(32).toString('base64');
    const controlPlaneEnv = async () => ({
      KEYBRAKE_ETCD_ENDPOINTS: etcd.endpoint,
      KEYBRAKE_DATABASE_URL: postgres.url('keybrake'),
      KEYBRAKE_GRPC_ADDR: `127.0.0.1:${await freePort()}`,
      KEYBRAKE_ADMIN_ADDR: `127.0.0.1:${await freePort()}`,
      KEYBRAKE_ADMIN_TOKEN: adminToken,
      KEYBRAKE_MASTER_KEY: masterKey,
      KEYBRAKE_DATAPLANE_TOKEN: dataplaneToken,
      KEYBRAKE_ETCD_COMPACTION_INTERVAL: '10s',
    });
    /** A control plane started, and how long until it serves (gRPC listening and /readyz 200). */
    const startControlPlane = async (name: string) => {
      const env = await controlPlaneEnv();
      const started = performance.now();
      const spawned = spawnKeybrake(['control-plane'], env);
      cleanup.add(name, () => stop(spawned));
      await spawned.waitForOutput(/control plane listening/, 120_000);
      await waitForReady(`http://${env.KEYBRAKE_ADMIN_ADDR}/readyz`, spawned, 120_000);
      return { spawned, env, startMs: performance.now() - started, grpc: env.KEYBRAKE_GRPC_ADDR, admin: `http://${env.KEYBRAKE_ADMIN_ADDR}` };
    };

    let cp = await startControlPlane('control plane');
    let client: OperatorClient = createOperatorClient(cp.grpc, adminToken);
    cleanup.add('operator client', () => client.close());
    await client.setVendorCredential({ vendor: 'stripe', secret: BENCH_STRIPE_SECRET, accountSid: '' });
    const emptyDbBytes = await dbSize();

    // ---- issuance ----------------------------------------------------------------------------
    const batchMs: number[] = [];
    const firstBatch: { vaultKey: string; id: string }[] = [];
    for (let b = 0; b < KEYS / BATCH; b++) {
      const started = performance.now();
      const { issued } = await client.issueKeys({ specs: Array.from({ length: BATCH }, () => spec(`fleet/run-${b}`)) });
      batchMs.push(performance.now() - started);
      if (b === 0) firstBatch.push(...issued.map((i) => ({ vaultKey: i.vaultKey, id: i.key!.id })));
      if ((b + 1) % 10 === 0) console.error(`issued ${thousands((b + 1) * BATCH)} keys (last batch ${ms(batchMs.at(-1)!, 0)})`);
    }
    const issuance = summarise(batchMs);

    // ---- etcd size ---------------------------------------------------------------------------
    const revisionAfterIssue = Number((await etcdClient.maintenance.status()).header.revision);
    const compactedKey = 'keybrake.compaction/last';
    const compactedRevision = async () => {
      const text = await etcdClient.get(compactedKey).string();
      const parsed = text === null ? 0 : Number((JSON.parse(text) as { revision?: number }).revision ?? 0);
      return Number.isFinite(parsed) ? parsed : 0;
    };
    for (let i = 0; i < 120 && (await compactedRevision()) < revisionAfterIssue; i++) await new Promise((r) => setTimeout(r, 1000));
    const beforeDefrag = await dbSize();
    // What `etcdctl defrag` does (Debian's etcd-server package has no etcdctl).
    const defragError = await etcdClient.maintenance.defragment().then(() => null, (error: unknown) => (error instanceof Error ? error.message : String(error)));
    const afterDefrag = await dbSize();
    const compacted = (await compactedRevision()) >= revisionAfterIssue;

    // ---- control-plane restart and a second replica -----------------------------------------
    client.close();
    await stop(cp.spawned);
    cp = await startControlPlane('control plane (restarted)');
    client = createOperatorClient(cp.grpc, adminToken);
    const second = await startControlPlane('second control-plane replica');

    // ---- a data plane ------------------------------------------------------------------------
    const upstream = await startListeningHelper('upstream-server.ts', []);
    cleanup.add('upstream', () => upstream.process.stop());
    const dpPort = await freePort();
    const spoolDir = join(dir, 'spool');
    await mkdir(spoolDir, { recursive: true });
    const dpStarted = performance.now();
    const dp = spawnKeybrake(['data-plane'], {
      KEYBRAKE_CONTROL_PLANE: `${cp.grpc},${second.grpc}`,
      KEYBRAKE_DATAPLANE_TOKEN: dataplaneToken,
      KEYBRAKE_PROXY_ADDR: `127.0.0.1:${dpPort}`,
      KEYBRAKE_DATAPLANE_ID: 'dp-fleet',
      KEYBRAKE_AUDIT_SPOOL_DIR: spoolDir,
      KEYBRAKE_UPSTREAM_STRIPE: `http://127.0.0.1:${upstream.port}`,
      KEYBRAKE_UPSTREAM_TWILIO: 'http://127.0.0.1:9',
      KEYBRAKE_UPSTREAM_RESEND: 'http://127.0.0.1:9',
      KEYBRAKE_LOG_LEVEL: 'warn',
    });
    cleanup.add('data plane', () => stop(dp));
    const dpOrigin = `http://127.0.0.1:${dpPort}`;
    await waitForReady(`${dpOrigin}/readyz`, dp, 60_000);
    const dpStartMs = performance.now() - dpStarted;
    const pool = new Pool(dpOrigin, { connections: 16 });
    cleanup.add('client pool', () => pool.close());
    const call = async (vaultKey: string): Promise<{ status: number; ms: number }> => {
      const started = performance.now();
      const response = await pool.request({ method: 'POST', path: '/v1/charges', headers: { authorization: `Bearer ${vaultKey}`, 'content-type': 'application/x-www-form-urlencoded' }, body: CHARGE });
      await response.body.text();
      return { status: response.statusCode, ms: performance.now() - started };
    };
    await new Promise((r) => setTimeout(r, 2000));
    const idleRss = rssMb(dp.child.pid!);

    // First calls of never-seen keys against calls of a warmed key, one at a time, interleaved.
    const warm = firstBatch[0]!.vaultKey;
    for (let i = 0; i < 50; i++) await call(warm);
    const firstCalls: number[] = [];
    const warmCalls: number[] = [];
    const statuses = new Map<number, number>();
    for (let i = 1; i <= 1000; i++) {
      const first = await call(firstBatch[i]!.vaultKey);
      const again = await call(warm);
      statuses.set(first.status, (statuses.get(first.status) ?? 0) + 1);
      firstCalls.push(first.ms);
      warmCalls.push(again.ms);
    }
    const first = summarise(firstCalls);
    const warmed = summarise(warmCalls);
    await new Promise((r) => setTimeout(r, 1000));
    const servingRss = rssMb(dp.child.pid!);

    // ---- listing one run's keys ---------------------------------------------------------------
    const listStarted = performance.now();
    let listed = 0;
    let pages = 0;
    for (let cursor: string | null = ''; cursor !== null; pages++) {
      const url = `${cp.admin}/vault/keys?label=${encodeURIComponent('fleet/run-3')}&limit=1000${cursor === '' ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
      const response = await fetch(url, { headers: { authorization: `Bearer ${adminToken}` } });
      const body = (await response.json()) as { keys: unknown[]; next_cursor: string | null };
      listed += body.keys.length;
      cursor = body.next_cursor;
    }
    const listMs = performance.now() - listStarted;

    // ---- a flood of forged keys --------------------------------------------------------------
    const lookups = async () => {
      const text = await (await fetch(`${cp.admin}/metrics`)).text();
      return Number(/^keybrake_key_lookups_total (\d+)/m.exec(text)?.[1] ?? 0);
    };
    const forgedTag = vaultKeyTagKey(randomBytes(32));
    const lookupsBefore = await lookups();
    let flooding = true;
    let forgedSent = 0;
    const flood = (async () => {
      const forgedPool = new Pool(dpOrigin, { connections: 8 });
      while (flooding) {
        await Promise.all(Array.from({ length: 32 }, async () => {
          const response = await forgedPool.request({ method: 'POST', path: '/v1/charges', headers: { authorization: `Bearer ${generateTaggedVaultKey(forgedTag)}` }, body: CHARGE });
          await response.body.text();
          forgedSent++;
        }));
      }
      await forgedPool.close();
    })();
    const underFlood: number[] = [];
    for (let i = 0; i < 500; i++) underFlood.push((await call(warm)).ms);
    flooding = false;
    await flood;
    const lookupsDuringFlood = (await lookups()) - lookupsBefore;
    const flooded = summarise(underFlood);

    // ---- revocation ---------------------------------------------------------------------------
    const revocationMs = async (vaultKey: string, id: string): Promise<number> => {
      await client.revokeKey({ id });
      const started = performance.now();
      for (;;) {
        const response = await pool.request({ method: 'POST', path: '/v1/charges', headers: { authorization: `Bearer ${vaultKey}` }, body: CHARGE });
        await response.body.text();
        if (response.statusCode === 401) return performance.now() - started;
        if (performance.now() - started > 5000) return Number.POSITIVE_INFINITY;
      }
    };
    const held = summarise(await sequential(firstBatch.slice(1, 101), ({ vaultKey, id }) => revocationMs(vaultKey, id)));
    const neverLoaded = summarise(await sequential(firstBatch.slice(2001, 2101), ({ vaultKey, id }) => revocationMs(vaultKey, id)));

    // ---- report -------------------------------------------------------------------------------
    const perKey = (bytes: number) => `${Math.round((bytes - emptyDbBytes) / KEYS)} B`;
    console.log(`\nbench:fleet — ${thousands(KEYS)} live keys (${new Date().toISOString()})\n`);
    console.log('| figure | measured | target |');
    console.log('| --- | --- | --- |');
    console.log(`| issuance, one batch of 10,000 | p50 ${ms(issuance.p50, 0)}, max ${ms(issuance.max, 0)} (${issuance.count} batches) | ≤ 2 s |`);
    console.log(`| etcd size per live key | ${perKey(afterDefrag)} after compaction${compacted ? '' : ' (NOT seen)'} and defrag (${perKey(beforeDefrag)} before defrag; db ${thousands(Math.round(afterDefrag / 1024 / 1024))} MiB${defragError === null ? '' : `; defrag failed: ${defragError}`}) | ≤ 700 B |`);
    console.log(`| control-plane restart to serving | ${ms(cp.startMs, 0)} | ≤ 30 s |`);
    console.log(`| second replica's start to serving | ${ms(second.startMs, 0)} | ≤ 30 s |`);
    console.log(`| data-plane start to ready | ${ms(dpStartMs, 0)} | ≤ 5 s |`);
    console.log(`| data-plane RSS idle / after 1,000 distinct keys | ${idleRss.toFixed(0)} / ${servingRss.toFixed(0)} MB (+${(servingRss - idleRss).toFixed(0)} MB) | ≤ +100 MB |`);
    console.log(`| first call of a never-seen key vs a warmed key | p50 ${ms(first.p50)} vs ${ms(warmed.p50)}, p99 ${ms(first.p99)} vs ${ms(warmed.p99)} (added p99 ${ms(first.p99 - warmed.p99)}); statuses ${JSON.stringify(Object.fromEntries(statuses))} | added ≤ 1 ms p99 |`);
    console.log(`| listing one label's 10,000 keys | ${thousands(listed)} keys in ${pages} pages, ${ms(listMs, 0)} | ≤ 2 s |`);
    console.log(`| forged-key flood | ${thousands(forgedSent)} forged calls, ${lookupsDuringFlood} lookups; warmed key p50/p99 ${ms(flooded.p50)} / ${ms(flooded.p99)} (without: ${ms(warmed.p50)} / ${ms(warmed.p99)}) | no lookup per forged key; ≤ 10 % slower |`);
    console.log(`| revocation to a data plane: held keys / never loaded | p50 ${ms(held.p50)} / ${ms(neverLoaded.p50)}, p99 ${ms(held.p99)} / ${ms(neverLoaded.p99)} | p99 ≤ 100 ms |`);
  });
}

async function sequential<T, R>(items: readonly T[], run: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const item of items) out.push(await run(item));
  return out;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
