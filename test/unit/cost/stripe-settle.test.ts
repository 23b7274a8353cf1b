import type { IncomingHttpHeaders } from 'node:http';

import { describe, expect, it } from 'vitest';

import { estimateCost, settleCost, type CostEstimate, type PricedRequest, type Settlement } from '../../../core/cost/index.js';
import { findStripeRoute, stripeRouteInventory } from '../../../core/cost/stripe-routes.js';
import { ALLOWANCE, NO_ALLOWANCE, response, stripePost, TABLES } from './helpers.js';

function estimated(request: PricedRequest, key = NO_ALLOWANCE): CostEstimate {
  const estimate = estimateCost(request, key, TABLES);
  expect(estimate.kind).not.toBe('refused');
  return estimate;
}

const createIntent = stripePost('/v1/payment_intents', 'amount=2000&currency=usd&confirm=true');

const intent = (fields: Record<string, unknown>) => ({ id: 'pi_1', object: 'payment_intent', amount: 2000, currency: 'usd', amount_received: 0, latest_charge: null, ...fields });
const charge = (fields: Record<string, unknown>) => ({ id: 'ch_1', object: 'charge', amount: 2000, currency: 'usd', amount_captured: 2000, amount_refunded: 0, ...fields });

describe('settleCost (Stripe)', () => {
  it('settles a created PaymentIntent at the amount it shows', () => {
    const settlement = settleCost(createIntent, estimated(createIntent), response(200, intent({ latest_charge: 'ch_9' })), TABLES);
    expect(settlement).toEqual<Settlement>({ micros: 20_000_000, objectId: 'pi_1', stripeChargeId: 'ch_9', replayed: false, amount: 2000, currency: 'usd' });
  });

  it("reads an expanded latest_charge's id", () => {
    const settlement = settleCost(createIntent, estimated(createIntent), response(200, intent({ latest_charge: { id: 'ch_8', object: 'charge' } })), TABLES);
    expect(settlement.stripeChargeId).toBe('ch_8');
  });

  it("settles a charge at its amount, with the charge's own id as stripeChargeId", () => {
    const request = stripePost('/v1/charges', 'amount=2000&currency=usd&source=tok_visa');
    expect(settleCost(request, estimated(request), response(200, charge({})), TABLES)).toEqual<Settlement>({
      micros: 20_000_000,
      objectId: 'ch_1',
      stripeChargeId: 'ch_1',
      replayed: false,
      amount: 2000,
      currency: 'usd',
    });
  });

  it('costs nothing when Stripe replays a stored answer (Idempotent-Replayed: true), whatever the case of the header', () => {
    for (const headers of [{ 'idempotent-replayed': 'true' }, { 'Idempotent-Replayed': 'true' }, { 'idempotent-replayed': ['true'] }]) {
      const settlement = settleCost(createIntent, estimated(createIntent), response(200, intent({})), TABLES);
      const replayed = settleCost(createIntent, estimated(createIntent), response(200, intent({}), headers), TABLES);
      expect(settlement.replayed).toBe(false);
      expect(replayed).toMatchObject({ micros: 0, replayed: true, objectId: 'pi_1', amount: 2000, currency: 'usd' });
    }
  });

  it('takes node:http response headers as they come', () => {
    const headers: IncomingHttpHeaders = { 'idempotent-replayed': 'true', 'set-cookie': ['a=1', 'b=2'], 'request-id': 'req_1' };
    const settlement = settleCost(createIntent, estimated(createIntent), { status: 200, headers, body: Buffer.from(JSON.stringify(intent({}))) }, TABLES);
    expect(settlement).toMatchObject({ micros: 0, replayed: true });
  });

  it('costs nothing for a replayed error either', () => {
    const settlement = settleCost(createIntent, estimated(createIntent), response(402, { error: { type: 'card_error' } }, { 'idempotent-replayed': 'true' }), TABLES);
    expect(settlement).toMatchObject({ micros: 0, replayed: true });
  });

  it.each([400, 401, 402, 403, 404, 409, 429])('costs nothing when Stripe refuses the call (%i)', (status) => {
    const body = { error: { type: 'invalid_request_error', code: 'x', message: 'no' } };
    expect(settleCost(createIntent, estimated(createIntent), response(status, body), TABLES)).toEqual<Settlement>({
      micros: 0,
      objectId: null,
      stripeChargeId: null,
      replayed: false,
      amount: 2000,
      currency: 'usd',
    });
  });

  it.each([500, 502, 503])('keeps the reservation when the outcome is unknown (%i): Stripe documents a 5xx result as indeterminate', (status) => {
    expect(settleCost(createIntent, estimated(createIntent), response(status, { error: { type: 'api_error' } }), TABLES).micros).toBe(20_000_000);
  });

  it('keeps the reservation when a 2xx answer is not JSON', () => {
    expect(settleCost(createIntent, estimated(createIntent), response(200, '<html>'), TABLES)).toMatchObject({ micros: 20_000_000, objectId: null, amount: 2000, currency: 'usd' });
  });

  it('settles a capture at amount_received, converted', () => {
    const request = stripePost('/v1/payment_intents/pi_1/capture', 'amount_to_capture=1500');
    const estimate = estimated(request);
    expect(estimate).toMatchObject({ micros: 1500 * 12_700 });
    const settlement = settleCost(request, estimate, response(200, intent({ currency: 'eur', amount_received: 1500, latest_charge: 'ch_2' })), TABLES);
    expect(settlement).toEqual<Settlement>({ micros: 16_249_995, objectId: 'pi_1', stripeChargeId: 'ch_2', replayed: false, amount: 1500, currency: 'eur' });
  });

  it('settles a confirm priced by the per-call estimate at the amount the intent shows — above the estimate if need be', () => {
    const request = stripePost('/v1/payment_intents/pi_1/confirm', '');
    const estimate = estimated(request, ALLOWANCE);
    expect(estimate).toMatchObject({ micros: 25_000_000, amount: null });
    expect(settleCost(request, estimate, response(200, intent({ amount: 900_000 })), TABLES)).toMatchObject({ micros: 9_000_000_000, amount: 900_000, currency: 'usd' });
  });

  it('settles a refund at its amount in the charge currency', () => {
    const request = stripePost('/v1/refunds', 'charge=ch_1&amount=100');
    const settlement = settleCost(request, estimated(request), response(200, { id: 're_1', object: 'refund', amount: 100, currency: 'jpy', charge: 'ch_1' }), TABLES);
    expect(settlement).toEqual<Settlement>({ micros: 666_700, objectId: 're_1', stripeChargeId: null, replayed: false, amount: 100, currency: 'jpy' });
  });

  it('settles a refund of the rest at the amount refunded', () => {
    const request = stripePost('/v1/refunds', 'payment_intent=pi_1');
    const settlement = settleCost(request, estimated(request, ALLOWANCE), response(200, { id: 're_1', object: 'refund', amount: 750, currency: 'usd' }), TABLES);
    expect(settlement).toMatchObject({ micros: 7_500_000, amount: 750, currency: 'usd' });
  });

  it('settles the legacy charge refund at the charge\'s amount_refunded', () => {
    const request = stripePost('/v1/charges/ch_1/refund', '');
    const settlement = settleCost(request, estimated(request, ALLOWANCE), response(200, charge({ amount_refunded: 1200 })), TABLES);
    expect(settlement).toMatchObject({ micros: 12_000_000, objectId: 'ch_1', stripeChargeId: 'ch_1', amount: 1200 });
  });

  it('settles a charge capture at amount_captured', () => {
    const request = stripePost('/v1/charges/ch_1/capture', '');
    expect(settleCost(request, estimated(request, ALLOWANCE), response(200, charge({ amount_captured: 1500 })), TABLES).micros).toBe(15_000_000);
  });

  it('settles an invoice payment at amount_paid', () => {
    const request = stripePost('/v1/invoices/in_1/pay', '');
    const body = { id: 'in_1', object: 'invoice', amount_paid: 4200, amount_due: 4200, currency: 'gbp', charge: 'ch_5' };
    expect(settleCost(request, estimated(request, ALLOWANCE), response(200, body), TABLES)).toMatchObject({ micros: 53_340_000, objectId: 'in_1', amount: 4200, currency: 'gbp' });
  });

  it('settles a Checkout Session at amount_total when it is above the reservation, and at the reservation otherwise', () => {
    const request = stripePost('/v1/checkout/sessions', 'line_items[0][price]=price_1');
    const estimate = estimated(request, ALLOWANCE);
    // The customer may still pay more than the session shows at creation (a quantity, a shipping option).
    expect(settleCost(request, estimate, response(200, { id: 'cs_1', object: 'checkout.session', amount_total: 999, currency: 'usd' }), TABLES).micros).toBe(25_000_000);
    expect(settleCost(request, estimate, response(200, { id: 'cs_1', object: 'checkout.session', amount_total: 4_000, currency: 'usd' }), TABLES).micros).toBe(40_000_000);
    expect(settleCost(request, estimate, response(200, { id: 'cs_1', object: 'checkout.session', amount_total: null, currency: 'usd' }), TABLES).micros).toBe(25_000_000);
  });

  it('settles a subscription at its estimate (the answer states no single amount)', () => {
    const request = stripePost('/v1/subscriptions', 'items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=1000');
    expect(settleCost(request, estimated(request), response(200, { id: 'sub_1', object: 'subscription', currency: 'usd' }), TABLES)).toMatchObject({
      micros: 10_000_000,
      objectId: 'sub_1',
      amount: 1000,
      currency: 'usd',
    });
  });

  it.each<[string, Record<string, unknown>]>([
    ['a currency without a rate', intent({ currency: 'chf' })],
    ['another object type', { id: 'x', object: 'customer', amount: 1, currency: 'usd' }],
    ['a non-integer amount', intent({ amount: 20.5 })],
    ['a negative amount', intent({ amount: -1 })],
    ['an amount given as a string', intent({ amount: '2000' })],
    ['no currency', intent({ currency: undefined })],
  ])('keeps the reservation when the answer shows %s', (_name, body) => {
    expect(settleCost(createIntent, estimated(createIntent), response(200, body), TABLES).micros).toBe(20_000_000);
  });

  it('settles a free call at 0 even when the answer shows an amount', () => {
    const request = stripePost('/v1/payment_intents/pi_1', 'metadata[a]=b');
    expect(settleCost(request, estimated(request), response(200, intent({})), TABLES)).toMatchObject({ micros: 0, objectId: 'pi_1', stripeChargeId: null, amount: null });
  });

  it('settles a refused estimate at 0 (it was never meant to be forwarded)', () => {
    const request = stripePost('/v1/payment_intents/pi_1/confirm', '');
    const estimate = estimateCost(request, NO_ALLOWANCE, TABLES);
    expect(estimate.kind).toBe('refused');
    expect(settleCost(request, estimate, response(200, intent({})), TABLES).micros).toBe(0);
  });
});

