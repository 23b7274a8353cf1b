/**
 * Runs a single-member etcd from the `etcd` binary, for `keybrake dev` and the tests.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';

import { freePort } from './free-port.js';

export interface EtcdProcess {
  readonly endpoint: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface StartEtcdOptions {
  readonly binary: string;
  readonly dataDir: string;
  readonly clientPort?: number;
  /** Tests trade durability for speed; `keybrake dev` keeps etcd's defaults. */
  readonly unsafeNoFsync?: boolean;
  /** More etcd flags (a test's `--max-request-bytes`, say). */
  readonly extraArgs?: readonly string[];
}

const READY_TIMEOUT_MS = 20_000;

export async function startEtcd(options: StartEtcdOptions): Promise<EtcdProcess> {
  await mkdir(options.dataDir, { recursive: true });
  const clientPort = options.clientPort ?? (await freePort());
  const peerPort = await freePort();
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const args = [
    '--name', 'keybrake-local',
    '--data-dir', options.dataDir,
    '--listen-client-urls', endpoint,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-cluster', `keybrake-local=http://127.0.0.1:${peerPort}`,
    '--log-level', 'error',
  ];
  if (options.unsafeNoFsync) args.push('--unsafe-no-fsync');
  args.push(...(options.extraArgs ?? []));
  const child = spawn(options.binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  try {
    await waitUntilHealthy(endpoint, child, () => stderr);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  return { endpoint, pid: child.pid!, stop: () => stopChild(child) };
}

async function waitUntilHealthy(endpoint: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`etcd exited during start-up: ${stderr().trim()}`);
    try {
      const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
      const body = (await response.json()) as { health?: string };
      if (body.health === 'true') return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`etcd did not become healthy within ${READY_TIMEOUT_MS} ms: ${stderr().trim()}`);
}

export function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** KEYBRAKE_ETCD_BIN, else `etcd` on PATH, else Debian's /usr/bin/etcd; null when there is none. */
export function findEtcdBinary(env: Readonly<Record<string, string | undefined>>): string | null {
  const configured = env['KEYBRAKE_ETCD_BIN'];
  if (configured !== undefined && configured !== '') return configured;
  const which = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  const found = which.stdout.trim();
  if (which.status === 0 && found !== '') return found;
  return existsSync('/usr/bin/etcd') ? '/usr/bin/etcd' : null;
}
