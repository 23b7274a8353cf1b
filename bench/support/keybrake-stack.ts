/**
 * A real Keybrake deployment for the benchmarks, as in bench/issue.bench.ts: etcd (fsync on),
 * PostgreSQL, one control-plane process, and any number of data-plane processes, each on its
 * own free 127.0.0.1 port. Every process is registered with the Cleanup as soon as it started.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { createOperatorClient, type OperatorClient } from '../../cli/operator-client.js';
import { findEtcdBinary, startEtcd } from '../../dev/etcd-process.js';
import { freePort } from '../../dev/free-port.js';
import { startPostgres } from '../../dev/postgres-process.js';
import type { KeySpec } from '../../gen/keybrake/v1/operator.js';
import { waitForReady } from '../../test/support/data-plane.js';
import { killIfAlive, spawnKeybrake, type SpawnedKeybrake } from '../../test/support/processes.js';
import type { Cleanup } from './cleanup.js';

/** The real Stripe secret the data plane swaps in (the simulated upstream accepts anything). */
export const BENCH_STRIPE_SECRET = `sk_test_${'51BenchKeybrake'.padEnd(40, 'x')}`;

/**
 * The benchmarks' keys: Stripe, `POST /v1/charges` only, an hour to live. The daily cap is far
 * above anything a run can spend (a bench charge is $20, a saturation run sends ~100,000 of
 * them): the benchmarks measure the proxy, never a cap refusal.
 */
export function benchKeySpec(label: string): KeySpec {
  return {
    vendor: 'stripe',
    label,
    allowedEndpoints: ['POST /v1/charges'],
    dailyCapMicros: 1_000_000_000_000_000,
    budgetMicros: 0,
    expiresInSeconds: 3600,
    perCallEstimateMicros: 0,
  };
}

export interface BenchDataPlane {
  readonly id: string;
  readonly origin: string;
  readonly port: number;
  readonly pid: number;
  readonly process: SpawnedKeybrake;
}

export interface KeybrakeStack {
  readonly grpcAddress: string;
  /** What data planes present to the control plane (for a data plane started some other way). */
  readonly dataplaneToken: string;
  readonly client: OperatorClient;
  /** The control plane's PostgreSQL database (audit trail). */
  readonly databaseUrl: string;
  /** etcd, PostgreSQL and the control plane: the work a data plane causes behind it. */
  readonly backendPids: readonly number[];
  /** The control-plane process (stopped by the cleanup; a profiler may stop it earlier). */
  readonly controlPlane: SpawnedKeybrake;
  /** Extra environment is added to the data plane's; `nodeFlags` (e.g. --cpu-prof) go to its node. */
  startDataPlane(id: string, stripeUpstream: string, extraEnv?: Record<string, string>, nodeFlags?: readonly string[]): Promise<BenchDataPlane>;
}

async function stopKeybrake(spawned: SpawnedKeybrake): Promise<void> {
  spawned.child.kill('SIGTERM');
  await Promise.race([spawned.exited(), new Promise((r) => setTimeout(r, 5000))]);
  killIfAlive(spawned.child.pid);
}

/** `controlPlaneNodeFlags` go to the control plane's node (e.g. --cpu-prof). */
export async function startKeybrakeStack(cleanup: Cleanup, dir: string, controlPlaneNodeFlags: readonly string[] = []): Promise<KeybrakeStack> {
  const etcdBinary = findEtcdBinary(process.env);
  if (etcdBinary === null) throw new Error('etcd not found (apt-get install etcd-server)');
  const etcd = await startEtcd({ binary: etcdBinary, dataDir: join(dir, 'etcd') });
  cleanup.add(`etcd (pid ${etcd.pid})`, () => etcd.stop());
  const postgres = await startPostgres({ dataDir: join(dir, 'pg') });
  cleanup.add(`PostgreSQL (pid ${postgres.pid})`, () => postgres.stop());
  await postgres.createDatabase('keybrake');

  const adminToken = randomBytes(16).toString('hex');
  const dataplaneToken = randomBytes(16).toString('hex');
  const grpcAddress = `127.0.0.1:${await freePort()}`;
  const controlPlane = spawnKeybrake(['control-plane'], {
    KEYBRAKE_ETCD_ENDPOINTS: etcd.endpoint,
    KEYBRAKE_DATABASE_URL: postgres.url('keybrake'),
    KEYBRAKE_GRPC_ADDR: grpcAddress,
    KEYBRAKE_ADMIN_ADDR: `127.0.0.1:${await freePort()}`,
    KEYBRAKE_ADMIN_TOKEN: adminToken,
    KEYBRAKE_MASTER_KEY: randomBytes(32).toString('base64'),
    KEYBRAKE_DATAPLANE_TOKEN: dataplaneToken,
  }, controlPlaneNodeFlags);
  cleanup.add(`control plane (pid ${controlPlane.child.pid})`, () => stopKeybrake(controlPlane));
  const client = createOperatorClient(grpcAddress, adminToken);
  cleanup.add('operator client', () => client.close());
  await controlPlane.waitForOutput(/control plane listening/, 30_000);
  await client.setVendorCredential({ vendor: 'stripe', secret: BENCH_STRIPE_SECRET, accountSid: '' });

  return {
    grpcAddress,
    dataplaneToken,
    client,
    databaseUrl: postgres.url('keybrake'),
    backendPids: [etcd.pid, postgres.pid, controlPlane.child.pid!].filter((pid) => pid > 0),
    controlPlane,
    async startDataPlane(id, stripeUpstream, extraEnv = {}, nodeFlags = []) {
      const port = await freePort();
      const spoolDir = join(dir, 'spool', id);
      await mkdir(spoolDir, { recursive: true });
      const spawned = spawnKeybrake(['data-plane'], {
        KEYBRAKE_CONTROL_PLANE: grpcAddress,
        KEYBRAKE_DATAPLANE_TOKEN: dataplaneToken,
        KEYBRAKE_PROXY_ADDR: `127.0.0.1:${port}`,
        KEYBRAKE_DATAPLANE_ID: id,
        KEYBRAKE_AUDIT_SPOOL_DIR: spoolDir,
        KEYBRAKE_UPSTREAM_STRIPE: stripeUpstream,
        // Never the internet: only Stripe is benchmarked.
        KEYBRAKE_UPSTREAM_TWILIO: 'http://127.0.0.1:9',
        KEYBRAKE_UPSTREAM_RESEND: 'http://127.0.0.1:9',
        KEYBRAKE_LOG_LEVEL: 'warn',
        ...extraEnv,
      }, nodeFlags);
      cleanup.add(`data plane ${id} (pid ${spawned.child.pid})`, () => stopKeybrake(spawned));
      const origin = `http://127.0.0.1:${port}`;
      try {
        await waitForReady(`${origin}/readyz`, spawned, 30_000);
      } catch (error) {
        const state = controlPlane.child.exitCode === null ? 'running' : `exited (${controlPlane.child.exitCode})`;
        throw new Error(`${error instanceof Error ? error.message : String(error)}\ncontrol plane ${state}; its output:\n${controlPlane.output().slice(-4000)}`);
      }
      return { id, origin, port, pid: spawned.child.pid!, process: spawned };
    },
  };
}
