/**
 * Money the cost model cannot price, through a real data plane with the vendors' wiretaps:
 * every Stripe money mover the model does not price from the request is refused on a $1 key
 * without a per-call estimate, and nothing reaches Stripe; Connect routing in the body is
 * refused like the Stripe-Account header; settlement never gives back what a call can still
 * move (a Checkout Session's adjustable quantity) and counts what an answer shows beyond what
 * was priced (a capture above its intent's creation); a call whose TwiML dials ten numbers is
 * reserved for ten legs; satellite destinations are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { KeySpec } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';
import { startTestDataPlane, type TestDataPlane } from '../support/data-plane.js';
import { startHostileVendor, type HostileVendor } from '../support/hostile-vendor.js';
import { rawRequest } from '../support/raw-http.js';
import { PLACEHOLDER_ACCOUNT_SID } from '../support/sdk-clients.js';
import { startAllSimulators, type AllSimulators } from '../simulators/index.js';

let stack: TestStack;
let cp: TestControlPlane;
let sims: AllSimulators;
let vendor: HostileVendor;
/** In front of the realistic simulators. */
let dp: TestDataPlane;
/** In front of the scripted vendor (Stripe only). */
let scripted: TestDataPlane;

const spec = (vendorName: string, allowedEndpoints: string[], change: Partial<KeySpec> = {}): KeySpec => ({
  vendor: vendorName, label: 'hostile/money', allowedEndpoints, dailyCapMicros: 0, budgetMicros: 1_000_000, expiresInSeconds: 3600, perCallEstimateMicros: 0, ...change,
});

beforeAll(async () => {
  stack = await createTestStack();
  cp = await startTestControlPlane(stack);
  sims = await startAllSimulators();
  vendor = await startHostileVendor();
  await cp.client.setVendorCredential({ vendor: 'stripe', secret: sims.secrets.stripeSecretKey, accountSid: '' });
  await cp.client.setVendorCredential({ vendor: 'twilio', secret: sims.secrets.twilioAuthToken, accountSid: sims.secrets.twilioAccountSid });
  dp = await startTestDataPlane(stack, cp.grpcAddress, { stripe: sims.stripe.url, twilio: sims.twilio.url });
  scripted = await startTestDataPlane(stack, cp.grpcAddress, { stripe: vendor.url });
});

afterAll(async () => {
  await dp?.stop();
  await scripted?.stop();
  await vendor?.stop();
  await sims?.stop();
  await cp?.stop();
});

async function issue(keySpec: KeySpec): Promise<{ vaultKey: string; id: string }> {
  const { issued } = await cp.client.issueKey({ spec: keySpec });
  return { vaultKey: issued!.vaultKey, id: issued!.key!.id };
}

function post(port: number, vaultKey: string, path: string, body: string, auth: 'bearer' | 'twilio' = 'bearer') {
  const authorization = auth === 'bearer' ? `Bearer ${vaultKey}` : `Basic ${Buffer.from(`${PLACEHOLDER_ACCOUNT_SID}:${vaultKey}`).toString('base64')}`;
  return rawRequest(
    port,
    `POST ${path} HTTP/1.1\nHost: x\nAuthorization: ${authorization}\nContent-Type: application/x-www-form-urlencoded\nContent-Length: ${Buffer.byteLength(body)}\nConnection: close\n\n`,
    body,
  );
}

/** A key's spend as the control plane shows it, once the data plane's reports have arrived. */
async function spentMicros(id: string, expected: number): Promise<number> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { body } = await cp.http('GET', `/vault/keys/${id}`);
    if (body.spent_micros === expected || Date.now() > deadline) return body.spent_micros as number;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Stripe calls that move money the request does not bound (or bounds above $1), each with a plausible body. */