describe('settleCost (Stripe): the answer shows more than was priced', () => {
  /** A reservation of one micro: anything the answer shows is more. */
  const tiny: CostEstimate = { kind: 'priced', micros: 1, amount: null, currency: null, detail: 'test' };

  it('counts what the answer shows, for every route whose answer shows its amount', () => {
    let checked = 0;
    for (const { route } of stripeRouteInventory()) {
      const [method = '', path = ''] = route.split(' ');
      const segments = path.slice(1).split('/').map((segment) => (segment === '*' ? 'id_1' : segment));
      const settles = findStripeRoute(method, segments)?.settles;
      if (settles == null) continue;
      // The answer's object, with the amount where the route reads it: 1,000,000 cents = $10,000.
      const body: Record<string, unknown> = { id: 'obj_1', object: settles.object };
      let holder = body;
      for (const name of settles.amount.slice(0, -1)) holder = (holder[name] = {}) as Record<string, unknown>;
      holder[settles.amount[settles.amount.length - 1] ?? ''] = 1_000_000;
      holder.currency = 'usd';
      const request: PricedRequest = { vendor: 'stripe', method, segments, query: '', contentType: undefined, body: null };
      expect(settleCost(request, tiny, response(200, body), TABLES).micros, route).toBe(10_000_000_000);
      checked += 1;
    }
    expect(checked).toBeGreaterThanOrEqual(25);
  });
});

