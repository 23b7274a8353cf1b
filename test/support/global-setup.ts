import { mkdtemp, chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { TestProject } from 'vitest/node';

import { findEtcdBinary, startEtcd, type EtcdProcess } from '../../dev/etcd-process.js';
import { startPostgres, type PostgresProcess } from '../../dev/postgres-process.js';

declare module 'vitest' {
  export interface ProvidedContext {
    etcdEndpoint: string;
    /** postgres://… URL of the server's `postgres` database; tests create their own databases. */
    postgresAdminUrl: string;
  }
}

let etcd: EtcdProcess | undefined;
let postgres: PostgresProcess | undefined;
let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  const binary = findEtcdBinary(process.env);
  if (binary === null) throw new Error('etcd not found: apt-get install etcd-server, or set KEYBRAKE_ETCD_BIN');
  dir = await mkdtemp(join(tmpdir(), 'keybrake-test-'));
  // PostgreSQL runs as the postgres user when we are root: it must reach its data dir.
  await chmod(dir, 0o755);
  [etcd, postgres] = await Promise.all([
    startEtcd({ binary, dataDir: join(dir, 'etcd'), unsafeNoFsync: true }),
    startPostgres({ dataDir: join(dir, 'pg'), unsafeNoFsync: true }),
  ]);
  project.provide('etcdEndpoint', etcd.endpoint);
  project.provide('postgresAdminUrl', postgres.url('postgres'));
}

export async function teardown(): Promise<void> {
  await Promise.allSettled([etcd?.stop(), postgres?.stop()]);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}
