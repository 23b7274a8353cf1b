/**
 * The stack bench:leases runs against: etcd (fsync on), PostgreSQL, one control-plane process
 * and the Stripe simulator (in this process), then data-plane processes, each reaching the
 * control plane through its own latency relay. Everything started is registered for cleanup
 * and stopped by PID; temp dirs are removed.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createOperatorClient, type OperatorClient } from '../../cli/operator-client.js';
import { findEtcdBinary, startEtcd, type EtcdProcess } from '../../dev/etcd-process.js';
import { freePort } from '../../dev/free-port.js';
import { startPostgres, type PostgresProcess } from '../../dev/postgres-process.js';
import { startStripeSimulator, type StripeSimulator } from '../../test/simulators/index.js';
import { waitForReady } from '../../test/support/data-plane.js';
import { isAlive, killIfAlive, spawnKeybrake, type SpawnedKeybrake } from '../../test/support/processes.js';
import { startListeningHelper } from '../support/children.js';
import { startLatencyRelay, type LatencyRelay } from './latency-relay.js';

export const STRIPE_SECRET = `sk_test_bench_leases_${randomBytes(8).toString('hex')}`;
export const ETCD_PREFIX = '/keybrake/';

export interface BenchDataPlane {
  readonly url: string;
  readonly pid: number;
  readonly relay: LatencyRelay;
  readonly process: SpawnedKeybrake;
  stop(): Promise<void>;
}

export interface Stack {
  readonly dir: string;
  readonly etcd: EtcdProcess;
  readonly client: OperatorClient;
  readonly sim: StripeSimulator;
  readonly grpcAddress: string;
  readonly dataplaneToken: string;
  readonly controlPlane: SpawnedKeybrake;
  /** The control plane's admin API (and /metrics). */
  readonly adminUrl: string;
  /** Starts `count` data planes, each behind its own relay adding `delayMs` one way. */
  startDataPlanes(count: number, delayMs: number, label: string): Promise<BenchDataPlane[]>;
  /** A key for `POST /v1/charges` with a lifetime budget of `budgetMicros`. */
  issueKey(label: string, budgetMicros: number): Promise<{ id: string; vaultKey: string }>;
  /** Stops everything, newest first; safe to call more than once. */
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 8000;
/** BENCH_CPU_PROF=<dir>: the control plane and data planes write V8 CPU profiles there when they stop. */
const PROFILE_FLAGS = process.env['BENCH_CPU_PROF'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', process.env['BENCH_CPU_PROF']];

async function stopSpawned(spawned: SpawnedKeybrake, graceMs = STOP_GRACE_MS): Promise<void> {
  const pid = spawned.child.pid;
  if (pid === undefined || !isAlive(pid)) return;
  spawned.child.kill('SIGTERM');
  await Promise.race([spawned.exited(), new Promise((resolve) => setTimeout(resolve, graceMs))]);
  killIfAlive(pid);
}

export interface StackOptions {
  /**
   * Data planes forward to the fixed-answer upstream (bench/support/upstream-server.ts, its own
   * process: `POST /v1/charges` answers a $20 charge) instead of the wiretapped simulator, whose
   * bookkeeping would take CPU from the product under a large burst.
   */
  readonly fixedUpstream?: boolean;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const cleanups: (() => Promise<void>)[] = [];
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      for (const cleanup of cleanups.splice(0).reverse()) {
        await cleanup().catch((error: unknown) => console.error(`cleanup failed: ${error instanceof Error ? error.message : String(error)}`));
      }
    })();
    return stopping;
  };

  try {
    const dir = await mkdtemp(join(tmpdir(), 'keybrake-bench-leases-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    // PostgreSQL may run as its own user (when we are root): it must be able to enter the dir.
    await chmod(dir, 0o755);

    const etcdBinary = findEtcdBinary(process.env);
    if (etcdBinary === null) throw new Error('etcd not found (apt-get install etcd-server, or set KEYBRAKE_ETCD_BIN)');
    const etcd = await startEtcd({ binary: etcdBinary, dataDir: join(dir, 'etcd') });
    cleanups.push(async () => {
      await etcd.stop();
      killIfAlive(etcd.pid);
    });

    const postgres: PostgresProcess = await startPostgres({ dataDir: join(dir, 'pg') });
    cleanups.push(async () => {
      await postgres.stop();
      killIfAlive(postgres.pid);
    });
    await postgres.createDatabase('keybrake');

    const sim = await startStripeSimulator({ secretKey: STRIPE_SECRET });
    cleanups.push(() => sim.stop());
    let upstreamUrl = sim.url;
    if (options.fixedUpstream === true) {
      const upstream = await startListeningHelper('upstream-server.ts', []);
      cleanups.push(() => upstream.process.stop());
      upstreamUrl = `http://127.0.0.1:${upstream.port}`;
    }

    const adminToken = `adm_${randomBytes(16).toString('hex')}`;
    const dataplaneToken = `dpt_${randomBytes(16).toString('hex')}`;
    const grpcPort = await freePort();
    const grpcAddress = `127.0.0.1:${grpcPort}`;
    const adminUrl = `http://127.0.0.1:${await freePort()}`;
    const controlPlane = spawnKeybrake(['control-plane'], {
      KEYBRAKE_ETCD_ENDPOINTS: etcd.endpoint,
      KEYBRAKE_ETCD_PREFIX: ETCD_PREFIX,
      KEYBRAKE_DATABASE_URL: postgres.url('keybrake'),
      KEYBRAKE_GRPC_ADDR: grpcAddress,
      KEYBRAKE_ADMIN_ADDR: adminUrl.slice('http://'.length),
      KEYBRAKE_ADMIN_TOKEN: adminToken,
      KEYBRAKE_MASTER_KEY: randomBytes(32).toString('base64'),
      KEYBRAKE_DATAPLANE_TOKEN: dataplaneToken,
      KEYBRAKE_LOG_LEVEL: 'info',
    }, PROFILE_FLAGS);
    cleanups.push(() => stopSpawned(controlPlane));
    await controlPlane.waitForOutput(/control plane listening/, 30_000);

    const client = createOperatorClient(grpcAddress, adminToken);
    cleanups.push(async () => client.close());
    await client.setVendorCredential({ vendor: 'stripe', secret: STRIPE_SECRET, accountSid: '' });

    let planeNumber = 0;
    const startDataPlane = async (delayMs: number, label: string): Promise<BenchDataPlane> => {
      const number = ++planeNumber;
      const relay = await startLatencyRelay(grpcAddress, delayMs);
      cleanups.push(() => relay.stop());
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const spawned = spawnKeybrake(['data-plane'], {
        KEYBRAKE_CONTROL_PLANE: relay.address,
        KEYBRAKE_DATAPLANE_TOKEN: dataplaneToken,
        KEYBRAKE_PROXY_ADDR: `127.0.0.1:${port}`,
        KEYBRAKE_DATAPLANE_ID: `dp-${label}-${number}`,
        KEYBRAKE_AUDIT_SPOOL_DIR: join(dir, `spool-${number}`),
        KEYBRAKE_UPSTREAM_STRIPE: upstreamUrl,
        // Nothing else may leave this machine.
        KEYBRAKE_UPSTREAM_TWILIO: 'http://127.0.0.1:9',
        KEYBRAKE_UPSTREAM_RESEND: 'http://127.0.0.1:9',
        KEYBRAKE_LOG_LEVEL: 'warn',
      }, PROFILE_FLAGS);
      const pid = spawned.child.pid!;
      let stopped: Promise<void> | null = null;
      const stopPlane = () => (stopped ??= stopSpawned(spawned));
      cleanups.push(stopPlane);
      await waitForReady(`${url}/readyz`, spawned, 30_000);
      return { url, pid, relay, process: spawned, stop: stopPlane };
    };

    const stack: Stack = {
      dir,
      etcd,
      client,
      sim,
      grpcAddress,
      dataplaneToken,
      controlPlane,
      adminUrl,
      startDataPlanes: (count, delayMs, label) => Promise.all(Array.from({ length: count }, () => startDataPlane(delayMs, label))),
      async issueKey(label, budgetMicros) {
        const { issued } = await client.issueKey({
          spec: { vendor: 'stripe', label, allowedEndpoints: ['POST /v1/charges'], dailyCapMicros: 0, budgetMicros, expiresInSeconds: 3600, perCallEstimateMicros: 0 },
        });
        if (issued?.key === undefined) throw new Error('issueKey returned no key');
        return { id: issued.key.id, vaultKey: issued.vaultKey };
      },
      stop,
    };
    return stack;
  } catch (error) {
    await stop();
    throw error;
  }
}
