import { describe, expect, it } from 'vitest';

import { estimateCost, type CostEstimate, type KeyPricing, type PricedRequest } from '../../../core/cost/index.js';
import { ALLOWANCE, NO_ALLOWANCE, stripeGet, stripePost, TABLES } from './helpers.js';

type Expected = Partial<Record<'kind' | 'micros' | 'amount' | 'currency' | 'code', unknown>>;

const free: Expected = { kind: 'free' };
const priced = (micros: number, amount: number | null = null, currency: string | null = null): Expected => ({ kind: 'priced', micros, amount, currency });
const refused = (code: string): Expected => ({ kind: 'refused', code });
const malformed = refused('request_malformed');
const unknown = refused('amount_unknown');
/** The key's per-call estimate (ALLOWANCE): 25 USD. */
const allowance = priced(25_000_000);

function check(request: PricedRequest, key: KeyPricing, expected: Expected): CostEstimate {
  const estimate = estimateCost(request, key, TABLES);
  expect(estimate).toMatchObject(expected);
  if (estimate.kind === 'priced') {
    expect(Number.isSafeInteger(estimate.micros)).toBe(true);
    expect(estimate.detail).not.toBe('');
  }
  if (estimate.kind === 'refused') expect(estimate.message).not.toBe('');
  return estimate;
}

/** GBP is the dearest minor unit in TABLES (12,700 micros a penny): amounts of unstated currency are bounded by it. */
const GBP_PENNY = 12_700;

describe('Stripe: calls that move no money are free', () => {
  it.each<[string, PricedRequest]>([
    ['GET a PaymentIntent', stripeGet('/v1/payment_intents/pi_1')],
    ['GET a list with amount in the query', stripeGet('/v1/charges', 'amount=100000')],
    ['create a customer', stripePost('/v1/customers', 'email=a%40example.com')],
    ['update metadata only', stripePost('/v1/payment_intents/pi_1', 'metadata[order]=42')],
    ['cancel a PaymentIntent', stripePost('/v1/payment_intents/pi_1/cancel', '')],
    ['expire a Checkout Session', stripePost('/v1/checkout/sessions/cs_1/expire', '')],
    ['create a SetupIntent', stripePost('/v1/setup_intents', 'customer=cus_1')],
    ['DELETE a customer', { ...stripeGet('/v1/customers/cus_1'), method: 'DELETE' }],
    ['a v2 call that moves no money', { ...stripePost('/v2/core/accounts', '{"display_name":"x"}', { contentType: 'application/json' }) }],
    ['a v2 money-management read', stripeGet('/v2/money_management/outbound_payments')],
    ['a Checkout Session in setup mode (no line items)', stripePost('/v1/checkout/sessions', 'mode=setup&currency=usd')],
  ])('%s', (_name, request) => {
    check(request, NO_ALLOWANCE, free);
  });

  it('still reads a free call\'s parameters strictly: the Connect routing check needs one reading of them', () => {
    check(stripePost('/v1/customers', 'a=1;b=2&a=3'), ALLOWANCE, malformed);
    check(stripePost('/v1/customers', '{"email":"a@example.com"}', { contentType: 'application/json' }), ALLOWANCE, malformed);
  });
});

