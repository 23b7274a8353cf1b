/**
 * The Stripe objects whose money is more than one parameter: invoice items, credit notes,
 * balances, credit grants, Payment Links, subscriptions and their items, and the updates that
 * are free only while they touch nothing that moves money.
 */
import { describe, expect, it } from 'vitest';

import { estimateCost, type KeyPricing, type PricedRequest } from '../../../core/cost/index.js';
import { ALLOWANCE, NO_ALLOWANCE, stripeCall, stripePost, TABLES } from './helpers.js';

type Expected = Partial<Record<'kind' | 'micros' | 'amount' | 'currency' | 'code', unknown>>;
const free: Expected = { kind: 'free' };
const priced = (micros: number, amount?: number | null, currency?: string | null): Expected => ({
  kind: 'priced',
  micros,
  ...(amount === undefined ? {} : { amount }),
  ...(currency === undefined ? {} : { currency }),
});
const unknown: Expected = { kind: 'refused', code: 'amount_unknown' };
const malformed: Expected = { kind: 'refused', code: 'request_malformed' };
const allowance = priced(ALLOWANCE.perCallEstimateMicros, null, null);
const GBP_PENNY = 12_700;

function check(request: PricedRequest, key: KeyPricing, expected: Expected): void {
  expect(estimateCost(request, key, TABLES)).toMatchObject(expected);
}

describe('Stripe: invoice items', () => {
  const item = (body: string) => stripePost('/v1/invoiceitems', `customer=cus_1&${body}`);

  it.each<[string, string, KeyPricing, Expected]>([
    ['amount in a currency', 'amount=2500&currency=eur', NO_ALLOWANCE, priced(27_083_325, 2500, 'eur')],
    ["amount in the customer's currency (bounded at the dearest)", 'amount=2500', NO_ALLOWANCE, priced(2500 * GBP_PENNY, 2500, null)],
    ['a credit counts by its size', 'amount=-2500&currency=usd', NO_ALLOWANCE, priced(25_000_000, 2500, 'usd')],
    ['amount beside a quantity can only over-reserve', 'amount=100&quantity=3&currency=usd', NO_ALLOWANCE, priced(3_000_000, 300, 'usd')],
    ['unit_amount_decimal × quantity', 'unit_amount_decimal=0.5&quantity=3&currency=usd', NO_ALLOWANCE, priced(15_000, 2, 'usd')],
    ['price_data × quantity', 'price_data[currency]=usd&price_data[product]=prod_1&price_data[unit_amount]=700&quantity=2', NO_ALLOWANCE, priced(14_000_000, 1400, 'usd')],
    ['a Price by id', 'pricing[price]=price_1', NO_ALLOWANCE, unknown],
    ['a Price by id (older API)', 'price=price_1&quantity=2', ALLOWANCE, allowance],
    ['tax rates on top', 'amount=100&currency=usd&tax_rates[0]=txr_1', NO_ALLOWANCE, unknown],
    ['a decimal quantity', 'unit_amount_decimal=1&quantity_decimal=2.5&currency=usd', NO_ALLOWANCE, unknown],
    ['both amount and price_data', 'amount=100&currency=usd&price_data[currency]=usd&price_data[unit_amount]=1', ALLOWANCE, malformed],
    ['no amount at all', 'description=x', ALLOWANCE, malformed],
    ['a malformed credit', 'amount=--5&currency=usd', ALLOWANCE, malformed],
  ])('%s', (_name, body, key, expected) => {
    check(item(body), key, expected);
  });

  it.each<[string, string, Expected]>([
    ['metadata and description', 'metadata[k]=v&description=x&period[start]=1&period[end]=2', free],
    ['a new amount', 'amount=300', priced(300 * GBP_PENNY, 300, null)],
    ['a new quantity alone (times an unstated unit amount)', 'quantity=5', unknown],
  ])('update: %s', (_name, body, expected) => {
    check(stripePost('/v1/invoiceitems/ii_1', body), NO_ALLOWANCE, expected);
  });
});