const UNPRICEABLE: readonly (readonly [string, string])[] = [
  ['/v1/invoices', 'customer=cus_1'],
  ['/v1/invoices/in_1/finalize', ''],
  ['/v1/invoices/in_1/pay', ''],
  ['/v1/invoiceitems', 'customer=cus_1&price=price_1'],
  ['/v1/subscriptions', 'customer=cus_1&items[0][price]=price_1'],
  ['/v1/subscriptions/sub_1', 'items[0][price]=price_2'],
  ['/v1/subscriptions', 'customer=cus_1&items[0][price_data][currency]=usd&items[0][price_data][product]=prod_1&items[0][price_data][unit_amount]=100&items[0][price_data][recurring][interval]=month&backdate_start_date=1600000000'],
  ['/v1/subscription_items', 'subscription=sub_1&price=price_1'],
  ['/v1/subscription_items/si_1', 'quantity=50'],
  ['/v1/credit_notes', 'invoice=in_1&refund_amount=50000'],
  ['/v1/customers/cus_1/balance_transactions', 'amount=-50000&currency=usd'],
  ['/v1/quotes/qt_1/accept', ''],
  ['/v1/disputes/dp_1/close', ''],
  ['/v1/terminal/readers/tmr_1/process_payment_intent', 'payment_intent=pi_1'],
  ['/v1/issuing/authorizations/iauth_1/approve', ''],
  ['/v1/billing/meter_events', 'event_name=api_calls&payload[stripe_customer_id]=cus_1&payload[value]=1000000'],
  ['/v1/payment_intents/pi_1/apply_customer_balance', ''],
  ['/v1/payment_links', 'line_items[0][price]=price_1&line_items[0][quantity]=1'],
  ['/v1/checkout/sessions', 'mode=payment&line_items[0][price]=price_1&line_items[0][quantity]=1'],
  ['/v1/some_future_endpoint', 'amount=1'],
];

describe('Stripe calls the cost model cannot price', () => {
  it('are each refused on a $1 key without a per-call estimate, and none reaches Stripe', async () => {
    const allowlist = [...new Set(UNPRICEABLE.map(([path]) => `POST ${path.replace(/\/(in|sub|si|cus|qt|dp|tmr|iauth|pi)_1/g, '/*')}`))];
    const { vaultKey } = await issue(spec('stripe', allowlist));
    sims.stripe.wiretap.clear();
    const refused: [string, number, string][] = [];
    for (const [path, body] of UNPRICEABLE) {
      const answer = await post(dp.port, vaultKey, path, body);
      refused.push([path, answer.status, answer.headers['keybrake-error'] ?? '']);
    }
    expect(refused).toEqual(UNPRICEABLE.map(([path]) => [path, 402, 'amount_exceeds_key_limit']));
    expect(sims.stripe.wiretap.count).toBe(0);
  });

  it('go out at the key’s per-call estimate when it has one, and count it', async () => {
    const key = await issue(spec('stripe', ['POST /v1/invoices/*/finalize', 'POST /v1/quotes/*/accept'], { perCallEstimateMicros: 300_000 }));
    vendor.script({ body: { id: 'in_1', object: 'invoice' } }, { body: { id: 'qt_1', object: 'quote' } });
    expect((await post(scripted.port, key.vaultKey, '/v1/invoices/in_1/finalize', '')).status).toBe(200);
    expect((await post(scripted.port, key.vaultKey, '/v1/quotes/qt_1/accept', '')).status).toBe(200);
    // A third would pass the $1 cap.
    expect((await post(scripted.port, key.vaultKey, '/v1/invoices/in_1/finalize', '')).status).toBe(200);
    const fourth = await post(scripted.port, key.vaultKey, '/v1/invoices/in_1/finalize', '');
    expect(fourth.status).toBe(429);
    expect(await spentMicros(key.id, 900_000)).toBe(900_000);
  });
});

describe('Connect routing in the body', () => {
  it('is refused like the Stripe-Account header, on money movers and free calls alike, and nothing is forwarded', async () => {
    const { vaultKey } = await issue(spec('stripe', ['POST /v1/payment_intents', 'POST /v1/setup_intents', 'POST /v1/checkout/sessions'], { budgetMicros: 100_000_000 }));
    sims.stripe.wiretap.clear();
    for (const [path, body, parameter] of [
      ['/v1/payment_intents', 'amount=1000&currency=usd&transfer_data[destination]=acct_attacker', 'transfer_data'],
      ['/v1/payment_intents', 'amount=1000&currency=usd&on_behalf_of=acct_attacker', 'on_behalf_of'],
      ['/v1/setup_intents', 'on_behalf_of=acct_attacker', 'on_behalf_of'],
      ['/v1/checkout/sessions', 'mode=payment&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&line_items[0][price_data][product]=prod_1&payment_intent_data[transfer_data][destination]=acct_attacker', 'transfer_data'],
    ] as const) {
      const answer = await post(dp.port, vaultKey, path, body);
      expect(answer.status, path).toBe(403);
      expect(answer.headers['keybrake-error']).toBe('endpoint_not_allowed');
      expect(JSON.parse(answer.body).error.message).toContain(parameter);
    }
    expect(sims.stripe.wiretap.count).toBe(0);
    // The same calls without routing go through.
    expect((await post(dp.port, vaultKey, '/v1/payment_intents', 'amount=1000&currency=usd')).status).toBe(200);
  });
});