describe('settleCost (Stripe): settlement never gives back money the call can still move', () => {
  it('settles a Checkout Session with an adjustable quantity at its reservation, not at the quantity the answer shows', () => {
    const request = stripePost(
      '/v1/checkout/sessions',
      'mode=payment&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&line_items[0][price_data][product_data][name]=x&line_items[0][adjustable_quantity][enabled]=true',
    );
    const estimate = estimated(request);
    expect(estimate).toMatchObject({ micros: 99_000_000 });
    expect(settleCost(request, estimate, response(200, { id: 'cs_1', object: 'checkout.session', amount_total: 100, currency: 'usd' }), TABLES).micros).toBe(99_000_000);
  });

  it("settles a subscription at its first invoice's amount_due when expanded and above the reservation, else at the reservation (a trial bills later)", () => {
    const request = stripePost('/v1/subscriptions', 'customer=cus_1&trial_period_days=14&items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=1000&items[0][price_data][product]=prod_1&items[0][price_data][recurring][interval]=month');
    const estimate = estimated(request);
    const subscription = (latestInvoice: unknown) => response(200, { id: 'sub_1', object: 'subscription', currency: 'usd', latest_invoice: latestInvoice });
    expect(settleCost(request, estimate, subscription({ id: 'in_1', object: 'invoice', amount_due: 0, currency: 'usd' }), TABLES).micros).toBe(10_000_000);
    expect(settleCost(request, estimate, subscription({ id: 'in_1', object: 'invoice', amount_due: 5_000, currency: 'usd' }), TABLES).micros).toBe(50_000_000);
    expect(settleCost(request, estimate, subscription('in_1'), TABLES).micros).toBe(10_000_000);
  });

  it("settles an accepted quote at no less than the estimate, and at its amount_total above it", () => {
    const request = stripePost('/v1/quotes/qt_1/accept', '');
    const estimate = estimated(request, ALLOWANCE);
    const quote = (amountTotal: number) => response(200, { id: 'qt_1', object: 'quote', amount_total: amountTotal, currency: 'usd' });
    expect(settleCost(request, estimate, quote(100), TABLES).micros).toBe(25_000_000);
    expect(settleCost(request, estimate, quote(9_000), TABLES).micros).toBe(90_000_000);
  });

  it('settles a closed dispute and a finalized invoice at what the answer shows', () => {
    const close = stripePost('/v1/disputes/dp_1/close', '');
    expect(settleCost(close, estimated(close, ALLOWANCE), response(200, { id: 'dp_1', object: 'dispute', amount: 7_000, currency: 'usd' }), TABLES).micros).toBe(70_000_000);
    const finalize = stripePost('/v1/invoices/in_1/finalize', '');
    expect(settleCost(finalize, estimated(finalize, ALLOWANCE), response(200, { id: 'in_1', object: 'invoice', amount_due: 300, currency: 'usd' }), TABLES).micros).toBe(3_000_000);
  });

  it('settles signed amounts by their size: an invoice item credit, a customer balance credit', () => {
    const item = stripePost('/v1/invoiceitems', 'customer=cus_1&pricing[price]=price_1');
    expect(settleCost(item, estimated(item, ALLOWANCE), response(200, { id: 'ii_1', object: 'invoiceitem', amount: -4_000, currency: 'usd' }), TABLES)).toMatchObject({ micros: 40_000_000, amount: 4_000 });
    const balance = stripePost('/v1/customers/cus_1/balance_transactions', 'amount=-100&currency=usd');
    const answer = response(200, { id: 'cbtxn_1', object: 'customer_balance_transaction', amount: -100, currency: 'usd' });
    expect(settleCost(balance, estimated(balance), answer, TABLES)).toMatchObject({ micros: 1_000_000, amount: 100, currency: 'usd' });
  });

  it('settles a credit note at its amount, in the currency it shows', () => {
    const request = stripePost('/v1/credit_notes', 'invoice=in_1&refund_amount=1000');
    expect(settleCost(request, estimated(request), response(200, { id: 'cn_1', object: 'credit_note', amount: 1_000, currency: 'usd' }), TABLES).micros).toBe(10_000_000);
  });
});

