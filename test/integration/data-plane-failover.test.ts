/**
 * The data plane and its control planes: it fails over between replicas, keeps serving from
 * what it holds while cut off, and fails closed one lease TTL after it last heard from one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { KeySpec } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';
import { startTestDataPlane, type TestDataPlane } from '../support/data-plane.js';
import { freePort } from '../../dev/free-port.js';
import { spawnKeybrake } from '../support/processes.js';
import { startStripeSimulator, type StripeSimulator } from '../simulators/index.js';

let stack: TestStack;
let sim: StripeSimulator;
const started: { stop(): Promise<void> }[] = [];

const spec: KeySpec = { vendor: 'stripe', label: 'failover', allowedEndpoints: ['POST /v1/customers'], dailyCapMicros: 0, budgetMicros: 1_000_000, expiresInSeconds: 600, perCallEstimateMicros: 0 };

beforeAll(async () => {
  stack = await createTestStack();
  sim = await startStripeSimulator({ secretKey: 'sk_test_failover_secret' });
});
afterAll(async () => {
  for (const s of started.reverse()) await s.stop().catch(() => {});
  await sim?.stop();
});

async function controlPlane(): Promise<TestControlPlane> {
  const cp = await startTestControlPlane(stack);
  started.push(cp);
  return cp;
}

async function dataPlane(grpc: string, env: Record<string, string> = {}): Promise<TestDataPlane> {
  const dp = await startTestDataPlane(stack, grpc, { stripe: sim.url }, env);
  started.push(dp);
  return dp;
}

async function call(dp: TestDataPlane, vaultKey: string): Promise<{ status: number; code: string | null; body: string }> {
  const response = await fetch(`${dp.url}/v1/customers`, { method: 'POST', headers: { authorization: `Bearer ${vaultKey}` } });
  return { status: response.status, code: response.headers.get('keybrake-error'), body: await response.text() };
}

async function until<T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!done(last)) {
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
    last = await probe();
  }
  return last;
}

describe('several control planes', () => {
  it('fails over to another replica and keeps receiving revocations', async () => {
    const a = await controlPlane();
    const b = await controlPlane();
    await a.client.setVendorCredential({ vendor: 'stripe', secret: 'sk_test_failover_secret', accountSid: '' });
    const { issued } = await a.client.issueKey({ spec });
    const dp = await dataPlane(`${a.grpcAddress},${b.grpcAddress}`);
    expect((await call(dp, issued!.vaultKey)).status).toBe(200);

    await a.stop();
    // Still served from what it holds while it reconnects to b.
    expect((await call(dp, issued!.vaultKey)).status).toBe(200);
    await b.client.revokeKey({ id: issued!.key!.id });
    const refused = await until('revocation through the second replica', () => call(dp, issued!.vaultKey), (r) => r.code === 'vault_key_revoked', 10_000);
    expect(refused.status).toBe(401);
  });
});

describe('cut off from every control plane', () => {
  it('serves from what it holds, then fails closed one lease TTL later', async () => {
    const cp = await controlPlane();
    await cp.client.setVendorCredential({ vendor: 'stripe', secret: 'sk_test_failover_secret', accountSid: '' });
    const { issued } = await cp.client.issueKey({ spec });
    const dp = await dataPlane(cp.grpcAddress, { KEYBRAKE_LEASE_TTL: '2s' });
    expect((await call(dp, issued!.vaultKey)).status).toBe(200);

    const cutAt = Date.now();
    await cp.stop();
    const during = await call(dp, issued!.vaultKey);
    if (Date.now() - cutAt < 1500) expect(during.status).toBe(200);

    const closed = await until('fail closed', () => call(dp, issued!.vaultKey), (r) => r.status === 503, 8_000);
    expect(closed.code).toBe('control_plane_unavailable');
    expect(JSON.parse(closed.body)).toMatchObject({ error: { type: 'api_error', code: 'control_plane_unavailable' } });
    // The bound: it may not serve later than one TTL (plus the stop's own time) after the last word.
    expect(Date.now() - cutAt).toBeLessThan(2000 + 2500 + 1000);
    expect((await fetch(`${dp.url}/readyz`)).status).toBe(503);

    const metrics = await (await fetch(`${dp.url}/metrics`)).text();
    expect(metrics).toMatch(/keybrake_proxy_calls_total\{vendor="stripe",decision="allowed",code="",status="200"\} [1-9]/);
    expect(metrics).toMatch(/keybrake_proxy_calls_total\{vendor="stripe",decision="denied",code="control_plane_unavailable",status="503"\} [1-9]/);
  });

  it('refuses everything before it has ever reached a control plane', async () => {
    const port = await freePort();
    const spawned = spawnKeybrake(['data-plane'], {
      KEYBRAKE_CONTROL_PLANE: `127.0.0.1:${await freePort()}`,
      KEYBRAKE_DATAPLANE_TOKEN: stack.dataplaneToken,
      KEYBRAKE_PROXY_ADDR: `127.0.0.1:${port}`,
      KEYBRAKE_UPSTREAM_STRIPE: sim.url,
      KEYBRAKE_LOG_LEVEL: 'silent',
    });
    try {
      const answer = await until('listening', () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status, () => 0), (s) => s === 200, 20_000);
      expect(answer).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(503);
      sim.wiretap.clear();
      const refused = await fetch(`http://127.0.0.1:${port}/v1/customers`, { method: 'POST', headers: { authorization: 'Bearer kbv_x' } });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('keybrake-error')).toBe('control_plane_unavailable');
      expect(sim.wiretap.count).toBe(0);
    } finally {
      spawned.child.kill('SIGKILL');
      await spawned.exited();
    }
  });
});