describe('Stripe: amount and currency in the request', () => {
  it.each<[string, string, string, Expected]>([
    ['payment intent, USD', '/v1/payment_intents', 'amount=1999&currency=usd&payment_method_types[0]=card', priced(19_990_000, 1999, 'usd')],
    ['payment intent, upper-case currency', '/v1/payment_intents', 'amount=100&currency=USD', priced(1_000_000, 100, 'usd')],
    ['payment intent, confirm=true', '/v1/payment_intents', 'amount=100&currency=usd&confirm=true', priced(1_000_000, 100, 'usd')],
    ['payment intent, EUR rounds up', '/v1/payment_intents', 'amount=1&currency=eur', priced(10_834, 1, 'eur')],
    ['payment intent, amount 0', '/v1/payment_intents', 'amount=0&currency=usd', priced(0, 0, 'usd')],
    ['payment intent, leading zeros', '/v1/payment_intents', 'amount=0100&currency=usd', priced(1_000_000, 100, 'usd')],
    ['charge, zero-decimal JPY', '/v1/charges', 'amount=1000&currency=jpy&source=tok_visa', priced(6_667_000, 1000, 'jpy')],
    ['charge, zero-decimal KRW', '/v1/charges', 'amount=10000&currency=krw', priced(7_330_000, 10000, 'krw')],
    ['transfer, three-decimal KWD', '/v1/transfers', 'amount=1230&currency=kwd&destination=acct_1', priced(3_997_500, 1230, 'kwd')],
    ['transfer, three-decimal BHD', '/v1/transfers', 'amount=10&currency=bhd&destination=acct_1', priced(26_520, 10, 'bhd')],
    ['payout, ISK as two-decimal', '/v1/payouts', 'amount=12300&currency=isk', priced(885_600, 12300, 'isk')],
    ['payout, UGX as two-decimal', '/v1/payouts', 'amount=370000&currency=ugx', priced(999_000, 370000, 'ugx')],
    ['payout, HUF whole forints', '/v1/payouts', 'amount=15000&currency=huf', priced(420_000, 15000, 'huf')],
    ['payout, TWD whole dollars', '/v1/payouts', 'amount=1000&currency=twd', priced(310_000, 1000, 'twd')],
    ['payment intent, HUF fillér are fine outside payouts', '/v1/payment_intents', 'amount=150&currency=huf', priced(4_200, 150, 'huf')],
    ['top-up', '/v1/topups', 'amount=5000&currency=usd', priced(50_000_000, 5000, 'usd')],
    ['treasury outbound payment', '/v1/treasury/outbound_payments', 'amount=5000&currency=usd&financial_account=fa_1', priced(50_000_000, 5000, 'usd')],
    ['treasury outbound transfer', '/v1/treasury/outbound_transfers', 'amount=5000&currency=usd&financial_account=fa_1', priced(50_000_000, 5000, 'usd')],
  ])('%s', (_name, path, body, expected) => {
    check(stripePost(path, body), NO_ALLOWANCE, expected);
  });

  it('reads amount and currency from the query too (a vendor may merge them)', () => {
    check(stripePost('/v1/charges', 'currency=usd', { query: 'amount=700' }), NO_ALLOWANCE, priced(7_000_000, 700, 'usd'));
    check(stripePost('/v1/charges', 'amount=1&currency=usd', { query: 'amount=700' }), NO_ALLOWANCE, malformed);
  });

  it.each<[string, string, string, Expected]>([
    ['KWD amount not ending in 0', '/v1/payment_intents', 'amount=1231&currency=kwd', malformed],
    ['BHD amount not ending in 0', '/v1/charges', 'amount=5&currency=bhd', malformed],
    ['ISK amount not divisible by 100', '/v1/payment_intents', 'amount=12345&currency=isk', malformed],
    ['UGX amount not divisible by 100', '/v1/charges', 'amount=150&currency=ugx', malformed],
    ['HUF payout not divisible by 100', '/v1/payouts', 'amount=150&currency=huf', malformed],
    ['TWD payout not divisible by 100', '/v1/payouts', 'amount=1050&currency=twd', malformed],
    ['a currency without a rate', '/v1/payment_intents', 'amount=100&currency=chf', refused('currency_not_priced')],
    ['a currency without a rate, zero-decimal', '/v1/charges', 'amount=100&currency=vnd', refused('currency_not_priced')],
    ['a three-decimal currency without a rate', '/v1/transfers', 'amount=1000&currency=omr', refused('currency_not_priced')],
    ['missing amount', '/v1/payment_intents', 'currency=usd', malformed],
    ['missing currency', '/v1/payment_intents', 'amount=100', malformed],
    ['missing both', '/v1/charges', '', malformed],
    ['a currency that is not a code', '/v1/charges', 'amount=100&currency=dollars', malformed],
    ['a duplicated amount', '/v1/payment_intents', 'amount=1&amount=100000&currency=usd', malformed],
    ['a duplicated currency', '/v1/payment_intents', 'amount=100&currency=jpy&currency=usd', malformed],
    ['amount as an object', '/v1/payment_intents', 'amount[value]=100&currency=usd', malformed],
    ['amount as a list', '/v1/payment_intents', 'amount[]=100&currency=usd', malformed],
    ['exponent notation', '/v1/payment_intents', 'amount=1e3&currency=usd', malformed],
    ['a plus sign', '/v1/payment_intents', 'amount=%2B100&currency=usd', malformed],
    ['a negative amount', '/v1/payment_intents', 'amount=-100&currency=usd', malformed],
    ['a decimal amount', '/v1/payment_intents', 'amount=10.50&currency=usd', malformed],
    ['an empty amount', '/v1/payment_intents', 'amount=&currency=usd', malformed],
    ['a hex amount', '/v1/payment_intents', 'amount=0x10&currency=usd', malformed],
    ['a space-padded amount', '/v1/payment_intents', 'amount=+100&currency=usd', malformed],
    ['an amount beyond safe micros', '/v1/payment_intents', 'amount=900719925475&currency=usd', malformed],
    ['a 40-digit amount', '/v1/payment_intents', `amount=${'9'.repeat(40)}&currency=usd`, malformed],
    ['a JSON body on a v1 money endpoint', '/v1/payment_intents', '', malformed],
  ])('refuses %s', (name, path, body, expected) => {
    const request = name.startsWith('a JSON body')
      ? stripePost(path, '{"amount":100,"currency":"usd"}', { contentType: 'application/json' })
      : stripePost(path, body);
    check(request, ALLOWANCE, expected);
  });

  it('refuses an amount whose micros overflow even though the amount itself is safe (JPY)', () => {
    // MAX_SAFE_INTEGER / 6,667 ≈ 1,351,012,337,594 yen.
    check(stripePost('/v1/charges', 'amount=1351100000000&currency=jpy'), NO_ALLOWANCE, malformed);
    check(stripePost('/v1/charges', 'amount=1351000000000&currency=jpy'), NO_ALLOWANCE, priced(9_007_117_000_000_000, 1_351_000_000_000, 'jpy'));
  });
});

