/**
 * etcd does not grow with every key ever issued: past KEYBRAKE_KEY_RETENTION after a key
 * expired or was revoked, its record, hash index and budget accounts are deleted (once no data
 * plane holds a lease on them); a live key and its accounts are untouched.
 */
import { Etcd3 } from 'etcd3';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { KeySpec } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';
import { startTestDataPlane, type TestDataPlane } from '../support/data-plane.js';
import { stripeThrough } from '../support/sdk-clients.js';
import { startStripeSimulator, type StripeSimulator } from '../simulators/index.js';

const SECRET = 'sk_test_retention_0123456789';

let stack: TestStack;
let cp: TestControlPlane;
let dp: TestDataPlane;
let sim: StripeSimulator;
let etcd: Etcd3;

beforeAll(async () => {
  stack = await createTestStack();
  cp = await startTestControlPlane(stack, { KEYBRAKE_KEY_RETENTION: '1s', KEYBRAKE_LEASE_TTL: '2s' });
  sim = await startStripeSimulator({ secretKey: SECRET });
  await cp.client.setVendorCredential({ vendor: 'stripe', secret: SECRET, accountSid: '' });
  dp = await startTestDataPlane(stack, cp.grpcAddress, { stripe: sim.url }, { KEYBRAKE_LEASE_TTL: '2s' });
  etcd = new Etcd3({ hosts: stack.etcdEndpoint });
});
afterAll(async () => {
  etcd?.close();
  await dp?.stop();
  await sim?.stop();
  await cp?.stop();
});

const spec = (label: string): KeySpec => ({
  vendor: 'stripe', label, allowedEndpoints: ['POST /v1/charges'], dailyCapMicros: 50_000_000, budgetMicros: 100_000_000, expiresInSeconds: 3600, perCallEstimateMicros: 0,
});

async function etcdKeysMentioning(id: string): Promise<string[]> {
  const all = await etcd.getAll().prefix(stack.etcdPrefix).keys();
  return all.filter((k) => k.includes(id));
}

describe('key retention in etcd', () => {
  it('forgets a revoked key and its budget accounts; keeps a live one', async () => {
    const gone = (await cp.client.issueKey({ spec: spec('retention/gone') })).issued!;
    const live = (await cp.client.issueKey({ spec: spec('retention/live') })).issued!;
    for (const issued of [gone, live]) {
      const stripe = stripeThrough(dp.url, issued.vaultKey);
      // The key reaches the data plane through its stream: a first call may beat it (bounded retries).
      for (let attempt = 0; ; attempt++) {
        try {
          await stripe.charges.create({ amount: 500, currency: 'usd', source: 'tok_visa' });
          break;
        } catch (error) {
          if (attempt >= 20) throw error;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
    const goneId = gone.key!.id;
    const liveId = live.key!.id;
    // Record, hash index, a daily and a lifetime account each.
    expect((await etcdKeysMentioning(goneId)).filter((k) => k.includes('ledger/'))).toHaveLength(2);
    await cp.client.revokeKey({ id: goneId });

    // Revoked + 1 s retention; its lease returns or expires (2 s TTL); the janitor runs every second.
    for (let i = 0; i < 150 && (await etcdKeysMentioning(goneId)).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await etcdKeysMentioning(goneId)).toEqual([]);
    const error = await cp.client.getKey({ id: goneId }).then(() => null, (e: { code: number }) => e);
    expect(error?.code).toBe(status.NOT_FOUND);

    const liveKeys = await etcdKeysMentioning(liveId);
    expect(liveKeys.filter((k) => k.includes('ledger/'))).toHaveLength(2);
    const spend = (await cp.client.getKey({ id: liveId })).key!.spend!;
    // Spent, or granted to the data plane and not yet reported: either way still on the books.
    expect(spend.spentMicros + spend.leasedMicros).toBeGreaterThanOrEqual(5_000_000);
    // And the live key still spends.
    await stripeThrough(dp.url, live.vaultKey).charges.create({ amount: 100, currency: 'usd', source: 'tok_visa' });
  });
});
