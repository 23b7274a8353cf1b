/**
 * Stripe's route tables: every call stripe-node can make is classified, docs/pricing.md lists
 * the same routes, money movers are never free, and a call on no list is refused without a
 * per-call estimate (fail closed).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { estimateCost, type CostEstimate, type KeyPricing, type PricedRequest } from '../../../core/cost/index.js';
import { findStripeRoute, stripeRouteInventory, type RouteClass } from '../../../core/cost/stripe-routes.js';
import { ALLOWANCE, NO_ALLOWANCE, stripeCall, stripePost, TABLES } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

type Expected = Partial<Record<'kind' | 'micros' | 'amount' | 'currency' | 'code', unknown>>;
const free: Expected = { kind: 'free' };
const priced = (micros: number): Expected => ({ kind: 'priced', micros });
const unknown: Expected = { kind: 'refused', code: 'amount_unknown' };
const allowance = priced(ALLOWANCE.perCallEstimateMicros);
/** GBP is the dearest minor unit in TABLES: amounts of unstated currency are bounded by it. */
const GBP_PENNY = 12_700;

function estimate(request: PricedRequest, key: KeyPricing): CostEstimate {
  return estimateCost(request, key, TABLES);
}

/** Every `_makeRequest('POST'|'DELETE', '/v…')` of stripe-node's generated resources, ids as '*'. */
function stripeNodeRoutes(): string[] {
  const routes = new Set<string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.js')) {
        for (const match of readFileSync(path, 'utf8').matchAll(/_makeRequest\('(POST|DELETE)',\s*(['`])(\/v[12]\/.*?)\2/g)) {
          routes.add(`${match[1]} ${(match[3] ?? '').replace(/\$\{encodeURIComponent\([^)]*\)\}/g, '*')}`);
        }
      }
    }
  };
  walk(join(ROOT, 'node_modules/stripe/cjs/resources'));
  return [...routes].sort();
}

describe('the Stripe route inventory', () => {
  const inventory = stripeRouteInventory();
  const classified = new Map(inventory.map((entry) => [entry.route, entry.class]));

  it('classifies every POST and DELETE route stripe-node can call (a new SDK route fails here until it is classified)', () => {
    const sdk = stripeNodeRoutes();
    expect(sdk.length).toBeGreaterThan(300);
    expect(sdk.filter((route) => !classified.has(route))).toEqual([]);
  });

  it('classifies each route once, and only the legacy routes stripe-node no longer sends are extra', () => {
    expect(classified.size).toBe(inventory.length);
    const sdk = new Set(stripeNodeRoutes());
    expect(inventory.map((entry) => entry.route).filter((route) => !sdk.has(route))).toEqual([
      'POST /v1/charges/*/refunds',
      'POST /v1/charges/*/refund',
      'POST /v1/application_fees/*/refund',
      'POST /v2/money_management/outbound_transfers',
    ]);
  });

  it('finds each route by its own path, ids filled in', () => {
    for (const { route, class: kind } of inventory) {
      const [method = '', path = ''] = route.split(' ');
      const segments = path.slice(1).split('/').map((segment) => (segment === '*' ? 'id_123' : segment));
      expect(findStripeRoute(method, segments), route).toMatchObject({ route, class: kind });
    }
  });

  it('prefers a literal segment to an id (/v1/invoices/create_preview is not an invoice update)', () => {
    expect(estimate(stripePost('/v1/invoices/create_preview', 'customer=cus_1&subscription_details[items][0][price]=price_1'), NO_ALLOWANCE)).toEqual(free);
    expect(estimate(stripePost('/v1/invoices/in_1', 'auto_advance=true'), NO_ALLOWANCE)).toMatchObject(unknown);
  });

  it('agrees with docs/pricing.md: every route of each table is in the matching section, and no other', () => {
    const doc = readFileSync(join(ROOT, 'docs/pricing.md'), 'utf8');
    const stripe = /^## Stripe\n([\s\S]*?)(?=^## )/m.exec(doc)?.[1] ?? '';
    const sections: Record<RouteClass, string> = {
      priced: /^### Priced from the request\n([\s\S]*?)(?=^### )/m.exec(stripe)?.[1] ?? '',
      estimated: /^### Priced by the per-call estimate\n([\s\S]*?)(?=^### )/m.exec(stripe)?.[1] ?? '',
      free: /^### Free\n([\s\S]*?)(?=^### )/m.exec(stripe)?.[1] ?? '',
    };
    const routesIn = (text: string): string[] => [...text.matchAll(/`((?:POST|DELETE|GET) \/[^`]*)`/g)].map((match) => match[1] ?? '');
    for (const kind of ['priced', 'estimated', 'free'] as const) {
      const inDoc = new Set(routesIn(sections[kind]));
      const inCode = new Set(inventory.filter((entry) => entry.class === kind).map((entry) => entry.route));
      expect([...inCode].filter((route) => !inDoc.has(route)), `${kind}: in the code, not in the doc`).toEqual([]);
      expect([...inDoc].filter((route) => !inCode.has(route)), `${kind}: in the doc, not in the code`).toEqual([]);
    }
    // Anywhere else in the Stripe section, a route named must be a classified one.
    expect(routesIn(stripe).filter((route) => !classified.has(route))).toEqual([]);
  });
});

describe('Stripe fails closed: a call on no list is priced by the per-call estimate, never free', () => {
  it.each<[string, PricedRequest]>([
    ['a new top-level resource', stripePost('/v1/brand_new_things', 'amount=100')],
    ['a new action on a known resource', stripePost('/v1/customers/cus_1/brand_new_action', '')],
    ['a new action on a money resource', stripePost('/v1/payment_intents/pi_1/brand_new_action', '')],
    ['a DELETE of something with no DELETE route', stripeCall('DELETE', '/v1/payment_intents/pi_1')],
    ['a legacy customer subscription route', stripePost('/v1/customers/cus_1/subscriptions', 'plan=plan_1')],
    ['PATCH, which Stripe does not use', stripeCall('PATCH', '/v1/customers/cus_1')],
    ['PUT', stripeCall('PUT', '/v1/payment_intents')],
    ['a path outside /v1 and /v2', stripePost('/oauth/token', 'grant_type=authorization_code')],
    ['a /v3 path', stripePost('/v3/anything', '')],
  ])('%s', (_name, request) => {
    const refused = estimate(request, NO_ALLOWANCE);
    expect(refused).toMatchObject(unknown);
    expect(refused.kind === 'refused' && refused.message).toMatch(/on none of Keybrake's lists.*no per-call estimate/);
    expect(estimate(request, ALLOWANCE)).toMatchObject(allowance);
  });

  it('reads are free, whatever their path', () => {
    expect(estimate(stripeCall('GET', '/v1/brand_new_things'), NO_ALLOWANCE)).toEqual(free);
    expect(estimate(stripeCall('HEAD', '/v1/charges/ch_1'), NO_ALLOWANCE)).toEqual(free);
    expect(estimate(stripeCall('get', '/v1/charges'), NO_ALLOWANCE)).toEqual(free);
  });

  it('names a long unknown path in a cut-down form', () => {
    const refused = estimate(stripePost(`/v1/${'x'.repeat(5_000)}`, ''), NO_ALLOWANCE);
    expect(refused.kind === 'refused' && refused.message.length).toBeLessThan(400);
  });
});

/**
 * The calls an attack on a $1 key without a per-call estimate made for free. Each now costs its
 * stated amount, or the per-call estimate (refused without one).
 */
describe('Stripe: the money movers that were free are priced', () => {
  it.each<[string, PricedRequest, Expected, Expected]>([
    ['invoice create', stripePost('/v1/invoices', 'customer=cus_1&auto_advance=true'), unknown, allowance],
    ['invoice create with pending items', stripePost('/v1/invoices', 'customer=cus_1&pending_invoice_items_behavior=include'), unknown, allowance],
    ['invoice finalize', stripePost('/v1/invoices/in_1/finalize', ''), unknown, allowance],
    ['invoice send', stripePost('/v1/invoices/in_1/send', ''), unknown, allowance],
    ['invoice add_lines', stripePost('/v1/invoices/in_1/add_lines', 'lines[0][amount]=100000&lines[0][description]=x'), unknown, allowance],
    ['invoice update turning on automatic collection', stripePost('/v1/invoices/in_1', 'auto_advance=true'), unknown, allowance],
    ['invoice item by Price', stripePost('/v1/invoiceitems', 'customer=cus_1&pricing[price]=price_1'), unknown, allowance],
    ['invoice item with an amount', stripePost('/v1/invoiceitems', 'customer=cus_1&amount=100000&currency=usd'), priced(1_000_000_000), priced(1_000_000_000)],
    ['invoice item with unit_amount × quantity (older API)', stripePost('/v1/invoiceitems', 'customer=cus_1&unit_amount=1000&quantity=99&currency=usd'), priced(990_000_000), priced(990_000_000)],
    ['invoice item update to a new amount', stripePost('/v1/invoiceitems/ii_1', 'amount=100000'), priced(100_000 * GBP_PENNY), priced(100_000 * GBP_PENNY)],
    ['subscription create by Price', stripePost('/v1/subscriptions', 'customer=cus_1&items[0][price]=price_1'), unknown, allowance],
    ['subscription update of its items', stripePost('/v1/subscriptions/sub_1', 'items[0][id]=si_1&items[0][price]=price_2'), unknown, allowance],
    ['subscription update of a quantity', stripePost('/v1/subscriptions/sub_1', 'items[0][id]=si_1&items[0][quantity]=99'), unknown, allowance],
    ['subscription update ending the trial now', stripePost('/v1/subscriptions/sub_1', 'trial_end=now'), unknown, allowance],
    ['subscription cancel that invoices now', stripeCall('DELETE', '/v1/subscriptions/sub_1', 'invoice_now=true'), unknown, allowance],
    ['subscription resume', stripePost('/v1/subscriptions/sub_1/resume', 'billing_cycle_anchor=now'), unknown, allowance],
    ['subscription schedule create', stripePost('/v1/subscription_schedules', 'customer=cus_1&phases[0][items][0][price]=price_1'), unknown, allowance],
    ['subscription item create by Price', stripePost('/v1/subscription_items', 'subscription=sub_1&price=price_1&quantity=99'), unknown, allowance],
    [
      'subscription item create with price_data',
      stripePost('/v1/subscription_items', 'subscription=sub_1&price_data[currency]=usd&price_data[unit_amount]=1000&price_data[product]=prod_1&price_data[recurring][interval]=month&quantity=99'),
      priced(990_000_000),
      priced(990_000_000),
    ],
    ['subscription item update of its quantity', stripePost('/v1/subscription_items/si_1', 'quantity=99'), unknown, allowance],
    ['subscription item delete', stripeCall('DELETE', '/v1/subscription_items/si_1'), unknown, allowance],
    ['credit note with refund_amount', stripePost('/v1/credit_notes', 'invoice=in_1&refund_amount=100000'), priced(100_000 * GBP_PENNY), priced(100_000 * GBP_PENNY)],
    ['credit note with credit_amount', stripePost('/v1/credit_notes', 'invoice=in_1&credit_amount=5000'), priced(5_000 * GBP_PENNY), priced(5_000 * GBP_PENNY)],
    ['customer balance transaction (a credit)', stripePost('/v1/customers/cus_1/balance_transactions', 'amount=-100000&currency=usd'), priced(1_000_000_000), priced(1_000_000_000)],
    ['customer created with a balance', stripePost('/v1/customers', 'email=a%40example.com&balance=-100000'), priced(100_000 * GBP_PENNY), priced(100_000 * GBP_PENNY)],
    ["a customer's balance changed", stripePost('/v1/customers/cus_1', 'balance=0'), unknown, allowance],
    ['quote accept', stripePost('/v1/quotes/qt_1/accept', ''), unknown, allowance],
    ['dispute close (concedes the disputed amount)', stripePost('/v1/disputes/dp_1/close', ''), unknown, allowance],
    ['credit note void', stripePost('/v1/credit_notes/cn_1/void', ''), unknown, allowance],
    ['Terminal process_payment_intent', stripePost('/v1/terminal/readers/tmr_1/process_payment_intent', 'payment_intent=pi_1'), unknown, allowance],
    ['Terminal confirm_payment_intent', stripePost('/v1/terminal/readers/tmr_1/confirm_payment_intent', 'payment_intent=pi_1'), unknown, allowance],
    ['Terminal refund_payment of a whole charge', stripePost('/v1/terminal/readers/tmr_1/refund_payment', 'charge=ch_1'), unknown, allowance],
    ['Issuing authorization approve', stripePost('/v1/issuing/authorizations/iauth_1/approve', ''), unknown, allowance],
    ['Issuing card create', stripePost('/v1/issuing/cards', 'cardholder=ich_1&currency=usd&type=virtual&status=active'), unknown, allowance],
    ['Issuing card activation', stripePost('/v1/issuing/cards/ic_1', 'status=active'), unknown, allowance],
    ['billing meter event', stripePost('/v1/billing/meter_events', 'event_name=api_calls&payload[value]=1000000&payload[stripe_customer_id]=cus_1'), unknown, allowance],
    ['apply_customer_balance of the whole intent', stripePost('/v1/payment_intents/pi_1/apply_customer_balance', ''), unknown, allowance],
    ['apply_customer_balance with an amount', stripePost('/v1/payment_intents/pi_1/apply_customer_balance', 'amount=500'), priced(500 * GBP_PENNY), priced(500 * GBP_PENNY)],
    ['payment link by Price', stripePost('/v1/payment_links', 'line_items[0][price]=price_1&line_items[0][quantity]=1'), unknown, allowance],
    [
      'payment link without a limit on completed sessions',
      stripePost('/v1/payment_links', 'line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&line_items[0][price_data][product]=prod_1&line_items[0][quantity]=1'),
      unknown,
      allowance,
    ],
    ['payment link reactivated', stripePost('/v1/payment_links/plink_1', 'active=true'), unknown, allowance],
    ['billing portal session', stripePost('/v1/billing_portal/sessions', 'customer=cus_1'), unknown, allowance],
    ['card forwarding request', stripePost('/v1/forwarding/requests', 'payment_method=pm_1&url=https%3A%2F%2Fx'), unknown, allowance],
    ['climate order', stripePost('/v1/climate/orders', 'product=climsku_1&metric_tons=100'), unknown, allowance],
    ['Treasury financial account closed with forwarding', stripePost('/v1/treasury/financial_accounts/fa_1/close', 'forwarding_settings[type]=payment_method&forwarding_settings[payment_method]=pm_1'), unknown, allowance],
    ['Treasury credit reversal', stripePost('/v1/treasury/credit_reversals', 'received_credit=rc_1'), unknown, allowance],
    ['test clock advance (bills subscriptions)', stripePost('/v1/test_helpers/test_clocks/clock_1/advance', 'frozen_time=2000000000'), unknown, allowance],
  ])('%s', (_name, request, withoutEstimate, withEstimate) => {
    expect(estimate(request, NO_ALLOWANCE)).toMatchObject(withoutEstimate);
    expect(estimate(request, ALLOWANCE)).toMatchObject(withEstimate);
  });
});

describe('Stripe: the free list, spot-checked (each with a body that touches no money)', () => {
  it.each<[string, PricedRequest]>([
    ['create a customer', stripePost('/v1/customers', 'email=a%40example.com&name=A&metadata[balance]=1')],
    ["update a customer's email", stripePost('/v1/customers/cus_1', 'email=b%40example.com')],
    ['create a product', stripePost('/v1/products', 'name=Widget')],
    ['create a price (the catalog, not a payment)', stripePost('/v1/prices', 'currency=usd&unit_amount=100000&product=prod_1')],
    ['create a coupon', stripePost('/v1/coupons', 'amount_off=500&currency=usd&duration=once')],
    ['create a webhook endpoint', stripePost('/v1/webhook_endpoints', 'url=https%3A%2F%2Fx&enabled_events[0]=*')],
    ['confirm a SetupIntent', stripePost('/v1/setup_intents/seti_1/confirm', 'payment_method=pm_1')],
    ['attach a payment method', stripePost('/v1/payment_methods/pm_1/attach', 'customer=cus_1')],
    ['cancel a PaymentIntent', stripePost('/v1/payment_intents/pi_1/cancel', '')],
    ['void an invoice', stripePost('/v1/invoices/in_1/void', '')],
    ['update an invoice description', stripePost('/v1/invoices/in_1', 'description=x&metadata[k]=v')],
    ['create a quote (nothing moves until it is accepted)', stripePost('/v1/quotes', 'customer=cus_1&line_items[0][price]=price_1')],
    ['change a subscription\'s metadata and payment method', stripePost('/v1/subscriptions/sub_1', 'metadata[k]=v&default_payment_method=pm_1')],
    ['cancel a subscription outright', stripeCall('DELETE', '/v1/subscriptions/sub_1')],
    ['cancel a subscription, invoice_now=false', stripeCall('DELETE', '/v1/subscriptions/sub_1', 'invoice_now=false&prorate=false')],
    ['deactivate a Payment Link', stripePost('/v1/payment_links/plink_1', 'active=false')],
    ['update a Checkout Session\'s metadata', stripePost('/v1/checkout/sessions/cs_1', 'metadata[k]=v')],
    ['deactivate an Issuing card', stripePost('/v1/issuing/cards/ic_1', 'status=inactive')],
    ['collect a card on a Terminal reader', stripePost('/v1/terminal/readers/tmr_1/collect_payment_method', 'payment_intent=pi_1')],
    ['create a connected account', stripePost('/v1/accounts', 'type=express&country=US')],
    ['a customer balance transaction\'s description', stripePost('/v1/customers/cus_1/balance_transactions/cbtxn_1', 'description=x')],
    ['update an invoice item\'s metadata', stripePost('/v1/invoiceitems/ii_1', 'metadata[k]=v')],
    ['close a Treasury account without forwarding', stripePost('/v1/treasury/financial_accounts/fa_1/close', '')],
    ['DELETE a product', stripeCall('DELETE', '/v1/products/prod_1')],
    ['DELETE a pending invoice item', stripeCall('DELETE', '/v1/invoiceitems/ii_1')],
  ])('%s', (_name, request) => {
    expect(estimate(request, NO_ALLOWANCE)).toEqual(free);
  });
});