describe('Stripe: amounts of an existing object (currency not in the request)', () => {
  it.each<[string, string, string, KeyPricing, Expected]>([
    ['capture with amount_to_capture', '/v1/payment_intents/pi_1/capture', 'amount_to_capture=500', NO_ALLOWANCE, priced(500 * GBP_PENNY, 500)],
    ['capture of everything', '/v1/payment_intents/pi_1/capture', '', NO_ALLOWANCE, unknown],
    ['capture of everything, per-call estimate', '/v1/payment_intents/pi_1/capture', '', ALLOWANCE, allowance],
    ['capture with a malformed amount', '/v1/payment_intents/pi_1/capture', 'amount_to_capture=5.00', ALLOWANCE, malformed],
    ['increment_authorization', '/v1/payment_intents/pi_1/increment_authorization', 'amount=2000', NO_ALLOWANCE, priced(2000 * GBP_PENNY, 2000)],
    ['increment_authorization without amount', '/v1/payment_intents/pi_1/increment_authorization', '', ALLOWANCE, malformed],
    ['confirm', '/v1/payment_intents/pi_1/confirm', 'payment_method=pm_card_visa', NO_ALLOWANCE, unknown],
    ['confirm, per-call estimate', '/v1/payment_intents/pi_1/confirm', 'payment_method=pm_card_visa', ALLOWANCE, allowance],
    ['update with amount and currency', '/v1/payment_intents/pi_1', 'amount=300&currency=usd', NO_ALLOWANCE, priced(3_000_000, 300, 'usd')],
    ['update with amount only', '/v1/payment_intents/pi_1', 'amount=300', NO_ALLOWANCE, priced(300 * GBP_PENNY, 300)],
    ['update with currency only', '/v1/payment_intents/pi_1', 'currency=usd', NO_ALLOWANCE, unknown],
    ['update with currency only, per-call estimate', '/v1/payment_intents/pi_1', 'currency=usd', ALLOWANCE, allowance],
    ['update with an unpriced currency', '/v1/payment_intents/pi_1', 'amount=300&currency=chf', NO_ALLOWANCE, refused('currency_not_priced')],
    ['charge capture with amount', '/v1/charges/ch_1/capture', 'amount=100', NO_ALLOWANCE, priced(100 * GBP_PENNY, 100)],
    ['charge capture of everything', '/v1/charges/ch_1/capture', '', NO_ALLOWANCE, unknown],
    ['charge capture of everything, per-call estimate', '/v1/charges/ch_1/capture', '', ALLOWANCE, allowance],
    ['refund with amount', '/v1/refunds', 'payment_intent=pi_1&amount=100', NO_ALLOWANCE, priced(100 * GBP_PENNY, 100)],
    ['refund with a currency (not trusted: the charge decides)', '/v1/refunds', 'charge=ch_1&amount=100&currency=jpy', NO_ALLOWANCE, priced(100 * GBP_PENNY, 100)],
    ['refund of the rest', '/v1/refunds', 'charge=ch_1', NO_ALLOWANCE, unknown],
    ['refund of the rest, per-call estimate', '/v1/refunds', 'charge=ch_1', ALLOWANCE, allowance],
    ['refund with a duplicated amount', '/v1/refunds', 'charge=ch_1&amount=1&amount=100000', ALLOWANCE, malformed],
    ['legacy charge refund', '/v1/charges/ch_1/refund', 'amount=100', NO_ALLOWANCE, priced(100 * GBP_PENNY, 100)],
    ['legacy charge refunds', '/v1/charges/ch_1/refunds', '', NO_ALLOWANCE, unknown],
    ['transfer reversal', '/v1/transfers/tr_1/reversals', 'amount=100', NO_ALLOWANCE, priced(100 * GBP_PENNY, 100)],
    ['transfer reversal of the rest', '/v1/transfers/tr_1/reversals', '', ALLOWANCE, allowance],
    ['application fee refund', '/v1/application_fees/fee_1/refunds', 'amount=100', NO_ALLOWANCE, priced(100 * GBP_PENNY, 100)],
    ['legacy application fee refund', '/v1/application_fees/fee_1/refund', '', NO_ALLOWANCE, unknown],
    ['payout reversal', '/v1/payouts/po_1/reverse', '', NO_ALLOWANCE, unknown],
    ['invoice payment', '/v1/invoices/in_1/pay', 'payment_method=pm_1', NO_ALLOWANCE, unknown],
    ['invoice payment, per-call estimate', '/v1/invoices/in_1/pay', '', ALLOWANCE, allowance],
  ])('%s', (_name, path, body, key, expected) => {
    check(stripePost(path, body), key, expected);
  });

  it('bounds an unstated currency by USD alone when USD is all the operator priced', async () => {
    const { USD_ONLY } = await import('./helpers.js');
    expect(estimateCost(stripePost('/v1/refunds', 'charge=ch_1&amount=100'), NO_ALLOWANCE, USD_ONLY)).toMatchObject(priced(1_000_000, 100));
  });

  it('says why an amount is unknown', () => {
    const estimate = check(stripePost('/v1/refunds', 'charge=ch_1'), NO_ALLOWANCE, unknown);
    expect(estimate.kind === 'refused' && estimate.message).toMatch(/refunds the rest of the charge.*no per-call estimate/);
  });
});

