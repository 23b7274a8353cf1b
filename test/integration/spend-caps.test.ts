/**
 * The cap holds across real data-plane processes: concurrent calls of random amounts through
 * three data planes never move more than the cap, and reach it to within one call; a data
 * plane killed with SIGKILL or cut off from the control plane changes neither.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { KeySpec } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';
import { startTestDataPlane, type TestDataPlane } from '../support/data-plane.js';
import { startTcpRelay, type TcpRelay } from '../support/tcp-relay.js';
import { headerValue, startStripeSimulator, type StripeSimulator } from '../simulators/index.js';

const SECRET = 'sk_test_spendcaps_0123456789';
const CAP_MICROS = 500_000_000; // $500
const LEASE_TTL = '3s';

let stack: TestStack;
let cp: TestControlPlane;
let sim: StripeSimulator;
const stoppers: { stop(): Promise<void> }[] = [];

beforeAll(async () => {
  stack = await createTestStack();
  cp = await startTestControlPlane(stack, { KEYBRAKE_LEASE_TTL: LEASE_TTL });
  sim = await startStripeSimulator({ secretKey: SECRET });
  await cp.client.setVendorCredential({ vendor: 'stripe', secret: SECRET, accountSid: '' });
});
afterAll(async () => {
  for (const s of stoppers.reverse()) await s.stop().catch(() => {});
  await sim?.stop();
  await cp?.stop();
});

async function dataPlanes(count: number, grpc: (i: number) => string = () => cp.grpcAddress): Promise<TestDataPlane[]> {
  const planes = await Promise.all(Array.from({ length: count }, (_, i) => startTestDataPlane(stack, grpc(i), { stripe: sim.url }, { KEYBRAKE_LEASE_TTL: LEASE_TTL })));
  stoppers.push(...planes);
  return planes;
}

async function issue(label: string): Promise<{ id: string; vaultKey: string }> {
  const spec: KeySpec = { vendor: 'stripe', label, allowedEndpoints: ['POST /v1/charges'], dailyCapMicros: 0, budgetMicros: CAP_MICROS, expiresInSeconds: 3600, perCallEstimateMicros: 0 };
  const { issued } = await cp.client.issueKey({ spec });
  return { id: issued!.key!.id, vaultKey: issued!.vaultKey };
}

/** Deterministic amounts in cents: $1.00 up to `maxCents`. */
function amounts(count: number, seed: number, maxCents = 5000): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return 100 + (state % (maxCents - 99));
  });
}

interface Outcome {
  readonly status: number;
  readonly code: string | null;
}

async function charge(dp: TestDataPlane, vaultKey: string, cents: number, label: string): Promise<Outcome> {
  const body = `amount=${cents}&currency=usd&source=tok_visa&description=${encodeURIComponent(label)}`;
  try {
    const response = await fetch(`${dp.url}/v1/charges`, {
      method: 'POST',
      headers: { authorization: `Bearer ${vaultKey}`, 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    await response.arrayBuffer();
    return { status: response.status, code: response.headers.get('keybrake-error') };
  } catch {
    return { status: 0, code: 'connection_failed' };
  }
}

/** Runs the calls with at most `parallel` in flight, spread round-robin over the data planes. */
async function fanOut(planes: () => TestDataPlane[], vaultKey: string, cents: readonly number[], label: string, parallel: number, onProgress?: (done: number) => void): Promise<Outcome[]> {
  const outcomes: Outcome[] = new Array(cents.length);
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < cents.length) {
        const i = next++;
        const live = planes();
        outcomes[i] = await charge(live[i % live.length]!, vaultKey, cents[i]!, label);
        onProgress?.(++done);
      }
    }),
  );
  return outcomes;
}

/** Money Stripe accepted for one label, from the wiretap: the ground truth. */
function acceptedMicros(label: string): { micros: number; largest: number; count: number } {
  let micros = 0;
  let largest = 0;
  let count = 0;
  for (const request of sim.wiretap.requests()) {
    const body = new URLSearchParams(request.body.toString('utf8'));
    if (body.get('description') !== label || request.response === undefined || request.response.status !== 200) continue;
    const cents = Number(body.get('amount'));
    micros += cents * 10_000;
    largest = Math.max(largest, cents * 10_000);
    count++;
    expect(headerValue(request, 'authorization')).toBe(`Bearer ${SECRET}`);
  }
  return { micros, largest, count };
}

