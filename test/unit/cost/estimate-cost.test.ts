import fc from 'fast-check';
import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';

import { DEFAULT_PRICE_TABLES, estimateCost, type CostEstimate, type PricedRequest } from '../../../core/cost/index.js';
import type { Vendor } from '../../../core/vendors.js';
import { ALLOWANCE, NO_ALLOWANCE, stripePost, TABLES, TWILIO_ACCOUNT } from './helpers.js';

/** Every money-moving path shape the models know, plus a few free ones. */
const PATHS: Record<Vendor, readonly string[]> = {
  stripe: [
    '/v1/payment_intents', '/v1/payment_intents/pi_1', '/v1/payment_intents/pi_1/confirm', '/v1/payment_intents/pi_1/capture',
    '/v1/payment_intents/pi_1/increment_authorization', '/v1/charges', '/v1/charges/ch_1/capture', '/v1/charges/ch_1/refund',
    '/v1/refunds', '/v1/transfers', '/v1/transfers/tr_1/reversals', '/v1/payouts', '/v1/invoices/in_1/pay', '/v1/topups',
    '/v1/checkout/sessions', '/v1/subscriptions', '/v1/customers', '/v2/money_management/outbound_payments', '/v2/core/accounts',
    '/v1/invoiceitems', '/v1/credit_notes', '/v1/customers/cus_1/balance_transactions', '/v1/payment_links', '/v1/subscription_items',
    '/v1/subscriptions/sub_1', '/v1/billing/credit_grants', '/v1/brand_new_thing',
  ],
  twilio: [
    `/2010-04-01/Accounts/${TWILIO_ACCOUNT}/Messages.json`, `/2010-04-01/Accounts/${TWILIO_ACCOUNT}/Calls.json`,
    `/2010-04-01/Accounts/${TWILIO_ACCOUNT}/Conferences/CF1/Participants.json`, `/2010-04-01/Accounts/${TWILIO_ACCOUNT}/IncomingPhoneNumbers/Local.json`,
    `/2010-04-01/Accounts/${TWILIO_ACCOUNT}/Messages/SM1.json`,
  ],
  resend: ['/emails', '/emails/batch', '/emails/e1', '/domains'],
};

const VENDORS = Object.keys(PATHS) as Vendor[];

function isWellFormed(estimate: CostEstimate): boolean {
  switch (estimate.kind) {
    case 'free':
      return true;
    case 'priced':
      return Number.isSafeInteger(estimate.micros) && estimate.micros >= 0 && estimate.detail.length > 0;
    case 'refused':
      return ['request_malformed', 'amount_unknown', 'currency_not_priced', 'account_routing'].includes(estimate.code) && estimate.message.length > 0;
  }
}

/** Form-ish text that often hits the interesting parameters. */
const formText = fc
  .array(
    fc.tuple(
      fc.constantFrom('amount', 'currency', 'amount_to_capture', 'line_items[0][price_data][unit_amount]', 'line_items[0][price_data][currency]', 'line_items[0][quantity]', 'line_items[0][price]', 'items[]', 'To', 'to', 'Body', 'MediaUrl', 'TimeLimit', 'a[', ']', '', '%', '%zz', 'x[][y]', 'on_behalf_of', 'transfer_data[destination]', 'balance', 'lines[0][amount]', 'refund_amount', 'restrictions[completed_sessions][limit]'),
      fc.oneof(fc.constantFrom('100', 'usd', 'USD', 'kwd', 'jpy', '+14155550100', '1e3', '-1', '', '%FF', '%E2%82%AC', '99999999999999999999', 'true'), fc.string({ maxLength: 20 })),
    ),
    { maxLength: 8 },
  )
  .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&'));

const bodyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  fc.string({ unit: 'binary', maxLength: 200 }).map((text) => Buffer.from(text, 'utf8')),
  formText.map((text) => Buffer.from(text, 'latin1')),
  fc.jsonValue({ maxDepth: 4 }).map((value) => Buffer.from(JSON.stringify(value) ?? 'null', 'utf8')),
  fc.constant(null),
);

const requests: fc.Arbitrary<PricedRequest> = fc
  .constantFrom(...VENDORS)
  .chain((vendor) =>
    fc.record({
      vendor: fc.constant(vendor),
      method: fc.constantFrom('POST', 'POST', 'POST', 'GET', 'DELETE', 'PATCH'),
      segments: fc.constantFrom(...PATHS[vendor]).map((path) => path.slice(1).split('/')),
      query: fc.oneof(fc.constant(''), formText, fc.string({ maxLength: 30 })),
      contentType: fc.constantFrom(undefined, 'application/x-www-form-urlencoded', 'application/json', 'text/plain', ''),
      body: bodyBytes,
    }),
  );