describe('Stripe: credit notes (in the invoice currency, bounded at the dearest)', () => {
  const note = (body: string) => stripePost('/v1/credit_notes', `invoice=in_1&${body}`);

  it.each<[string, string, KeyPricing, Expected]>([
    ['amount', 'amount=1000', NO_ALLOWANCE, priced(1000 * GBP_PENNY, 1000, null)],
    ['lines with amounts', 'lines[0][type]=invoice_line_item&lines[0][invoice_line_item]=il_1&lines[0][amount]=300&lines[1][type]=invoice_line_item&lines[1][invoice_line_item]=il_2&lines[1][amount]=200', NO_ALLOWANCE, priced(500 * GBP_PENNY)],
    ['a custom line: unit_amount × quantity', 'lines[0][type]=custom_line_item&lines[0][unit_amount]=250&lines[0][quantity]=4&lines[0][description]=x', NO_ALLOWANCE, priced(1000 * GBP_PENNY)],
    ['refund, credit and out-of-band parts', 'refund_amount=100&credit_amount=200&out_of_band_amount=300', NO_ALLOWANCE, priced(600 * GBP_PENNY)],
    ['refunds[] parts', 'refunds[0][refund]=re_1&refunds[0][amount_refunded]=400', NO_ALLOWANCE, priced(400 * GBP_PENNY)],
    ['the largest of amount and its parts', 'amount=100&refund_amount=900', NO_ALLOWANCE, priced(900 * GBP_PENNY)],
    ['a line crediting a bare quantity', 'lines[0][type]=invoice_line_item&lines[0][invoice_line_item]=il_1&lines[0][quantity]=1', NO_ALLOWANCE, unknown],
    ['a bare quantity, per-call estimate', 'lines[0][type]=invoice_line_item&lines[0][invoice_line_item]=il_1&lines[0][quantity]=1', ALLOWANCE, allowance],
    ['a hidden line with a large visible one: never below what shows', 'lines[0][type]=invoice_line_item&lines[0][invoice_line_item]=il_1&lines[0][quantity]=1&lines[1][type]=custom_line_item&lines[1][unit_amount]=1000000&lines[1][description]=x', ALLOWANCE, priced(1_000_000 * GBP_PENNY, null, null)],
    ['a hidden line inside a stated amount', 'amount=1000&lines[0][type]=invoice_line_item&lines[0][invoice_line_item]=il_1&lines[0][quantity]=1', NO_ALLOWANCE, priced(1000 * GBP_PENNY)],
    ['tax rates on a line', 'lines[0][type]=custom_line_item&lines[0][unit_amount]=100&lines[0][tax_rates][0]=txr_1', NO_ALLOWANCE, unknown],
    ['a shipping cost', 'refund_amount=100&shipping_cost[shipping_rate]=shr_1', NO_ALLOWANCE, unknown],
    ['nothing stated', 'memo=x', NO_ALLOWANCE, unknown],
    ['a negative part', 'refund_amount=-100', ALLOWANCE, malformed],
  ])('%s', (_name, body, key, expected) => {
    check(note(body), key, expected);
  });
});

describe('Stripe: balances and credit grants', () => {
  it.each<[string, PricedRequest, KeyPricing, Expected]>([
    ['a balance transaction debit', stripePost('/v1/customers/cus_1/balance_transactions', 'amount=500&currency=eur'), NO_ALLOWANCE, priced(5_416_665, 500, 'eur')],
    ['a balance transaction credit', stripePost('/v1/customers/cus_1/balance_transactions', 'amount=-500&currency=usd'), NO_ALLOWANCE, priced(5_000_000, 500, 'usd')],
    ['a balance transaction without currency', stripePost('/v1/customers/cus_1/balance_transactions', 'amount=500'), ALLOWANCE, malformed],
    ['a customer opening with a balance', stripePost('/v1/customers', 'balance=700'), NO_ALLOWANCE, priced(700 * GBP_PENNY, 700, null)],
    ['a customer opening with a credit', stripePost('/v1/customers', 'balance=-700'), NO_ALLOWANCE, priced(700 * GBP_PENNY, 700, null)],
    ["a customer's balance reset to 0 (the difference is unstated)", stripePost('/v1/customers/cus_1', 'balance=0'), ALLOWANCE, allowance],
    ['a monetary credit grant', stripePost('/v1/billing/credit_grants', 'customer=cus_1&category=paid&applicability_config[scope][price_type]=metered&amount[type]=monetary&amount[monetary][value]=1000&amount[monetary][currency]=usd'), NO_ALLOWANCE, priced(10_000_000, 1000, 'usd')],
    ['a credit grant of another kind', stripePost('/v1/billing/credit_grants', 'customer=cus_1&amount[type]=custom_pricing_unit'), NO_ALLOWANCE, unknown],
    ['a fund_cash_balance test helper', stripePost('/v1/test_helpers/customers/cus_1/fund_cash_balance', 'amount=100&currency=usd'), NO_ALLOWANCE, priced(1_000_000, 100, 'usd')],
    ['a Treasury inbound transfer', stripePost('/v1/treasury/inbound_transfers', 'amount=100&currency=usd&financial_account=fa_1&origin_payment_method=pm_1'), NO_ALLOWANCE, priced(1_000_000, 100, 'usd')],
  ])('%s', (_name, request, key, expected) => {
    check(request, key, expected);
  });
});