describe('three data planes, one $500 cap', () => {
  it('~600 concurrent calls of random amounts: accepted sum <= cap and >= cap minus the largest call', async () => {
    const planes = await dataPlanes(3);
    const key = await issue('caps/600');
    const cents = amounts(600, 42);
    const outcomes = await fanOut(() => planes, key.vaultKey, cents, 'caps/600', 48);

    const accepted = acceptedMicros('caps/600');
    expect(accepted.micros).toBeLessThanOrEqual(CAP_MICROS);
    expect(accepted.micros).toBeGreaterThanOrEqual(CAP_MICROS - 50 * 1_000_000);
    const denied = outcomes.filter((o) => o.status !== 200);
    expect(denied.length).toBeGreaterThan(400);
    for (const o of denied) expect(o).toEqual({ status: 429, code: 'spend_cap_exceeded' });
    expect(outcomes.filter((o) => o.status === 200)).toHaveLength(accepted.count);

    // After clean shutdowns every lease is reported: the ledger says what Stripe saw.
    await Promise.all(planes.map((p) => p.stop()));
    const { body } = await cp.http('GET', `/vault/keys/${key.id}`);
    expect(body.spent_micros).toBe(accepted.micros);
    expect(body.leased_micros).toBe(0);
    expect(body.at_risk_micros).toBe(0);
    expect(body.remaining_micros).toBe(CAP_MICROS - accepted.micros);
  });
});

describe('failures', () => {
  it('kill -9 of a data plane under load: no overspend, the others keep serving, its unreported grant is at risk', async () => {
    const planes = await dataPlanes(3);
    const key = await issue('caps/kill');
    const victim = planes[2]!;
    let killed = false;
    const cents = amounts(500, 7, 1000);
    const outcomes = await fanOut(() => (killed ? planes.slice(0, 2) : planes), key.vaultKey, cents, 'caps/kill', 30, (done) => {
      if (done === 20 && !killed) {
        killed = true;
        process.kill(victim.pid, 'SIGKILL');
      }
    });
    const accepted = acceptedMicros('caps/kill');
    expect(accepted.micros).toBeLessThanOrEqual(CAP_MICROS);
    const afterKill = outcomes.slice(60);
    expect(afterKill.some((o) => o.status === 200)).toBe(true);
    for (const o of afterKill) expect([200, 429]).toContain(o.status);

    // Once its lease expires, what the victim never reported is counted as at risk.
    await new Promise((r) => setTimeout(r, 3000 + 1000 + 2000));
    const { body } = await cp.http('GET', `/vault/keys/${key.id}`);
    expect(body.spent_micros + body.at_risk_micros + body.leased_micros).toBeLessThanOrEqual(CAP_MICROS);
    expect(body.spent_micros).toBeLessThanOrEqual(accepted.micros);
  });

  it('a data plane cut off from the control plane serves only what it holds, then refuses; the others carry on', async () => {
    const relay: TcpRelay = await startTcpRelay(cp.grpcAddress);
    stoppers.push(relay);
    const planes = await dataPlanes(2, (i) => (i === 0 ? relay.address : cp.grpcAddress));
    const key = await issue('caps/partition');
    const cents = amounts(400, 99);
    let cutAt = 0;
    const outcomes = await fanOut(() => planes, key.vaultKey, cents, 'caps/partition', 8, (done) => {
      if (done === 40) {
        relay.cut();
        cutAt = Date.now();
      }
    });
    const accepted = acceptedMicros('caps/partition');
    expect(accepted.micros).toBeLessThanOrEqual(CAP_MICROS);
    for (const o of outcomes) expect([200, 429, 503]).toContain(o.status);
    // The cut-off plane fails closed with 503 once its lease or policy runs out.
    const late = await charge(planes[0]!, key.vaultKey, 100, 'caps/partition-late');
    if (Date.now() - cutAt > 3000) expect(late).toEqual({ status: 503, code: 'control_plane_unavailable' });
    expect((await charge(planes[1]!, key.vaultKey, 100, 'caps/partition-late')).status).not.toBe(503);
  });
});