describe('Stripe v2', () => {
  const v2 = (path: string) => stripePost(path, '{"amount":{"value":100,"currency":"usd"}}', { contentType: 'application/json' });

  it.each([
    '/v2/money_management/outbound_payments',
    '/v2/money_management/outbound_transfers',
    '/v2/money_management/inbound_transfers',
    '/v2/money_management/payout_intents',
    '/v2/money_management/payout_intents/poi_1',
    '/v2/money_management/payout_intents/poi_1/confirm',
    // Usage is billed later, at prices the request does not state.
    '/v2/billing/meter_events',
    '/v2/billing/meter_event_stream',
    '/v2/billing/meter_event_session',
  ])('POST %s moves money: priced by the per-call estimate', (path) => {
    check(v2(path), NO_ALLOWANCE, unknown);
    check(v2(path), ALLOWANCE, allowance);
  });

  it.each(['/v2/money_management/outbound_payments/obp_1/cancel', '/v2/core/event_destinations', '/v2/core/accounts/acct_1/persons'])('POST %s is free', (path) => {
    check(v2(path), NO_ALLOWANCE, free);
  });

  it.each(['/v2/core/brand_new_thing', '/v2/money_management/brand_new_mover', '/v2/money_management/payout_intents/poi_1/brand_new_action'])(
    'POST %s, on no list, is not free: priced by the per-call estimate',
    (path) => {
      check(v2(path), NO_ALLOWANCE, unknown);
      check(v2(path), ALLOWANCE, allowance);
    },
  );
});

