/**
 * Data planes load keys on demand, against a real control plane, etcd and data-plane processes:
 * a data plane starts holding no key, serves a key it never saw (one lookup), refuses a key
 * revoked before it was ever loaded, looks up a flood of forged keys not at all (counted on the
 * control plane's /metrics), and, when the control plane restarts, keeps serving the keys it
 * holds from its leases and looks them up again once a control plane is back.
 */
import { randomBytes } from 'node:crypto';

import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { generateSecret, generateTaggedVaultKey, vaultKeyTagKey } from '../../core/secret-format.js';
import type { KeySpec } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';
import { startTestDataPlane, type TestDataPlane } from '../support/data-plane.js';
import { stripeThrough } from '../support/sdk-clients.js';
import { startAllSimulators, type AllSimulators } from '../simulators/index.js';

let stack: TestStack;
let cp: TestControlPlane;
let sims: AllSimulators;
let dp: TestDataPlane;

const spec = (label: string): KeySpec => ({
  vendor: 'stripe', label, allowedEndpoints: ['POST /v1/customers'], dailyCapMicros: 0, budgetMicros: 100_000_000, expiresInSeconds: 3600, perCallEstimateMicros: 0,
});

beforeAll(async () => {
  stack = await createTestStack();
  cp = await startTestControlPlane(stack);
  sims = await startAllSimulators();
  await cp.client.setVendorCredential({ vendor: 'stripe', secret: sims.secrets.stripeSecretKey, accountSid: '' });
  // Keys exist before the data plane starts: it loads none of them.
  await cp.client.issueKeys({ specs: Array.from({ length: 200 }, (_, i) => spec(`on-demand/before-${i % 3}`)) });
  dp = await startTestDataPlane(stack, cp.grpcAddress, { stripe: sims.stripe.url });
});

afterAll(async () => {
  await dp?.stop();
  await sims?.stop();
  await cp?.stop();
});

const readyKeys = async (plane: TestDataPlane) => ((await (await fetch(`${plane.url}/readyz`)).json()) as { keys: number }).keys;
const lookups = async (controlPlane: TestControlPlane) => Number(/^keybrake_key_lookups_total (\d+)/m.exec(await (await fetch(`${controlPlane.adminUrl}/metrics`)).text())?.[1] ?? 0);

async function errorOf(promise: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(Stripe.errors.StripeError);
  return error as Stripe.errors.StripeError;
}

describe('a data plane loads keys on demand', () => {
  it('starts holding no key, serves a key it never saw, and then holds just that one', async () => {
    expect(await readyKeys(dp)).toBe(0);
    const { issued } = await cp.client.issueKey({ spec: spec('on-demand/first') });
    const before = await lookups(cp);
    const customer = await stripeThrough(dp.url, issued!.vaultKey).customers.create({});
    expect(customer.id).toMatch(/^cus_/);
    await stripeThrough(dp.url, issued!.vaultKey).customers.create({});
    expect(await lookups(cp)).toBe(before + 1);
    expect(await readyKeys(dp)).toBe(1);
  });

  it('refuses a key revoked before it was ever loaded, and one revoked while held', async () => {
    const { issued } = await cp.client.issueKeys({ specs: [spec('on-demand/revoked'), spec('on-demand/revoked')] });
    const [never, held] = issued;
    await stripeThrough(dp.url, held!.vaultKey).customers.create({});
    await cp.client.revokeKey({ id: never!.key!.id });
    await cp.client.revokeKey({ id: held!.key!.id });
    expect((await errorOf(stripeThrough(dp.url, never!.vaultKey).customers.create({}))).code).toBe('vault_key_revoked');
    const deadline = Date.now() + 2000;
    let code = '';
    while (Date.now() < deadline && code !== 'vault_key_revoked') {
      code = (await stripeThrough(dp.url, held!.vaultKey).customers.create({}).then(() => 'ok', (e: Stripe.errors.StripeError) => e.code ?? '')) as string;
    }
    expect(code).toBe('vault_key_revoked');
  });

  it('looks up no forged key: a flood of them costs the control plane nothing', async () => {
    const before = await lookups(cp);
    sims.stripe.wiretap.clear();
    const forgedTag = vaultKeyTagKey(randomBytes(32));
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, i) => errorOf(stripeThrough(dp.url, i % 2 === 0 ? generateTaggedVaultKey(forgedTag) : generateSecret('vaultKey')).customers.create({}))),
    );
    const seconds = Math.ceil((performance.now() - started) / 1000);
    expect(new Set(answers.map((e) => e.code))).toEqual(new Set(['vault_key_invalid']));
    // Keys made before vault keys carried a tag look like forged ones: at most 20 a second (after
    // a burst of 20) may still be looked up, whatever the flood's size.
    expect((await lookups(cp)) - before).toBeLessThanOrEqual(20 + 20 * seconds);
    expect(sims.stripe.wiretap.count).toBe(0);
  });

  it('keeps serving held keys from its leases while the control plane restarts, and takes new ones again after', async () => {
    const { issued } = await cp.client.issueKey({ spec: spec('on-demand/restart') });
    const stripe = stripeThrough(dp.url, issued!.vaultKey);
    await stripe.customers.create({});
    await cp.stop();
    // Free calls need no lease: they are served from what the data plane holds.
    expect((await stripe.customers.create({})).id).toMatch(/^cus_/);
    // A key it never saw cannot be looked up now: refused, fail closed.
    const { issued: fresh } = await (async () => {
      const other = await startTestControlPlane(stack, { KEYBRAKE_GRPC_ADDR: '127.0.0.1:0' });
      try {
        return await other.client.issueKey({ spec: spec('on-demand/restart') });
      } finally {
        await other.stop();
      }
    })();
    expect((await errorOf(stripeThrough(dp.url, fresh!.vaultKey).customers.create({}))).code).toBe('control_plane_unavailable');
    // The control plane comes back on the address the data plane knows.
    const [, port] = cp.grpcAddress.split(':');
    cp = await startTestControlPlane(stack, { KEYBRAKE_GRPC_ADDR: `127.0.0.1:${port}` });
    const deadline = Date.now() + 15_000;
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      status = await stripeThrough(dp.url, fresh!.vaultKey).customers.create({}).then(() => 200, (e: Stripe.errors.StripeError) => e.statusCode ?? 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
    expect((await stripe.customers.create({})).id).toMatch(/^cus_/);
  });
});