describe('denials a caller can act on', () => {
  it('402 for a call that could never fit, 429 with Retry-After at the daily reset, 402 for an amount the request hides', async () => {
    const [dp] = await dataPlanes(1);
    const spec: KeySpec = {
      vendor: 'stripe', label: 'caps/daily', allowedEndpoints: ['POST /v1/charges', 'POST /v1/payment_intents/*/confirm'],
      dailyCapMicros: 10_000_000, budgetMicros: 0, expiresInSeconds: 3600, perCallEstimateMicros: 0,
    };
    const { issued } = await cp.client.issueKey({ spec });
    const post = (path: string, body: string) =>
      fetch(`${dp!.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${issued!.vaultKey}`, 'content-type': 'application/x-www-form-urlencoded' }, body });

    const tooBig = await post('/v1/charges', 'amount=2000&currency=usd&source=tok_visa');
    expect(tooBig.status).toBe(402);
    expect(tooBig.headers.get('keybrake-error')).toBe('amount_exceeds_key_limit');
    expect(tooBig.headers.get('stripe-should-retry')).toBe('false');
    expect(((await tooBig.json()) as { error: { message: string } }).error.message).toMatch(/more than the key's whole daily cap of \$10\.00/);

    expect((await post('/v1/charges', 'amount=600&currency=usd&source=tok_visa')).status).toBe(200);
    const over = await post('/v1/charges', 'amount=600&currency=usd&source=tok_visa');
    expect(over.status).toBe(429);
    expect(over.headers.get('keybrake-error')).toBe('spend_cap_exceeded');
    const midnight = Date.parse(`${new Date().toISOString().slice(0, 10)}T00:00:00Z`) + 86_400_000;
    expect(Number(over.headers.get('retry-after'))).toBeCloseTo((midnight - Date.now()) / 1000, -1);

    const hidden = await post('/v1/payment_intents/pi_123/confirm', '');
    expect(hidden.status).toBe(402);
    expect(((await hidden.json()) as { error: { message: string } }).error.message).toMatch(/per_call_estimate_usd/);

    // A currency with no operator-set rate is refused, never guessed.
    const unpriced = await post('/v1/charges', 'amount=100&currency=xts&source=tok_visa');
    expect(unpriced.status).toBe(400);
    expect(unpriced.headers.get('keybrake-error')).toBe('request_malformed');
  });
});

describe('PaymentIntents priced once', () => {
  it('confirming an intent this data plane priced at creation costs nothing more; an unknown one needs a per-call estimate', async () => {
    const [dp] = await dataPlanes(1);
    const spec: KeySpec = {
      vendor: 'stripe', label: 'caps/intents', allowedEndpoints: ['POST /v1/payment_intents', 'POST /v1/payment_intents/*/confirm'],
      dailyCapMicros: 0, budgetMicros: 10_000_000, expiresInSeconds: 3600, perCallEstimateMicros: 0,
    };
    const { issued } = await cp.client.issueKey({ spec });
    const post = (path: string, body: string) =>
      fetch(`${dp!.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${issued!.vaultKey}`, 'content-type': 'application/x-www-form-urlencoded' }, body });
    const created = await post('/v1/payment_intents', 'amount=600&currency=usd');
    expect(created.status).toBe(200);
    const intent = (await created.json()) as { id: string };
    const confirmed = await post(`/v1/payment_intents/${intent.id}/confirm`, '');
    expect(confirmed.status).toBe(200);
    // The $6.00 was counted once, at creation: $4.00 of the $10.00 budget is left for a second intent.
    expect((await post('/v1/payment_intents', 'amount=400&currency=usd')).status).toBe(200);
    expect((await post('/v1/payment_intents', 'amount=1&currency=usd')).status).toBe(429);

    const elsewhere = (await (await fetch(`${sim.url}/v1/payment_intents`, { method: 'POST', headers: { authorization: `Bearer ${SECRET}` }, body: new URLSearchParams({ amount: '100', currency: 'usd' }) })).json()) as { id: string };
    const unknown = await post(`/v1/payment_intents/${elsewhere.id}/confirm`, '');
    expect(unknown.status).toBe(402);
  });

  it('is free on every data plane: one that heard of the creation, and one started after it', async () => {
    const [creator, other] = await dataPlanes(2);
    const spec: KeySpec = {
      vendor: 'stripe', label: 'caps/intents-shared', allowedEndpoints: ['POST /v1/payment_intents', 'POST /v1/payment_intents/*/confirm'],
      dailyCapMicros: 0, budgetMicros: 10_000_000, expiresInSeconds: 3600, perCallEstimateMicros: 0,
    };
    const { issued } = await cp.client.issueKey({ spec });
    const post = (dp: TestDataPlane, path: string, body: string) =>
      fetch(`${dp.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${issued!.vaultKey}`, 'content-type': 'application/x-www-form-urlencoded' }, body });
    // A confirm of an intent the data plane does not (yet) know is refused (402: no per-call
    // estimate) and changes nothing, so asking again until the news arrives is harmless.
    const confirmOnceKnown = async (dp: TestDataPlane, intentId: string) => {
      for (let attempt = 0; ; attempt++) {
        const response = await post(dp, `/v1/payment_intents/${intentId}/confirm`, '');
        if (response.status !== 402 || attempt >= 100) return response.status;
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    const first = (await (await post(creator!, '/v1/payment_intents', 'amount=600&currency=usd')).json()) as { id: string };
    expect(await confirmOnceKnown(other!, first.id)).toBe(200);

    const second = (await (await post(creator!, '/v1/payment_intents', 'amount=300&currency=usd')).json()) as { id: string };
    // Started after the creation was audited: it learns of the key's intents when it first looks
    // the key up, before that first call is priced, so the confirm is free at once.
    await new Promise((r) => setTimeout(r, 300));
    const [late] = await dataPlanes(1);
    const known = async () => Number(/^keybrake_priced_intents (\d+)/m.exec(await (await fetch(`${late!.url}/metrics`)).text())?.[1]);
    expect(await known()).toBe(0);
    expect((await post(late!, `/v1/payment_intents/${second.id}/confirm`, '')).status).toBe(200);
    expect(await known()).toBeGreaterThanOrEqual(2);

    // $9.00 counted, once each, at creation: $1.00 of the $10.00 budget is left.
    expect((await post(late!, '/v1/payment_intents', 'amount=100&currency=usd')).status).toBe(200);
    expect((await post(other!, '/v1/payment_intents', 'amount=1&currency=usd')).status).toBe(429);
  });
});

