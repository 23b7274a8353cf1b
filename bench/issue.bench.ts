/**
 * npm run bench:issue — batch issuance: 10,000 vault keys in one gRPC call, side by side with
 * the same keys issued in calls of 100 and one by one. A real etcd (fsync on), PostgreSQL and
 * one control-plane process; the client is this process.
 * Target (issue 2): 10,000 keys in one call in <= 2 s on the 2-core reference machine.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

import { createOperatorClient } from '../cli/operator-client.js';
import { findEtcdBinary, startEtcd } from '../dev/etcd-process.js';
import { freePort } from '../dev/free-port.js';
import { startPostgres } from '../dev/postgres-process.js';
import type { KeySpec } from '../gen/keybrake/v1/operator.js';
import { killIfAlive, spawnKeybrake } from '../test/support/processes.js';
import { keepRunningWhenOutputCloses } from './support/cleanup.js';

const BATCH = 10_000;
const ROUNDS = 3;

const spec = (i: number): KeySpec => ({
  vendor: 'stripe',
  label: `bench/branch-${i}`,
  allowedEndpoints: ['POST /v1/charges'],
  dailyCapMicros: 10_990_000,
  budgetMicros: 0,
  expiresInSeconds: 7200,
  perCallEstimateMicros: 0,
});

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'keybrake-bench-'));
  await chmod(dir, 0o755);
  const etcdBinary = findEtcdBinary(process.env);
  if (etcdBinary === null) throw new Error('etcd not found (apt-get install etcd-server)');
  const etcd = await startEtcd({ binary: etcdBinary, dataDir: join(dir, 'etcd') });
  const postgres = await startPostgres({ dataDir: join(dir, 'pg') });
  await postgres.createDatabase('keybrake');
  const adminToken = randomBytes(16).toString('hex');
  const grpcPort = await freePort();
  const controlPlane = spawnKeybrake(['control-plane'], {
    KEYBRAKE_ETCD_ENDPOINTS: etcd.endpoint,
    KEYBRAKE_DATABASE_URL: postgres.url('keybrake'),
    KEYBRAKE_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
    KEYBRAKE_ADMIN_ADDR: `127.0.0.1:${await freePort()}`,
    KEYBRAKE_ADMIN_TOKEN: adminToken,
    KEYBRAKE_MASTER_KEY: randomBytes(32).toString('base64'),
    KEYBRAKE_DATAPLANE_TOKEN: randomBytes(16).toString('hex'),
  });
  const client = createOperatorClient(`127.0.0.1:${grpcPort}`, adminToken);
  try {
    await controlPlane.waitForOutput(/control plane listening/, 30_000);
    // Warm up connections and JIT.
    await client.issueKeys({ specs: Array.from({ length: 500 }, (_, i) => spec(i)) });

    const results: { name: string; keysPerSecond: number; detail: string }[] = [];
    const batchTimes: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const specs = Array.from({ length: BATCH }, (_, i) => spec(i));
      const start = performance.now();
      const { issued } = await client.issueKeys({ specs });
      const ms = performance.now() - start;
      if (issued.length !== BATCH) throw new Error(`expected ${BATCH} keys, got ${issued.length}`);
      batchTimes.push(ms);
    }
    batchTimes.sort((a, b) => a - b);
    const median = batchTimes[Math.floor(ROUNDS / 2)]!;
    results.push({ name: `1 call x ${BATCH} keys`, keysPerSecond: (BATCH / median) * 1000, detail: `median ${median.toFixed(0)} ms, best ${batchTimes[0]!.toFixed(0)} ms of ${ROUNDS}` });

    {
      const start = performance.now();
      for (let call = 0; call < 100; call++) await client.issueKeys({ specs: Array.from({ length: 100 }, (_, i) => spec(i)) });
      const ms = performance.now() - start;
      results.push({ name: '100 calls x 100 keys', keysPerSecond: (10_000 / ms) * 1000, detail: `${ms.toFixed(0)} ms` });
    }
    {
      const n = 500;
      const start = performance.now();
      for (let i = 0; i < n; i++) await client.issueKey({ spec: spec(i) });
      const ms = performance.now() - start;
      results.push({ name: `${n} calls x 1 key`, keysPerSecond: (n / ms) * 1000, detail: `${ms.toFixed(0)} ms (${(ms / n).toFixed(2)} ms per call)` });
    }

    const base = results[0]!.keysPerSecond;
    console.log(`\nbench:issue — ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, Node ${process.version}, etcd fsync on`);
    for (const r of results) {
      console.log(`  ${r.name.padEnd(24)} ${r.keysPerSecond.toFixed(0).padStart(7)} keys/s  (${(r.keysPerSecond / base).toFixed(2)}x)  ${r.detail}`);
    }
    console.log(`  target: ${BATCH} keys in one call <= 2000 ms: ${median <= 2000 ? 'met' : 'NOT met'} (${median.toFixed(0)} ms)`);
  } finally {
    client.close();
    controlPlane.child.kill('SIGTERM');
    await Promise.race([controlPlane.exited(), new Promise((r) => setTimeout(r, 5000))]);
    killIfAlive(controlPlane.child.pid);
    await postgres.stop();
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

keepRunningWhenOutputCloses();
await main();
