/**
 * Connect routing in the parameters is refused like the Stripe-Account header: on every v1 call
 * that is not a read, free ones included, nested or not, in the body or the query.
 */
import { describe, expect, it } from 'vitest';

import { estimateCost, type PricedRequest } from '../../../core/cost/index.js';
import { ALLOWANCE, stripeCall, stripeGet, stripePost, TABLES } from './helpers.js';

const PI = '/v1/payment_intents';
const INTENT = 'amount=1000&currency=usd';

function refusal(request: PricedRequest): { code: string; message: string } | null {
  const estimate = estimateCost(request, ALLOWANCE, TABLES);
  return estimate.kind === 'refused' ? { code: estimate.code, message: estimate.message } : null;
}

describe('Stripe: routing money to a connected account is refused (account_routing)', () => {
  it.each<[string, PricedRequest, string]>([
    ['on_behalf_of on a PaymentIntent', stripePost(PI, `${INTENT}&on_behalf_of=acct_1`), 'on_behalf_of'],
    ['transfer_data[destination] on a PaymentIntent', stripePost(PI, `${INTENT}&transfer_data[destination]=acct_1`), 'transfer_data'],
    ['transfer_data[amount] on a capture', stripePost(`${PI}/pi_1/capture`, 'transfer_data[amount]=900'), 'transfer_data'],
    ['transfer_data on a PaymentIntent update (a free call)', stripePost(`${PI}/pi_1`, 'transfer_data[amount]=900'), 'transfer_data'],
    ["a legacy charge's destination", stripePost('/v1/charges', `${INTENT}&source=tok_visa&destination=acct_1`), 'destination'],
    ["a legacy charge's destination[account]", stripePost('/v1/charges', `${INTENT}&source=tok_visa&destination[account]=acct_1&destination[amount]=900`), 'destination'],
    [
      'Checkout payment_intent_data[transfer_data][destination]',
      stripePost('/v1/checkout/sessions', 'mode=payment&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=100&payment_intent_data[transfer_data][destination]=acct_1'),
      'payment_intent_data[transfer_data]',
    ],
    ['Checkout payment_intent_data[on_behalf_of]', stripePost('/v1/checkout/sessions', 'mode=payment&payment_intent_data[on_behalf_of]=acct_1'), 'payment_intent_data[on_behalf_of]'],
    ['Checkout setup_intent_data[on_behalf_of] in setup mode (a free call)', stripePost('/v1/checkout/sessions', 'mode=setup&currency=usd&setup_intent_data[on_behalf_of]=acct_1'), 'setup_intent_data[on_behalf_of]'],
    ['Checkout subscription_data[transfer_data][destination]', stripePost('/v1/checkout/sessions', 'mode=subscription&subscription_data[transfer_data][destination]=acct_1'), 'subscription_data[transfer_data]'],
    ['Checkout subscription_data[on_behalf_of]', stripePost('/v1/checkout/sessions', 'mode=subscription&subscription_data[on_behalf_of]=acct_1'), 'subscription_data[on_behalf_of]'],
    [
      'Checkout invoice_creation[invoice_data][issuer][account]',
      stripePost('/v1/checkout/sessions', 'mode=payment&invoice_creation[enabled]=true&invoice_creation[invoice_data][issuer][type]=account&invoice_creation[invoice_data][issuer][account]=acct_1'),
      'invoice_creation[invoice_data][issuer][account]',
    ],
    ['a subscription with transfer_data', stripePost('/v1/subscriptions', 'customer=cus_1&items[0][price]=price_1&transfer_data[destination]=acct_1'), 'transfer_data'],
    ['a subscription update to on_behalf_of', stripePost('/v1/subscriptions/sub_1', 'on_behalf_of=acct_1'), 'on_behalf_of'],
    ["a subscription schedule phase's transfer_data", stripePost('/v1/subscription_schedules', 'customer=cus_1&phases[0][items][0][price]=price_1&phases[0][transfer_data][destination]=acct_1'), 'phases[0][transfer_data]'],
    ['an invoice with on_behalf_of', stripePost('/v1/invoices', 'customer=cus_1&on_behalf_of=acct_1'), 'on_behalf_of'],
    ["an invoice issued by a connected account (a free update)", stripePost('/v1/invoices/in_1', 'issuer[type]=account&issuer[account]=acct_1'), 'issuer[account]'],
    ["tax owed by a connected account", stripePost('/v1/subscriptions/sub_1', 'automatic_tax[enabled]=true&automatic_tax[liability][type]=account&automatic_tax[liability][account]=acct_1'), 'automatic_tax[liability][account]'],
    ['a payment link with transfer_data', stripePost('/v1/payment_links', 'line_items[0][price]=price_1&line_items[0][quantity]=1&transfer_data[destination]=acct_1'), 'transfer_data'],
    ['a quote with on_behalf_of (a free call)', stripePost('/v1/quotes', 'customer=cus_1&on_behalf_of=acct_1'), 'on_behalf_of'],
    ['a SetupIntent with on_behalf_of (a free call)', stripePost('/v1/setup_intents', 'customer=cus_1&on_behalf_of=acct_1'), 'on_behalf_of'],
    ['a customer create, in case Stripe ever takes it there (a free call)', stripePost('/v1/customers', 'email=a%40example.com&on_behalf_of=acct_1'), 'on_behalf_of'],
    ['on_behalf_of in the query string', stripePost(PI, INTENT, { query: 'on_behalf_of=acct_1' }), 'on_behalf_of'],
    ['transfer_data in the query of a free call', stripePost(`${PI}/pi_1`, 'description=x', { query: 'transfer_data%5Bdestination%5D=acct_1' }), 'transfer_data'],
    ['percent-encoded brackets in the body', stripePost(PI, `${INTENT}&transfer_data%5Bdestination%5D=acct_1`), 'transfer_data'],
    ['a call on no list, priced by the per-call estimate', stripePost('/v1/brand_new_things', 'on_behalf_of=acct_1'), 'on_behalf_of'],
    ['a DELETE with a routing parameter in its query', stripeCall('DELETE', '/v1/subscriptions/sub_1', 'transfer_data%5Bdestination%5D=acct_1'), 'transfer_data'],
    ['a destination on a refund (only transfers and payouts have one of their own)', stripePost('/v1/refunds', 'charge=ch_1&amount=100&destination=acct_1'), 'destination'],
  ])('%s', (_name, request, parameter) => {
    const refused = refusal(request);
    expect(refused?.code).toBe('account_routing');
    // quote() shows at most 40 characters of a name the caller wrote.
    expect(refused?.message).toContain(`parameter "${parameter.slice(0, 39)}`);
    expect(refused?.message).toMatch(/connected account/);
  });

  it.each<[string, PricedRequest]>([
    ["a transfer's own destination (the transfer's purpose; its allowlist entry is the permission)", stripePost('/v1/transfers', 'amount=100&currency=usd&destination=acct_1')],
    ["a payout's destination (an external account of the platform's own)", stripePost('/v1/payouts', 'amount=100&currency=usd&destination=ba_1')],
    ['transfer_group (a label: only a transfer moves money to an account)', stripePost(PI, `${INTENT}&transfer_group=order_1`)],
    ['application_fee_amount (money the platform keeps)', stripePost(PI, `${INTENT}&application_fee_amount=100`)],
    ["Treasury's destination_payment_method (the outbound payment's purpose)", stripePost('/v1/treasury/outbound_payments', 'amount=100&currency=usd&financial_account=fa_1&destination_payment_method=pm_1')],
    ['metadata with routing names as keys (the caller\'s own vocabulary)', stripePost(PI, `${INTENT}&metadata[on_behalf_of]=x&metadata[destination]=Paris&metadata[transfer_data]=y`)],
    ['nested metadata', stripePost('/v1/checkout/sessions', 'mode=setup&currency=usd&setup_intent_data[metadata][on_behalf_of]=x')],
    ['an empty value: Stripe reads it as unset, which routes nothing', stripePost('/v1/subscriptions/sub_1', 'on_behalf_of=&transfer_data=')],
    ["an issuer that is the platform itself", stripePost('/v1/invoices/in_1', 'issuer[type]=self')],
    ['an account parameter that names no one to act as (a token for a connected account\'s details)', stripePost('/v1/tokens', 'account[business_type]=individual')],
    ['expand naming a routing field (a read of the answer)', stripePost(PI, `${INTENT}&expand[0]=transfer_data.destination`)],
  ])('allows %s', (_name, request) => {
    expect(refusal(request)).toBeNull();
  });

  it("a nested destination on a transfer is not exempt: only the transfer's own", () => {
    expect(refusal(stripePost('/v1/transfers', 'amount=100&currency=usd&destination=acct_1&transfer_data[destination]=acct_2'))?.code).toBe('account_routing');
    expect(refusal(stripePost('/v1/transfers/tr_1', 'destination=acct_2'))?.code).toBe('account_routing');
  });

  it('reads are not checked: a GET moves nothing', () => {
    expect(estimateCost(stripeGet('/v1/transfers', 'destination=acct_1'), ALLOWANCE, TABLES)).toEqual({ kind: 'free' });
  });

  it('quotes a long parameter name, not the whole of it', () => {
    const name = `payment_intent_data${'[x]'.repeat(100)}[on_behalf_of]`;
    const refused = refusal(stripePost('/v1/checkout/sessions', `mode=payment&${name}=acct_1`));
    // A name this long or deep is no Stripe parameter: refused before the routing check reads it.
    expect(refused?.code).toBe('request_malformed');
    expect(refused?.message.length).toBeLessThan(300);
    const routed = refusal(stripePost('/v1/checkout/sessions', `mode=payment&payment_intent_data${'[x]'.repeat(6)}[on_behalf_of]=acct_1`));
    expect(routed?.code).toBe('account_routing');
    expect(routed?.message.length).toBeLessThan(300);
  });

  it('refuses a key nested 100,000 brackets deep at once, without running out of stack', () => {
    const deep = `a${'[b]'.repeat(100_000)}`;
    expect(refusal(stripePost('/v1/customers', `${deep}=1`))?.code).toBe('request_malformed');
    expect(refusal(stripePost('/v1/customers', `${deep}[on_behalf_of]=acct_1`))?.code).toBe('request_malformed');
    expect(refusal(stripePost('/v1/customers', `a${'[b]'.repeat(7)}=1`))).toBeNull();
  });
});