describe('a retry once the cap is used up', () => {
  it('gets its original charge back from Stripe; a new charge, or a retry of a refused one, is still 429', async () => {
    const [dp] = await dataPlanes(1);
    const spec: KeySpec = {
      vendor: 'stripe', label: 'caps/retry', allowedEndpoints: ['POST /v1/charges'],
      dailyCapMicros: 0, budgetMicros: 22_000_000, expiresInSeconds: 3600, perCallEstimateMicros: 0,
    };
    const { issued } = await cp.client.issueKey({ spec });
    const charge = (idempotencyKey: string, cents = 2000) =>
      fetch(`${dp!.url}/v1/charges`, {
        method: 'POST',
        headers: { authorization: `Bearer ${issued!.vaultKey}`, 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': idempotencyKey },
        body: `amount=${cents}&currency=usd&source=tok_visa`,
      });
    // The second seed's cap: amount x 1.1. The first charge leaves $2.00 of room.
    const first = await charge('order-1');
    expect(first.status).toBe(200);
    const original = (await first.json()) as { id: string };

    const retry = await charge('order-1');
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(((await retry.json()) as { id: string }).id).toBe(original.id);

    const another = await charge('order-2');
    expect(another.status).toBe(429);
    expect(another.headers.get('keybrake-error')).toBe('spend_cap_exceeded');

    // A charge Stripe refused (4xx) is not stored as an idempotent result to lean on.
    sim.failNext({ status: 402 });
    expect((await charge('order-3', 100)).status).toBe(402);
    const bigger = await charge('order-3', 2000);
    expect(bigger.status).toBe(429);

    const forwarded = sim.wiretap.requests().filter((r) => r.url === '/v1/charges' && ['order-1', 'order-2', 'order-3'].includes(String(headerValue(r, 'idempotency-key'))));
    expect(forwarded.map((r) => headerValue(r, 'idempotency-key'))).toEqual(['order-1', 'order-1', 'order-3']);
    // $20.00 moved once: nothing was reserved or counted for the replay.
    await dp!.stop();
    const key = (await cp.client.getKey({ id: issued!.key!.id })).key!;
    expect(key.spend!.spentMicros).toBe(20_000_000);
  });
});