describe('settleCost (Stripe): money an earlier call already counted (coveredMicros)', () => {
  /** What the proxy builds for a confirm or capture of an intent priced at its creation ($20). */
  const covered: CostEstimate = { kind: 'priced', micros: 0, amount: null, currency: null, detail: 'priced at creation', coveredMicros: 20_000_000 };
  const confirm = stripePost('/v1/payment_intents/pi_1/confirm', '');
  const capture = stripePost('/v1/payment_intents/pi_1/capture', '');

  it('counts nothing when the answer shows what was already counted', () => {
    expect(settleCost(confirm, covered, response(200, intent({ amount: 2000 })), TABLES)).toMatchObject({ micros: 0, amount: 2000 });
  });

  it('counts what the answer shows beyond it (an amount raised elsewhere, a capture above the priced amount)', () => {
    expect(settleCost(confirm, covered, response(200, intent({ amount: 5000 })), TABLES).micros).toBe(30_000_000);
    expect(settleCost(capture, covered, response(200, intent({ amount: 90_000, amount_received: 90_000 })), TABLES).micros).toBe(880_000_000);
  });

  it('counts nothing below it, when the answer shows no amount, when Stripe refused, or replayed', () => {
    expect(settleCost(capture, covered, response(200, intent({ amount_received: 1500 })), TABLES).micros).toBe(0);
    expect(settleCost(confirm, covered, response(200, '<html>'), TABLES).micros).toBe(0);
    expect(settleCost(confirm, covered, response(402, { error: { type: 'card_error' } }), TABLES).micros).toBe(0);
    expect(settleCost(confirm, covered, response(200, intent({ amount: 9000 }), { 'idempotent-replayed': 'true' }), TABLES).micros).toBe(0);
  });
});