describe('Stripe: Payment Links (a Checkout Session many customers can open)', () => {
  const ITEM = 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&line_items[0][price_data][product]=prod_1&line_items[0][quantity]=2';

  it.each<[string, string, KeyPricing, Expected]>([
    ['line items × the limit on completed sessions', `${ITEM}&restrictions[completed_sessions][limit]=10`, NO_ALLOWANCE, priced(20_000_000, 2000, 'usd')],
    ['an adjustable quantity at its maximum, × the limit', `${ITEM}&line_items[0][adjustable_quantity][enabled]=true&line_items[0][adjustable_quantity][maximum]=5&restrictions[completed_sessions][limit]=3`, NO_ALLOWANCE, priced(15_000_000, 1500, 'usd')],
    ['no limit: paid any number of times', ITEM, NO_ALLOWANCE, unknown],
    ['no limit, per-call estimate (never below one payment)', ITEM, ALLOWANCE, allowance],
    ['optional items the customer may add', `${ITEM}&restrictions[completed_sessions][limit]=1&optional_items[0][price]=price_1&optional_items[0][quantity]=1`, NO_ALLOWANCE, unknown],
    ['a malformed limit', `${ITEM}&restrictions[completed_sessions][limit]=1e3`, ALLOWANCE, malformed],
  ])('%s', (_name, body, key, expected) => {
    check(stripePost('/v1/payment_links', body), key, expected);
  });
});

describe('Stripe: subscriptions, hidden money', () => {
  const ITEM = 'customer=cus_1&items[0][price_data][currency]=usd&items[0][price_data][unit_amount]=1000&items[0][price_data][product]=prod_1&items[0][price_data][recurring][interval]=month';

  it.each<[string, string, Expected]>([
    ['backdate_start_date bills the periods since then', `${ITEM}&backdate_start_date=946684800`, unknown],
    ['a billing cycle anchor bills a proration', `${ITEM}&billing_cycle_anchor=2000000000`, unknown],
    ['a billing cycle anchor config, likewise', `${ITEM}&billing_cycle_anchor_config[day_of_month]=31`, unknown],
    ['a billing cycle anchor without proration: one period', `${ITEM}&billing_cycle_anchor=2000000000&proration_behavior=none`, priced(10_000_000, 1000, 'usd')],
    ['billing schedules', `${ITEM}&billing_schedules[0][applies_to][0][type]=price`, unknown],
    ['a legacy Plan by id', 'customer=cus_1&items[0][plan]=plan_1', unknown],
    ['both a Price and a Plan', 'customer=cus_1&items[0][plan]=plan_1&items[0][price]=price_1', malformed],
  ])('%s', (_name, body, expected) => {
    check(stripePost('/v1/subscriptions', body), NO_ALLOWANCE, expected);
  });

  it.each<[string, string, Expected]>([
    ['optional items', 'optional_items[0][price]=price_1&optional_items[0][quantity]=1', unknown],
    ['subscription_data[default_tax_rates]', 'subscription_data[default_tax_rates][0]=txr_1', unknown],
    ['a prorating subscription_data[billing_cycle_anchor]', 'subscription_data[billing_cycle_anchor]=2000000000', unknown],
    ['subscription_data[billing_cycle_anchor] without proration', 'subscription_data[billing_cycle_anchor]=2000000000&subscription_data[proration_behavior]=none', priced(1_000_000, 100, 'usd')],
  ])('Checkout: %s', (_name, extra, expected) => {
    const body = `mode=subscription&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&line_items[0][price_data][recurring][interval]=month&${extra}`;
    check(stripePost('/v1/checkout/sessions', body), NO_ALLOWANCE, expected);
  });

  it.each<[string, string, Expected]>([
    ['price_data × quantity', 'subscription=sub_1&price_data[currency]=eur&price_data[unit_amount]=100&price_data[product]=prod_1&price_data[recurring][interval]=month&quantity=3', priced(3_249_999, 300, 'eur')],
    ['tax rates on top', 'subscription=sub_1&price_data[currency]=usd&price_data[unit_amount]=100&price_data[product]=prod_1&price_data[recurring][interval]=month&tax_rates[0]=txr_1', unknown],
    ['neither price nor price_data', 'subscription=sub_1&quantity=2', malformed],
  ])('subscription item: %s', (_name, body, expected) => {
    check(stripePost('/v1/subscription_items', body), NO_ALLOWANCE, expected);
  });
});