describe('settlement', () => {
  it('keeps a Checkout Session with adjustable quantity at the most the customer can pay', async () => {
    const key = await issue(spec('stripe', ['POST /v1/checkout/sessions'], { budgetMicros: 500_000_000 }));
    // Up to 99 × $1 (Stripe's default maximum); the answer shows the session at quantity 1.
    vendor.script({ body: { id: 'cs_1', object: 'checkout.session', amount_total: 100, currency: 'usd' } });
    const body = 'mode=payment&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&line_items[0][price_data][product]=prod_1&line_items[0][quantity]=1&line_items[0][adjustable_quantity][enabled]=true';
    expect((await post(scripted.port, key.vaultKey, '/v1/checkout/sessions', body)).status).toBe(200);
    expect(await spentMicros(key.id, 99_000_000)).toBe(99_000_000);
  });

  it('counts what a capture shows beyond what its intent was priced at when created', async () => {
    const key = await issue(spec('stripe', ['POST /v1/payment_intents', 'POST /v1/payment_intents/*/capture'], { budgetMicros: 500_000_000 }));
    vendor.script(
      { body: { id: 'pi_captured', object: 'payment_intent', amount: 1000, currency: 'usd', status: 'requires_capture' } },
      // A vendor (or a bug) that moved $50 on an intent created for $10.
      { body: { id: 'pi_captured', object: 'payment_intent', amount: 5000, amount_received: 5000, currency: 'usd', status: 'succeeded' } },
    );
    expect((await post(scripted.port, key.vaultKey, '/v1/payment_intents', 'amount=1000&currency=usd&capture_method=manual')).status).toBe(200);
    expect((await post(scripted.port, key.vaultKey, '/v1/payment_intents/pi_captured/capture', '')).status).toBe(200);
    expect(await spentMicros(key.id, 50_000_000)).toBe(50_000_000);
  });
});

describe('Twilio', () => {
  const calls = `/twilio/2010-04-01/Accounts/${PLACEHOLDER_ACCOUNT_SID}/Calls.json`;

  it('reserves every leg a call’s TwiML dials', async () => {
    // One leg of 10 minutes to a US number fits $1; eleven legs (the call and ten dialled numbers) do not.
    const { vaultKey } = await issue(spec('twilio', ['POST /2010-04-01/Accounts/*/Calls.json']));
    sims.twilio.wiretap.clear();
    const one = await post(dp.port, vaultKey, calls, `To=%2B14155550100&From=%2B14155550199&TimeLimit=600&Twiml=${encodeURIComponent('<Response><Say>hi</Say></Response>')}`, 'twilio');
    expect(one.status).toBe(201);
    const numbers = Array.from({ length: 10 }, (_, i) => `<Number>+1415555${String(1000 + i)}</Number>`).join('');
    const ten = await post(dp.port, vaultKey, calls, `To=%2B14155550100&From=%2B14155550199&TimeLimit=600&Twiml=${encodeURIComponent(`<Response><Dial>${numbers}</Dial></Response>`)}`, 'twilio');
    expect(ten.status).toBe(402);
    expect(ten.headers['keybrake-error']).toBe('amount_exceeds_key_limit');
    // TwiML fetched from a URL can dial anything: it needs a per-call estimate.
    const fetched = await post(dp.port, vaultKey, calls, 'To=%2B14155550100&From=%2B14155550199&TimeLimit=60&Url=https%3A%2F%2Fexample.com%2Ftwiml', 'twilio');
    expect(fetched.status).toBe(402);
    expect(sims.twilio.wiretap.count).toBe(1);
  });

  it('refuses a satellite destination the price tables do not price', async () => {
    const { vaultKey } = await issue(spec('twilio', ['POST /2010-04-01/Accounts/*/Messages.json'], { budgetMicros: 100_000_000 }));
    sims.twilio.wiretap.clear();
    const answer = await post(dp.port, vaultKey, `/twilio/2010-04-01/Accounts/${PLACEHOLDER_ACCOUNT_SID}/Messages.json`, 'To=%2B881631234567&From=%2B14155550199&Body=hi', 'twilio');
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body).message).toMatch(/881/);
    expect(sims.twilio.wiretap.count).toBe(0);
  });
});
