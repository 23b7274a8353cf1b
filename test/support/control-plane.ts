/**
 * A real control plane for integration tests, in this test process, on free ports, against
 * the run's etcd (under its own prefix) and PostgreSQL (in its own database).
 */
import { randomBytes } from 'node:crypto';

import pg from 'pg';
import { inject } from 'vitest';

import { silentLogger } from '../../core/logger.js';
import { createOperatorClient, type OperatorClient } from '../../cli/operator-client.js';
import { compileControlPlaneConfig, type ControlPlaneConfig } from '../../control-plane/config.js';
import { startControlPlane, type RunningControlPlane } from '../../control-plane/control-plane.js';

export interface TestStack {
  readonly etcdEndpoint: string;
  readonly etcdPrefix: string;
  readonly databaseUrl: string;
  readonly adminToken: string;
  readonly masterKey: string;
  readonly dataplaneToken: string;
  /** The environment a control-plane process for this stack needs (with free ports). */
  env(overrides?: Record<string, string>): Record<string, string>;
}

export async function createTestStack(): Promise<TestStack> {
  const suffix = randomBytes(6).toString('hex');
  const database = `kb_test_${suffix}`;
  const adminUrl = inject('postgresAdminUrl');
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  await client.query(`CREATE DATABASE ${database}`);
  await client.end();
  const stack = {
    etcdEndpoint: inject('etcdEndpoint'),
    etcdPrefix: `/kbtest-${suffix}/`,
    databaseUrl: adminUrl.replace(/\/postgres$/, `/${database}`),
    adminToken: `admin-${randomBytes(16).toString('hex')}`,
    masterKey: randomBytes(32).toString('base64'),
    dataplaneToken: `dp-${randomBytes(16).toString('hex')}`,
  };
  return {
    ...stack,
    env: (overrides = {}) => ({
      KEYBRAKE_ETCD_ENDPOINTS: stack.etcdEndpoint,
      KEYBRAKE_ETCD_PREFIX: stack.etcdPrefix,
      KEYBRAKE_DATABASE_URL: stack.databaseUrl,
      KEYBRAKE_GRPC_ADDR: '127.0.0.1:0',
      KEYBRAKE_ADMIN_ADDR: '127.0.0.1:0',
      KEYBRAKE_ADMIN_TOKEN: stack.adminToken,
      KEYBRAKE_MASTER_KEY: stack.masterKey,
      KEYBRAKE_DATAPLANE_TOKEN: stack.dataplaneToken,
      KEYBRAKE_LOG_LEVEL: 'silent',
      // Compaction is global to the etcd every test file shares: only etcd-compaction.test.ts
      // turns it on, against an etcd of its own.
      KEYBRAKE_ETCD_COMPACTION_INTERVAL: 'off',
      ...overrides,
    }),
  };
}

export interface TestControlPlane {
  readonly config: ControlPlaneConfig;
  readonly running: RunningControlPlane;
  readonly adminUrl: string;
  readonly grpcAddress: string;
  /** gRPC client with the bootstrap admin token. */
  readonly client: OperatorClient;
  /** JSON request to the admin API; `token: null` sends none. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON answers
  http(method: string, path: string, options?: { body?: unknown; rawBody?: string; token?: string | null }): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

export async function startTestControlPlane(stack: TestStack, overrides: Record<string, string> = {}): Promise<TestControlPlane> {
  const config = compileControlPlaneConfig(stack.env(overrides));
  const running = await startControlPlane(config, silentLogger);
  const adminUrl = `http://127.0.0.1:${running.adminPort}`;
  const grpcAddress = `127.0.0.1:${running.grpcPort}`;
  const client = createOperatorClient(grpcAddress, stack.adminToken);
  return {
    config,
    running,
    adminUrl,
    grpcAddress,
    client,
    async http(method, path, options = {}) {
      const token = options.token === undefined ? stack.adminToken : options.token;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token !== null) headers['authorization'] = `Bearer ${token}`;
      const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
      const response = await fetch(`${adminUrl}${path}`, { method, headers, body });
      const text = await response.text();
      return { status: response.status, body: text === '' ? null : JSON.parse(text) };
    },
    async stop() {
      client.close();
      await running.stop();
    },
  };
}