describe('Stripe: updates that are free only while they move nothing', () => {
  it.each<[string, PricedRequest, Expected]>([
    ['subscription: how it is paid and described', stripePost('/v1/subscriptions/sub_1', 'description=x&payment_settings[save_default_payment_method]=on_subscription&cancel_at_period_end=true&expand[0]=latest_invoice'), free],
    ['subscription: a coupon', stripePost('/v1/subscriptions/sub_1', 'discounts[0][coupon]=co_1'), unknown],
    ['subscription: proration_behavior alone is not known harmless', stripePost('/v1/subscriptions/sub_1', 'proration_behavior=always_invoice'), unknown],
    ['subscription cancel with prorate', stripeCall('DELETE', '/v1/subscriptions/sub_1', 'prorate=true'), unknown],
    ['subscription cancel with an empty invoice_now (unset: not known harmless)', stripeCall('DELETE', '/v1/subscriptions/sub_1', 'invoice_now='), unknown],
    ['subscription schedule cancel', stripePost('/v1/subscription_schedules/sub_sched_1/cancel', ''), free],
    ['subscription schedule cancel that invoices now', stripePost('/v1/subscription_schedules/sub_sched_1/cancel', 'invoice_now=true'), unknown],
    ['subscription item metadata', stripePost('/v1/subscription_items/si_1', 'metadata[k]=v'), free],
    ['invoice: a shipping cost', stripePost('/v1/invoices/in_1', 'shipping_cost[shipping_rate]=shr_1'), unknown],
    ['invoice: its footer and due date', stripePost('/v1/invoices/in_1', 'footer=x&due_date=2000000000'), free],
    ['Checkout Session: new line items', stripePost('/v1/checkout/sessions/cs_1', 'line_items[0][id]=li_1&line_items[0][quantity]=50'), unknown],
    ['Payment Link: its page texts', stripePost('/v1/payment_links/plink_1', 'custom_text[submit][message]=hi&inactive_message=closed'), free],
    ['Payment Link: new line items', stripePost('/v1/payment_links/plink_1', 'line_items[0][id]=li_1&line_items[0][quantity]=50'), unknown],
    ['Issuing card: cancelled', stripePost('/v1/issuing/cards/ic_1', 'status=canceled&cancellation_reason=lost'), free],
    ['Issuing card: spending limits raised', stripePost('/v1/issuing/cards/ic_1', 'spending_controls[spending_limits][0][amount]=1000000&spending_controls[spending_limits][0][interval]=daily'), unknown],
    ['Issuing cardholder: an email', stripePost('/v1/issuing/cardholders/ich_1', 'email=a%40example.com'), free],
    ['Issuing cardholder: activated', stripePost('/v1/issuing/cardholders/ich_1', 'status=active'), unknown],
  ])('%s', (_name, request, expected) => {
    check(request, NO_ALLOWANCE, expected);
  });

  it('names the parameters that made an update unknown, quoted and a few at most', () => {
    const estimate = estimateCost(stripePost('/v1/subscriptions/sub_1', 'trial_end=now&items[0][id]=si_1&coupon=c&promotion_code=p&metadata[k]=v'), NO_ALLOWANCE, TABLES);
    expect(estimate.kind === 'refused' && estimate.message).toMatch(/"trial_end", "items", "coupon" and 1 more given/);
  });
});