describe('Stripe: Checkout Sessions and Subscriptions (line items)', () => {
  const session = (body: string) => stripePost('/v1/checkout/sessions', `mode=payment&success_url=https%3A%2F%2Fx&${body}`);

  it.each<[string, string, KeyPricing, Expected]>([
    [
      'unit_amount × quantity, quantity defaulting to 1',
      'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=500&line_items[0][quantity]=2&line_items[1][price_data][currency]=usd&line_items[1][price_data][unit_amount]=300&line_items[1][price_data][product_data][name]=x',
      NO_ALLOWANCE,
      priced(13_000_000, 1300, 'usd'),
    ],
    ["the session's currency when price_data has none", 'currency=eur&line_items[0][price_data][unit_amount]=100&line_items[0][quantity]=3', NO_ALLOWANCE, priced(3_249_999, 300, 'eur')],
    ['rounding up once on the total, not per item', 'line_items[0][price_data][currency]=eur&line_items[0][price_data][unit_amount]=1&line_items[1][price_data][currency]=eur&line_items[1][price_data][unit_amount]=2', NO_ALLOWANCE, priced(32_500, 3, 'eur')],
    ['items in two currencies', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&line_items[1][price_data][currency]=jpy&line_items[1][price_data][unit_amount]=100', NO_ALLOWANCE, priced(1_000_000 + 666_700, null, null)],
    ['quantity 0', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&line_items[0][quantity]=0', NO_ALLOWANCE, priced(0, 0, 'usd')],
    ['an adjustable quantity up to its maximum', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&line_items[0][adjustable_quantity][enabled]=true&line_items[0][adjustable_quantity][maximum]=10', NO_ALLOWANCE, priced(10_000_000, 1000, 'usd')],
    ["an adjustable quantity up to Stripe's default maximum of 99", 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&line_items[0][adjustable_quantity][enabled]=true', NO_ALLOWANCE, priced(99_000_000, 9900, 'usd')],
    ['a disabled adjustable quantity', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&line_items[0][quantity]=2&line_items[0][adjustable_quantity][enabled]=false&line_items[0][adjustable_quantity][maximum]=10', NO_ALLOWANCE, priced(2_000_000, 200, 'usd')],
    ['unit_amount_decimal, rounded up', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount_decimal]=0.5&line_items[0][quantity]=3', NO_ALLOWANCE, priced(15_000, 2, 'usd')],
    ['unit_amount_decimal with 12 places', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount_decimal]=0.000000000001', NO_ALLOWANCE, priced(1, 1, 'usd')],
    ['a Price id', 'line_items[0][price]=price_123&line_items[0][quantity]=1', NO_ALLOWANCE, unknown],
    ['a Price id, per-call estimate', 'line_items[0][price]=price_123', ALLOWANCE, allowance],
    [
      'a Price id next to visible items worth more than the per-call estimate',
      'line_items[0][price]=price_123&line_items[1][price_data][currency]=usd&line_items[1][price_data][unit_amount]=500000',
      ALLOWANCE,
      priced(5_000_000_000),
    ],
    ['automatic tax', 'automatic_tax[enabled]=true&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100', NO_ALLOWANCE, unknown],
    ['automatic tax, per-call estimate', 'automatic_tax[enabled]=true&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100', ALLOWANCE, allowance],
    ['automatic tax disabled', 'automatic_tax[enabled]=false&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100', NO_ALLOWANCE, priced(1_000_000, 100, 'usd')],
    ['tax rates on an item', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&line_items[0][tax_rates][0]=txr_1', NO_ALLOWANCE, unknown],
    ['dynamic tax rates on an item', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&line_items[0][dynamic_tax_rates][0]=txr_1', NO_ALLOWANCE, unknown],
    ['shipping options', 'shipping_options[0][shipping_rate]=shr_1&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100', NO_ALLOWANCE, unknown],
    ['an item currency without a rate', 'line_items[0][price_data][currency]=chf&line_items[0][price_data][unit_amount]=100', ALLOWANCE, refused('currency_not_priced')],
    ['no currency anywhere', 'line_items[0][price_data][unit_amount]=100', ALLOWANCE, malformed],
    ['both price and price_data', 'line_items[0][price]=price_1&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100', ALLOWANCE, malformed],
    ['neither price nor price_data', 'line_items[0][quantity]=1', ALLOWANCE, malformed],
    ['price_data without an amount', 'line_items[0][price_data][currency]=usd', ALLOWANCE, malformed],
    ['both unit_amount and unit_amount_decimal', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=1&line_items[0][price_data][unit_amount_decimal]=1', ALLOWANCE, malformed],
    ['unit_amount_decimal with 13 places', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount_decimal]=0.0000000000001', ALLOWANCE, malformed],
    ['unit_amount_decimal in exponent notation', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount_decimal]=1e2', ALLOWANCE, malformed],
    ['a decimal unit_amount', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=1.5', ALLOWANCE, malformed],
    ['a malformed quantity', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=1&line_items[0][quantity]=2.5', ALLOWANCE, malformed],
    ['a duplicated unit_amount', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=1&line_items[0][price_data][unit_amount]=100000', ALLOWANCE, malformed],
    ['a duplicated quantity', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=1&line_items[0][quantity]=1&line_items[0][quantity]=1000', ALLOWANCE, malformed],
    ['line items with "[]" grouping', 'line_items[][price_data][currency]=usd&line_items[][price_data][unit_amount]=1', ALLOWANCE, malformed],
    ['an overflowing total', `line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=900719925474&line_items[0][quantity]=2`, ALLOWANCE, malformed],
  ])('%s', (_name, body, key, expected) => {
    check(session(body), key, expected);
  });

  it.each<[string, string, KeyPricing, Expected]>([
    ['items', 'customer=cus_1&items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=1000&items[0][price_data][product]=prod_1&items[0][price_data][recurring][interval]=month&items[0][quantity]=2', NO_ALLOWANCE, priced(20_000_000, 2000, 'usd')],
    ['items plus one-off invoice items', 'items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=1000&add_invoice_items[0][price_data][currency]=usd&add_invoice_items[0][price_data][unit_amount]=500&add_invoice_items[0][quantity]=3', NO_ALLOWANCE, priced(25_000_000, 2500, 'usd')],
    ["the subscription's currency", 'currency=eur&items[0][price_data][unit_amount]=100', NO_ALLOWANCE, priced(1_083_333, 100, 'eur')],
    ['a trial still bounds the first period', 'trial_period_days=14&items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=1000', NO_ALLOWANCE, priced(10_000_000, 1000, 'usd')],
    ['a Price id', 'items[0][price]=price_1', NO_ALLOWANCE, unknown],
    ['a Price id, per-call estimate', 'items[0][price]=price_1', ALLOWANCE, allowance],
    ['a one-off Price id', 'items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=1&add_invoice_items[0][price]=price_1', NO_ALLOWANCE, unknown],
    ['default tax rates', 'default_tax_rates[0]=txr_1&items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=1', NO_ALLOWANCE, unknown],
    ['automatic tax', 'automatic_tax[enabled]=true&items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=1', NO_ALLOWANCE, unknown],
    ['adjustable_quantity is a Checkout notion: ignored', 'items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=100&items[0][adjustable_quantity][enabled]=true', NO_ALLOWANCE, priced(1_000_000, 100, 'usd')],
    ['no items', 'customer=cus_1', NO_ALLOWANCE, free],
  ])('subscription: %s', (_name, body, key, expected) => {
    check(stripePost('/v1/subscriptions', body), key, expected);
  });
});
