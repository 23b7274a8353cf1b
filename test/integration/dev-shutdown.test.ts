/**
 * `keybrake dev` stops in order however it is ended, and leaves nothing running: a terminal's
 * Ctrl-C (SIGINT to the whole process group), SIGTERM, SIGHUP, the reader of its output going
 * away (`npm start | head -3`), and the process the user started being killed outright. After a
 * Ctrl-C and a restart a key's figures are the truth: what was spent is spent, nothing at risk;
 * and the CLI finds the stack without being told its address or token.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { createOperatorClient } from '../../cli/operator-client.js';
import { freePort } from '../../dev/free-port.js';
import { startStripeSimulator, type StripeSimulator } from '../simulators/index.js';
import { descendantPids, isAlive, KEYBRAKE_BIN, killIfAlive, spawnKeybrake, type SpawnedKeybrake } from '../support/processes.js';

const run = promisify(execFile);

const SECRET = 'sk_test_devshutdown_0123456789';

let home: string;
let sim: StripeSimulator;
let env: Record<string, string>;
let admin: string;
let proxy: string;
let grpc: string;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'keybrake-dev-shutdown-'));
  sim = await startStripeSimulator({ secretKey: SECRET });
  [grpc, admin, proxy] = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
  env = {
    KEYBRAKE_HOME: home,
    KEYBRAKE_GRPC_ADDR: grpc,
    KEYBRAKE_ADMIN_ADDR: admin,
    KEYBRAKE_PROXY_ADDR: proxy,
    KEYBRAKE_UPSTREAM_STRIPE: sim.url,
    KEYBRAKE_UPSTREAM_TWILIO: 'http://127.0.0.1:9',
    KEYBRAKE_UPSTREAM_RESEND: 'http://127.0.0.1:9',
    KEYBRAKE_LOG_LEVEL: 'warn',
  };
});
/** Every process a test started, whatever its assertions did: stopped by PID after it. */
const started: number[] = [];
afterEach(() => {
  for (const pid of started.splice(0)) killIfAlive(pid);
});
afterAll(async () => {
  await sim?.stop();
  if (home !== undefined) await rm(home, { recursive: true, force: true });
});

interface RunningDev {
  readonly dev: SpawnedKeybrake;
  readonly token: string;
  /** Every process under the one started, as running once the stack was up. */
  readonly pids: readonly number[];
}

async function startDev(detached = false): Promise<RunningDev> {
  const dev = spawnKeybrake(['dev'], env, [], { detached });
  try {
    const token = (await dev.waitForOutput(/admin token\s+(\S+)/, 90_000))[1]!;
    await dev.waitForOutput(/Issue a vault key/);
    const pids = descendantPids(dev.child.pid!);
    started.push(dev.child.pid!, ...pids);
    expect(pids.length).toBeGreaterThanOrEqual(5); // the supervisor, etcd, postgres, control plane, data plane
    return { dev, token, pids };
  } catch (error) {
    for (const pid of descendantPids(dev.child.pid!)) killIfAlive(pid);
    killIfAlive(dev.child.pid);
    throw error;
  }
}

/** Waits until none of `pids` runs (at most 30 s), then says which still do. */
async function stillRunning(pids: readonly number[]): Promise<number[]> {
  for (let i = 0; i < 300 && pids.some(isAlive); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  const left = pids.filter(isAlive);
  for (const pid of left) killIfAlive(pid);
  return left;
}

async function charge(vaultKey: string, cents: number): Promise<number> {
  const response = await fetch(`http://${proxy}/v1/charges`, {
    method: 'POST',
    headers: { authorization: `Bearer ${vaultKey}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: `amount=${cents}&currency=usd&source=tok_visa`,
  });
  await response.arrayBuffer();
  return response.status;
}

describe('keybrake dev stops in order, whatever ends it', () => {
  it('a terminal’s Ctrl-C (SIGINT to the whole group): every process gone, and after a restart the key shows what was spent, nothing at risk', async () => {
    const first = await startDev(true);
    const client = createOperatorClient(grpc, first.token);
    let keyId: string;
    try {
      await client.setVendorCredential({ vendor: 'stripe', secret: SECRET, accountSid: '' });
      const { issued } = await client.issueKey({ spec: { vendor: 'stripe', label: 'dev/shutdown', allowedEndpoints: ['POST /v1/charges'], dailyCapMicros: 0, budgetMicros: 100_000_000, expiresInSeconds: 3600, perCallEstimateMicros: 0 } });
      keyId = issued!.key!.id;
      for (let i = 0; i < 3; i++) expect(await charge(issued!.vaultKey, 1000)).toBe(200);
    } finally {
      client.close();
    }
    // What a terminal does on Ctrl-C: SIGINT to every process of the foreground group at once.
    process.kill(-first.dev.child.pid!, 'SIGINT');
    expect(await first.dev.exited()).toBe(0);
    expect(await stillRunning([first.dev.child.pid!, ...first.pids])).toEqual([]);
    expect(first.dev.output()).toMatch(/keybrake dev: stopped\n/);
    expect(first.dev.output()).not.toMatch(/usage report failed|lost the priced-intents listener/);

    const second = await startDev();
    try {
      const response = await fetch(`http://${admin}/vault/keys/${keyId}`, { headers: { authorization: `Bearer ${second.token}` } });
      const key = (await response.json()) as { spent_micros: number; at_risk_micros: number; remaining_micros: number };
      expect({ spent: key.spent_micros, atRisk: key.at_risk_micros, remaining: key.remaining_micros }).toEqual({ spent: 30_000_000, atRisk: 0, remaining: 70_000_000 });
      // The CLI finds the stack's address and token in its home, whatever addresses it was given.
      const { stdout } = await run(process.execPath, [KEYBRAKE_BIN, 'keys', 'get', keyId, '--json'], { env: { PATH: process.env['PATH'], KEYBRAKE_HOME: home }, timeout: 30_000 });
      expect(JSON.parse(stdout)).toMatchObject({ id: keyId, spent_micros: 30_000_000 });
    } finally {
      second.dev.child.kill('SIGTERM');
      expect(await second.dev.exited()).toBe(0);
      expect(await stillRunning(second.pids)).toEqual([]);
    }
  }, 240_000);

  it.each(['SIGTERM', 'SIGHUP'] as const)('%s to the process started: every process gone', async (signal) => {
    const running = await startDev();
    running.dev.child.kill(signal);
    expect(await running.dev.exited()).toBe(0);
    expect(await stillRunning(running.pids)).toEqual([]);
  }, 120_000);

  it('its output’s reader going away (`| head -3`): every process gone', async () => {
    const running = await startDev();
    // The reader closes its end of the pipe; the stack's next line (a moment after the banner) finds nobody.
    running.dev.child.stdout!.destroy();
    expect(await running.dev.exited()).toBe(0);
    expect(await stillRunning(running.pids)).toEqual([]);
  }, 120_000);

  it('the process started killed outright (SIGKILL): the stack notices and stops in order', async () => {
    const running = await startDev();
    running.dev.child.kill('SIGKILL');
    expect(await stillRunning(running.pids)).toEqual([]);
  }, 120_000);
});
