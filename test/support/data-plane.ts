/**
 * Real data-plane processes for integration tests, started by PID and stopped by the test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePort } from '../../dev/free-port.js';
import type { TestStack } from './control-plane.js';
import { killIfAlive, spawnKeybrake, type SpawnedKeybrake } from './processes.js';

export interface TestDataPlane {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly process: SpawnedKeybrake;
  stop(): Promise<void>;
}

export interface DataPlaneUpstreams {
  readonly stripe?: string;
  readonly twilio?: string;
  readonly resend?: string;
}

export async function startTestDataPlane(
  stack: TestStack,
  controlPlaneGrpc: string,
  upstreams: DataPlaneUpstreams,
  extraEnv: Record<string, string> = {},
): Promise<TestDataPlane> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Each data plane spools in its own temp dir unless the test chooses one (to restart on it).
  const ownSpool = extraEnv['KEYBRAKE_AUDIT_SPOOL_DIR'] === undefined ? mkdtempSync(join(tmpdir(), 'keybrake-spool-')) : null;
  const spawned = spawnKeybrake(['data-plane'], {
    ...(ownSpool === null ? {} : { KEYBRAKE_AUDIT_SPOOL_DIR: ownSpool }),
    KEYBRAKE_CONTROL_PLANE: controlPlaneGrpc,
    KEYBRAKE_DATAPLANE_TOKEN: stack.dataplaneToken,
    KEYBRAKE_PROXY_ADDR: `127.0.0.1:${port}`,
    KEYBRAKE_DATAPLANE_ID: `dp-test-${port}`,
    // Unreachable by default: a test that forgets an upstream must not reach the internet.
    KEYBRAKE_UPSTREAM_STRIPE: upstreams.stripe ?? 'http://127.0.0.1:9',
    KEYBRAKE_UPSTREAM_TWILIO: upstreams.twilio ?? 'http://127.0.0.1:9',
    KEYBRAKE_UPSTREAM_RESEND: upstreams.resend ?? 'http://127.0.0.1:9',
    KEYBRAKE_LOG_LEVEL: 'warn',
    ...extraEnv,
  });
  const pid = spawned.child.pid!;
  try {
    await waitForReady(`${url}/readyz`, spawned, 30_000);
  } catch (error) {
    killIfAlive(pid);
    if (ownSpool !== null) rmSync(ownSpool, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    port,
    pid,
    process: spawned,
    async stop() {
      spawned.child.kill('SIGTERM');
      const exited = await Promise.race([spawned.exited().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 8000))]);
      if (!exited) killIfAlive(pid);
      if (ownSpool !== null) rmSync(ownSpool, { recursive: true, force: true });
    },
  };
}

export async function waitForReady(url: string, spawned: SpawnedKeybrake, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (spawned.child.exitCode !== null) throw new Error(`data plane exited (${spawned.child.exitCode}):\n${spawned.output()}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`data plane not ready at ${url} within ${timeoutMs} ms:\n${spawned.output()}`);
}

export { freePort };