describe('estimateCost', () => {
  it('property: returns a well-formed estimate — never throws — for any request bytes', () => {
    fc.assert(
      fc.property(requests, fc.constantFrom(NO_ALLOWANCE, ALLOWANCE), fc.constantFrom(TABLES, DEFAULT_PRICE_TABLES), (request, key, tables) => {
        expect(isWellFormed(estimateCost(request, key, tables))).toBe(true);
      }),
      { numRuns: 5_000 },
    );
  });

  it('property: a stated amount is never under-estimated, whatever the currency', () => {
    const currencies = Object.keys(TABLES.exchangeRates).filter((c) => !['kwd', 'bhd', 'isk', 'ugx'].includes(c));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 11 }), fc.constantFrom(...currencies), fc.constantFrom('/v1/payment_intents', '/v1/charges', '/v1/transfers'), (amount, currency, path) => {
        const estimate = estimateCost(stripePost(path, `amount=${amount}&currency=${currency}`), NO_ALLOWANCE, TABLES);
        if (estimate.kind !== 'priced') throw new Error(`expected a price, got ${JSON.stringify(estimate)}`);
        const rate = BigInt(TABLES.exchangeRates[currency]?.microsPerMajorUnit ?? 0);
        const scale = currency === 'jpy' || currency === 'krw' ? 1n : 100n;
        expect(BigInt(estimate.micros) * scale).toBeGreaterThanOrEqual(BigInt(amount) * rate);
        expect(BigInt(estimate.micros - 1) * scale).toBeLessThan(BigInt(amount) * rate || 1n);
      }),
    );
  });

  it('reads the method case-insensitively: a lower-case post is still a POST', () => {
    expect(estimateCost({ ...stripePost('/v1/charges', 'amount=100&currency=usd'), method: 'post' }, NO_ALLOWANCE, TABLES)).toMatchObject({ kind: 'priced', micros: 1_000_000 });
  });

  it('rethrows what is not a refusal (a bug must not pass as a refusal)', () => {
    const broken = { ...stripePost('/v1/charges', 'amount=1&currency=usd') };
    expect(() => estimateCost(broken, NO_ALLOWANCE, { ...TABLES, exchangeRates: null } as never)).toThrow(TypeError);
  });
});

describe('estimateCost on what the official SDKs send', () => {
  /** Runs stripe-node against a fake fetch and returns the request it would have sent. */
  async function sentByStripeNode(call: (stripe: Stripe) => Promise<unknown>): Promise<PricedRequest> {
    let sent: PricedRequest | null = null;
    const fakeFetch = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const target = new URL(String(url));
      const headers = new Headers(init?.headers);
      sent = {
        vendor: 'stripe',
        method: init?.method ?? 'GET',
        segments: target.pathname.slice(1).split('/'),
        query: target.search.slice(1),
        contentType: headers.get('content-type') ?? undefined,
        body: typeof init?.body === 'string' ? Buffer.from(init.body, 'utf8') : null,
      };
      return new Response('{"id":"x","object":"x"}', { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const stripe = new Stripe('sk_test_123', { httpClient: Stripe.createFetchHttpClient(fakeFetch as typeof fetch), maxNetworkRetries: 0 });
    await call(stripe);
    if (sent === null) throw new Error('stripe-node sent nothing');
    return sent;
  }

  it('prices stripe-node paymentIntents.create, metadata with odd characters included', async () => {
    const request = await sentByStripeNode((s) => s.paymentIntents.create({ amount: 1999, currency: 'eur', metadata: { 'order;id': 'a&b=c', note: '€ 5' } }));
    expect(request.contentType).toBe('application/x-www-form-urlencoded');
    expect(estimateCost(request, NO_ALLOWANCE, TABLES)).toMatchObject({ kind: 'priced', micros: 21_655_827, amount: 1999, currency: 'eur' });
  });

  it('prices stripe-node checkout.sessions.create line items', async () => {
    const request = await sentByStripeNode((s) =>
      s.checkout.sessions.create({
        mode: 'payment',
        success_url: 'https://example.com/ok',
        line_items: [
          { price_data: { currency: 'usd', unit_amount: 500, product_data: { name: 'Widget' } }, quantity: 2 },
          { price_data: { currency: 'usd', unit_amount_decimal: Stripe.Decimal.from('0.5'), product_data: { name: 'Half-cent' } }, quantity: 3 },
        ],
      }),
    );
    expect(estimateCost(request, NO_ALLOWANCE, TABLES)).toMatchObject({ kind: 'priced', micros: 10_015_000, amount: 1002, currency: 'usd' });
  });

  it('prices stripe-node refunds.create and confirm the way the models say', async () => {
    const refund = await sentByStripeNode((s) => s.refunds.create({ payment_intent: 'pi_1', amount: 100 }));
    expect(estimateCost(refund, NO_ALLOWANCE, TABLES)).toMatchObject({ kind: 'priced', micros: 1_270_000, amount: 100, currency: null });
    const confirm = await sentByStripeNode((s) => s.paymentIntents.confirm('pi_1', { payment_method: 'pm_card_visa' }));
    expect(confirm.segments).toEqual(['v1', 'payment_intents', 'pi_1', 'confirm']);
    expect(estimateCost(confirm, NO_ALLOWANCE, TABLES)).toMatchObject({ kind: 'refused', code: 'amount_unknown' });
  });

  it('treats stripe-node reads as free', async () => {
    const list = await sentByStripeNode((s) => s.paymentIntents.list({ limit: 3 }));
    expect(list.method).toBe('GET');
    expect(estimateCost(list, NO_ALLOWANCE, TABLES)).toEqual({ kind: 'free' });
  });
});
