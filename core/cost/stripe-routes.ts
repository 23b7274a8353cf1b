/**
 * Every Stripe call Keybrake knows, in three tables, and nothing else: a call that is not a read
 * (GET, HEAD) and is on none of them is priced by the key's per-call estimate, or refused
 * without one. The inventory is stripe-node's generated resources (every POST and DELETE route),
 * plus the legacy routes older SDKs still send; docs/pricing.md lists the same routes, and
 * test/unit/cost/stripe-routes.test.ts fails when the two, or stripe-node and these tables,
 * disagree.
 *
 * - PRICED: the request states (or, for an update, decides) the money: amounts, line items.
 * - ESTIMATED: money moves but the request does not bound it: the key's per-call estimate.
 * - FREE: checked against Stripe's API reference as moving no money: setup, catalog, settings,
 *   cancellations, descriptions. When unsure, a call is not here.
 *
 * Routes are `METHOD /path` in the allowlist's syntax (`*` is one id segment). Looked up per
 * call: the index is keyed by method, length and the first two segments, so a lookup compares a
 * handful of patterns, not the ~350 here.
 */
import {
  checkoutSession,
  creditGrant,
  creditNote,
  customerBalanceTransaction,
  customerCreate,
  invoiceItemCreate,
  invoiceItemUpdate,
  paymentIntentUpdate,
  paymentLink,
  subscriptionCreate,
  subscriptionItemCreate,
} from './stripe-objects.js';
import { free, freeOnlyWith, freeUnless, optionalObjectAmount, requiredObjectAmount, statedAmount, unstatedAmount, type Pricer } from './stripe-pricers.js';
import { RouteTable, type RouteEntry } from './route-table.js';

/** Where the answer shows the money a call moved. */
export interface Settles {
  /** The answer's `object`. */
  readonly object: string;
  /** The amount's field, or a path into an expanded object; the `currency` beside it is read too. */
  readonly amount: readonly string[];
  /** The amount may be negative (a credit): its size is what moved. */
  readonly signed?: boolean;
  /**
   * The answer shows what has moved so far, and the object may still move up to the reservation
   * (a Checkout Session whose customer raises a quantity, a subscription past its trial): the
   * call settles at no less than it reserved.
   */
  readonly atLeastReserved?: boolean;
}

export type RouteClass = 'priced' | 'estimated' | 'free';

export interface StripeRoute {
  /** 'POST /v1/payment_intents/*\/capture'. */
  readonly route: string;
  readonly class: RouteClass;
  readonly price: Pricer;
  readonly settles: Settles | null;
}

const settlesAs = (object: string, field = 'amount', options: Omit<Settles, 'object' | 'amount'> = {}): Settles => ({ object, amount: [field], ...options });

interface PricedRoute {
  readonly route: string;
  readonly price: Pricer;
  readonly settles: Settles | null;
}

const REFUND_REST = 'a refund without amount refunds the rest of the charge, which the request does not state';
const FEE_REFUND_REST = 'an application fee refund without amount refunds the rest of the fee, which the request does not state';

/** Harmless subscription changes: how it is paid and described, not what it bills. */
const SUBSCRIPTION_HARMLESS = [
  'metadata', 'description', 'default_payment_method', 'default_source', 'payment_settings', 'invoice_settings', 'cancellation_details',
  'days_until_due', 'collection_method', 'cancel_at_period_end',
];
/** Harmless invoice changes: what it says and how it is paid, not its lines, tax, discounts or automatic collection. */
const INVOICE_HARMLESS = [
  'metadata', 'description', 'footer', 'custom_fields', 'account_tax_ids', 'rendering', 'statement_descriptor', 'number', 'shipping_details',
  'payment_settings', 'days_until_due', 'due_date', 'default_payment_method', 'default_source', 'collection_method',
];
/** Harmless Payment Link changes: its page and what happens after, not its items, prices or limits. */
const PAYMENT_LINK_HARMLESS = [
  'metadata', 'after_completion', 'custom_text', 'custom_fields', 'inactive_message', 'name_collection', 'phone_number_collection',
  'tax_id_collection', 'billing_address_collection', 'customer_creation', 'consent_collection', 'payment_method_types',
  'payment_method_collection', 'submit_type', 'active=false',
];

const PRICED: readonly PricedRoute[] = [
  // Payments: amount and currency stated, or an amount of the existing object (its currency unstated).
  { route: 'POST /v1/payment_intents', price: statedAmount('payment intent'), settles: settlesAs('payment_intent') },
  { route: 'POST /v1/payment_intents/*', price: paymentIntentUpdate, settles: settlesAs('payment_intent') },
  {
    route: 'POST /v1/payment_intents/*/capture',
    price: optionalObjectAmount('amount_to_capture', 'payment intent', 'a capture without amount_to_capture captures the whole capturable amount, which the request does not state'),
    settles: settlesAs('payment_intent', 'amount_received'),
  },
  {
    // `amount` is the new authorized total (an upper bound of the increment) in the intent's currency.
    route: 'POST /v1/payment_intents/*/increment_authorization',
    price: requiredObjectAmount('amount', 'payment intent', 'increment_authorization'),
    settles: settlesAs('payment_intent'),
  },
  {
    // The answer is the PaymentIntent, whose amount is not what was applied: the reservation stands.
    route: 'POST /v1/payment_intents/*/apply_customer_balance',
    price: optionalObjectAmount('amount', 'payment intent', "applying a customer's cash balance without amount applies up to the intent's amount, which the request does not state"),
    settles: null,
  },
  { route: 'POST /v1/charges', price: statedAmount('charge'), settles: settlesAs('charge') },
  {
    route: 'POST /v1/charges/*/capture',
    price: optionalObjectAmount('amount', 'charge', 'a capture without amount captures the whole charge, which the request does not state'),
    settles: settlesAs('charge', 'amount_captured'),
  },
  { route: 'POST /v1/refunds', price: optionalObjectAmount('amount', 'refund', REFUND_REST), settles: settlesAs('refund') },
  // Legacy refund routes: the same money as /v1/refunds. The older one answers with the Charge.
  { route: 'POST /v1/charges/*/refunds', price: optionalObjectAmount('amount', 'refund', REFUND_REST), settles: settlesAs('refund') },
  { route: 'POST /v1/charges/*/refund', price: optionalObjectAmount('amount', 'refund', REFUND_REST), settles: settlesAs('charge', 'amount_refunded') },
  {
    // The answer is the Reader, which shows no amount.
    route: 'POST /v1/terminal/readers/*/refund_payment',
    price: optionalObjectAmount('amount', 'charge', 'a Terminal refund without amount refunds the whole charge, which the request does not state'),
    settles: null,
  },
  { route: 'POST /v1/transfers', price: statedAmount('transfer'), settles: settlesAs('transfer') },
  {
    route: 'POST /v1/transfers/*/reversals',
    price: optionalObjectAmount('amount', 'transfer reversal', 'a reversal without amount reverses the rest of the transfer, which the request does not state'),
    settles: settlesAs('transfer_reversal'),
  },
  { route: 'POST /v1/application_fees/*/refunds', price: optionalObjectAmount('amount', 'application fee refund', FEE_REFUND_REST), settles: settlesAs('fee_refund') },
  { route: 'POST /v1/application_fees/*/refund', price: optionalObjectAmount('amount', 'application fee refund', FEE_REFUND_REST), settles: settlesAs('application_fee', 'amount_refunded') },
  { route: 'POST /v1/payouts', price: statedAmount('payout', { payout: true }), settles: settlesAs('payout') },
  { route: 'POST /v1/topups', price: statedAmount('top-up'), settles: settlesAs('topup') },
  { route: 'POST /v1/treasury/outbound_payments', price: statedAmount('outbound payment'), settles: settlesAs('treasury.outbound_payment') },
  { route: 'POST /v1/treasury/outbound_transfers', price: statedAmount('outbound transfer'), settles: settlesAs('treasury.outbound_transfer') },
  { route: 'POST /v1/treasury/inbound_transfers', price: statedAmount('inbound transfer'), settles: settlesAs('treasury.inbound_transfer') },
  {
    route: 'POST /v1/treasury/financial_accounts/*/close',
    price: freeUnless(['forwarding_settings'], 'closing a financial account with forwarding_settings moves its balance, which the request does not state'),
    settles: null,
  },
  { route: 'POST /v1/test_helpers/customers/*/fund_cash_balance', price: statedAmount('cash balance funding'), settles: null },

  // Checkout, Payment Links, subscriptions: line items (see stripe-objects.ts).
  { route: 'POST /v1/checkout/sessions', price: checkoutSession, settles: settlesAs('checkout.session', 'amount_total', { atLeastReserved: true }) },
  {
    route: 'POST /v1/checkout/sessions/*',
    price: freeOnlyWith(['metadata'], "changing a Checkout Session's line items, shipping or address changes what it collects, by an amount the request does not state"),
    settles: settlesAs('checkout.session', 'amount_total', { atLeastReserved: true }),
  },
  { route: 'POST /v1/payment_links', price: paymentLink, settles: null },
  {
    route: 'POST /v1/payment_links/*',
    price: freeOnlyWith(PAYMENT_LINK_HARMLESS, "changing a Payment Link's items, prices, limits or activating it changes what it can collect, by an amount the request does not state"),
    settles: null,
  },
  {
    // The first invoice shows (when expanded) what was billed now; a trial bills the reservation later.
    route: 'POST /v1/subscriptions',
    price: subscriptionCreate,
    settles: { object: 'subscription', amount: ['latest_invoice', 'amount_due'], atLeastReserved: true },
  },
  {
    route: 'POST /v1/subscriptions/*',
    price: freeOnlyWith(SUBSCRIPTION_HARMLESS, "changing a subscription's items, prices, trial, billing cycle, discounts or tax can invoice a proration or more, which the request does not state"),
    settles: null,
  },
  {
    route: 'DELETE /v1/subscriptions/*',
    price: freeUnless(['invoice_now', 'prorate'], 'cancelling a subscription with invoice_now or prorate invoices pending usage and prorations, which the request does not state'),
    settles: null,
  },
  { route: 'POST /v1/subscription_items', price: subscriptionItemCreate, settles: null },
  {
    route: 'POST /v1/subscription_items/*',
    price: freeOnlyWith(['metadata'], "changing a subscription item's price, quantity or tax invoices a proration, which the request does not state"),
    settles: null,
  },
  {
    route: 'POST /v1/subscription_schedules/*/cancel',
    price: freeUnless(['invoice_now', 'prorate'], 'cancelling a subscription schedule with invoice_now or prorate invoices pending usage and prorations, which the request does not state'),
    settles: null,
  },

  // Invoices and balances: amounts stated, signed where a credit is money too.
  { route: 'POST /v1/invoiceitems', price: invoiceItemCreate, settles: settlesAs('invoiceitem', 'amount', { signed: true }) },
  { route: 'POST /v1/invoiceitems/*', price: invoiceItemUpdate, settles: settlesAs('invoiceitem', 'amount', { signed: true }) },
  {
    route: 'POST /v1/invoices/*',
    price: freeOnlyWith(INVOICE_HARMLESS, "changing a draft invoice's tax, discounts, shipping, fees or automatic collection changes what it collects, by an amount the request does not state"),
    settles: null,
  },
  { route: 'POST /v1/credit_notes', price: creditNote, settles: settlesAs('credit_note') },
  { route: 'POST /v1/customers', price: customerCreate, settles: null },
  {
    route: 'POST /v1/customers/*',
    price: freeUnless(['balance'], "setting a customer's balance moves the difference from its current balance, which the request does not state"),
    settles: null,
  },
  {
    route: 'POST /v1/customers/*/balance_transactions',
    price: customerBalanceTransaction,
    settles: settlesAs('customer_balance_transaction', 'amount', { signed: true }),
  },
  {
    route: 'POST /v1/billing/credit_grants',
    price: creditGrant,
    settles: { object: 'billing.credit_grant', amount: ['amount', 'monetary', 'value'] },
  },

  // Issuing: what a card may spend.
  {
    route: 'POST /v1/issuing/cards/*',
    price: freeOnlyWith(
      ['metadata', 'shipping', 'pin', 'personalization_design', 'cancellation_reason', 'status=inactive', 'status=canceled'],
      "activating an Issuing card or changing its spending controls or funding lets it spend, with no further call through Keybrake",
    ),
    settles: null,
  },
  {
    route: 'POST /v1/issuing/cardholders/*',
    price: freeOnlyWith(
      ['metadata', 'billing', 'company', 'email', 'individual', 'phone_number', 'preferred_locales', 'status=inactive'],
      "activating an Issuing cardholder or changing their spending controls lets their cards spend, with no further call through Keybrake",
    ),
    settles: null,
  },
];

interface RouteGroup {
  /** Why: for ESTIMATED, the clause a refusal or an estimate's detail quotes. */
  readonly reason: string;
  readonly routes: readonly string[];
}

const ESTIMATED: readonly RouteGroup[] = [
  {
    reason: 'confirming or processing a PaymentIntent moves its amount, which the request does not state',
    routes: [
      'POST /v1/payment_intents/*/confirm',
      'POST /v1/payment_intents/*/verify_microdeposits',
      'POST /v1/terminal/readers/*/process_payment_intent',
      'POST /v1/terminal/readers/*/confirm_payment_intent',
    ],
  },
  {
    reason: 'paying, finalizing or sending an invoice collects its amount_due, which the request does not state',
    routes: ['POST /v1/invoices/*/pay', 'POST /v1/invoices/*/finalize', 'POST /v1/invoices/*/send'],
  },
  {
    reason: "an invoice, or a change to its lines, is collected (automatically, with auto_advance) at an amount the request does not bound",
    routes: ['POST /v1/invoices', 'POST /v1/invoices/*/add_lines', 'POST /v1/invoices/*/update_lines', 'POST /v1/invoices/*/remove_lines', 'POST /v1/invoices/*/lines/*'],
  },
  { reason: "voiding a credit note restores what its invoice collects, which the request does not state", routes: ['POST /v1/credit_notes/*/void'] },
  { reason: 'accepting a quote creates its invoice or subscription, for an amount the request does not state', routes: ['POST /v1/quotes/*/accept'] },
  { reason: 'closing a dispute concedes the disputed amount, which the request does not state', routes: ['POST /v1/disputes/*/close'] },
  { reason: "reversing a payout moves the payout's amount, which the request does not state", routes: ['POST /v1/payouts/*/reverse'] },
  {
    reason: 'a subscription schedule, pausing or resuming a subscription, or removing one of its items invoices an amount the request does not state',
    routes: [
      'POST /v1/subscription_schedules',
      'POST /v1/subscription_schedules/*',
      'POST /v1/subscriptions/*/pause',
      'POST /v1/subscriptions/*/resume',
      'DELETE /v1/subscription_items/*',
    ],
  },
  {
    reason: 'usage reported to a billing meter is billed later, at prices the request does not state',
    routes: ['POST /v1/billing/meter_events', 'POST /v2/billing/meter_events', 'POST /v2/billing/meter_event_stream', 'POST /v2/billing/meter_event_session'],
  },
  { reason: 'approving an Issuing authorization lets the card spend its amount, which the request does not state', routes: ['POST /v1/issuing/authorizations/*/approve'] },
  { reason: 'an Issuing card spends the Issuing balance with no further call through Keybrake', routes: ['POST /v1/issuing/cards'] },
  { reason: 'on a billing portal page the customer may change their subscription and pay the proration', routes: ['POST /v1/billing_portal/sessions'] },
  { reason: 'forwarding card details lets a third party charge the card, for an amount the request does not state', routes: ['POST /v1/forwarding/requests'] },
  { reason: 'a climate order buys carbon removal at a price the request does not bound', routes: ['POST /v1/climate/orders'] },
  {
    reason: 'a Treasury reversal moves the received amount back, which the request does not state',
    routes: ['POST /v1/treasury/credit_reversals', 'POST /v1/treasury/debit_reversals'],
  },
  {
    reason: 'Stripe v2 money movement is priced by the per-call estimate (its amounts are not modelled)',
    routes: [
      'POST /v2/money_management/outbound_payments',
      'POST /v2/money_management/outbound_transfers',
      'POST /v2/money_management/inbound_transfers',
      'POST /v2/money_management/payout_intents',
      'POST /v2/money_management/payout_intents/*',
      'POST /v2/money_management/payout_intents/*/confirm',
      'POST /v2/money_management/test_helpers/financial_addresses/*/credit',
    ],
  },
  {
    reason: 'this test helper simulates money moving (test mode), by an amount the request does not bound',
    routes: [
      'POST /v1/test_helpers/issuing/authorizations',
      'POST /v1/test_helpers/issuing/authorizations/*/capture',
      'POST /v1/test_helpers/issuing/authorizations/*/increment',
      'POST /v1/test_helpers/issuing/authorizations/*/finalize_amount',
      'POST /v1/test_helpers/issuing/authorizations/*/fraud_challenges/respond',
      'POST /v1/test_helpers/issuing/transactions/*/refund',
      'POST /v1/test_helpers/issuing/transactions/create_force_capture',
      'POST /v1/test_helpers/issuing/transactions/create_unlinked_refund',
      'POST /v1/test_helpers/terminal/readers/*/present_payment_method',
      'POST /v1/test_helpers/test_clocks/*/advance',
      'POST /v1/test_helpers/treasury/inbound_transfers/*/succeed',
      'POST /v1/test_helpers/treasury/inbound_transfers/*/return',
      'POST /v1/test_helpers/treasury/outbound_payments/*/post',
      'POST /v1/test_helpers/treasury/outbound_payments/*/return',
      'POST /v1/test_helpers/treasury/outbound_transfers/*/post',
      'POST /v1/test_helpers/treasury/outbound_transfers/*/return',
      'POST /v1/test_helpers/treasury/received_credits',
      'POST /v1/test_helpers/treasury/received_debits',
    ],
  },
];

/** What the answers of some ESTIMATED routes show moved. */
const ESTIMATED_SETTLES: ReadonlyMap<string, Settles> = new Map([
  ['POST /v1/payment_intents/*/confirm', settlesAs('payment_intent')],
  ['POST /v1/payment_intents/*/verify_microdeposits', settlesAs('payment_intent')],
  ['POST /v1/invoices/*/pay', settlesAs('invoice', 'amount_paid')],
  ['POST /v1/invoices/*/finalize', settlesAs('invoice', 'amount_due')],
  ['POST /v1/invoices/*/send', settlesAs('invoice', 'amount_due')],
  ['POST /v1/quotes/*/accept', settlesAs('quote', 'amount_total', { atLeastReserved: true })],
  ['POST /v1/disputes/*/close', settlesAs('dispute')],
  ['POST /v1/payouts/*/reverse', settlesAs('payout')],
  ['POST /v1/treasury/credit_reversals', settlesAs('treasury.credit_reversal')],
  ['POST /v1/treasury/debit_reversals', settlesAs('treasury.debit_reversal')],
]);

const FREE: readonly RouteGroup[] = [
  {
    reason: 'customers and their payment details say who pays and how, not what (a balance is priced: see POST /v1/customers)',
    routes: [
      'DELETE /v1/customers/*',
      'POST /v1/customers/*/cash_balance',
      'DELETE /v1/customers/*/discount',
      'POST /v1/customers/*/funding_instructions',
      'POST /v1/customers/*/balance_transactions/*',
      'POST /v1/customers/*/sources',
      'POST /v1/customers/*/sources/*',
      'DELETE /v1/customers/*/sources/*',
      'POST /v1/customers/*/sources/*/verify',
      'POST /v1/customers/*/tax_ids',
      'DELETE /v1/customers/*/tax_ids/*',
      'POST /v1/customer_sessions',
      'POST /v1/ephemeral_keys',
      'DELETE /v1/ephemeral_keys/*',
      'POST /v1/tax_ids',
      'DELETE /v1/tax_ids/*',
    ],
  },
  {
    reason: 'payment methods and their setup: a SetupIntent, a token, a source or a 3-D Secure check never charges',
    routes: [
      'POST /v1/payment_methods',
      'POST /v1/payment_methods/*',
      'POST /v1/payment_methods/*/attach',
      'POST /v1/payment_methods/*/detach',
      'POST /v1/payment_method_configurations',
      'POST /v1/payment_method_configurations/*',
      'POST /v1/payment_method_domains',
      'POST /v1/payment_method_domains/*',
      'POST /v1/payment_method_domains/*/validate',
      'POST /v1/apple_pay/domains',
      'DELETE /v1/apple_pay/domains/*',
      'POST /v1/setup_intents',
      'POST /v1/setup_intents/*',
      'POST /v1/setup_intents/*/cancel',
      'POST /v1/setup_intents/*/confirm',
      'POST /v1/setup_intents/*/verify_microdeposits',
      'POST /v1/sources',
      'POST /v1/sources/*',
      'POST /v1/sources/*/verify',
      'POST /v1/tokens',
      'POST /v1/three_d_secure/authentications',
      'POST /v1/three_d_secure/authentications/*/cancel',
      'POST /v1/three_d_secure/authentications/*/submit',
      'POST /v1/financial_connections/accounts/*/disconnect',
      'POST /v1/financial_connections/accounts/*/refresh',
      'POST /v1/financial_connections/accounts/*/subscribe',
      'POST /v1/financial_connections/accounts/*/unsubscribe',
      'POST /v1/financial_connections/sessions',
    ],
  },
  {
    reason: 'the catalog says what things cost; only a payment, an invoice or a subscription that uses it moves money',
    routes: [
      'POST /v1/products',
      'POST /v1/products/*',
      'DELETE /v1/products/*',
      'POST /v1/products/*/features',
      'DELETE /v1/products/*/features/*',
      'POST /v1/prices',
      'POST /v1/prices/*',
      'POST /v1/plans',
      'POST /v1/plans/*',
      'DELETE /v1/plans/*',
      'POST /v1/coupons',
      'POST /v1/coupons/*',
      'DELETE /v1/coupons/*',
      'POST /v1/promotion_codes',
      'POST /v1/promotion_codes/*',
      'POST /v1/shipping_rates',
      'POST /v1/shipping_rates/*',
      'POST /v1/tax_rates',
      'POST /v1/tax_rates/*',
      'POST /v1/product_catalog/trial_offers',
      'POST /v1/product_catalog/trial_offers/*',
      'POST /v1/entitlements/features',
      'POST /v1/entitlements/features/*',
      'POST /v1/billing/meters',
      'POST /v1/billing/meters/*',
      'POST /v1/billing/meters/*/deactivate',
      'POST /v1/billing/meters/*/reactivate',
      'POST /v1/billing/alerts',
      'POST /v1/billing/alerts/*/activate',
      'POST /v1/billing/alerts/*/archive',
      'POST /v1/billing/alerts/*/deactivate',
      'POST /v1/billing/feedback_options',
      'POST /v1/billing/feedback_options/*',
      'POST /v1/billing/feedback_options/*/deactivate',
      'POST /v1/billing_portal/configurations',
      'POST /v1/billing_portal/configurations/*',
      'POST /v1/invoice_rendering_templates/*/archive',
      'POST /v1/invoice_rendering_templates/*/unarchive',
      'POST /v2/commerce/product_catalog/imports',
    ],
  },
  {
    reason: 'descriptions, metadata, evidence and receipts of objects whose money was priced when they were made (or moves back to the platform)',
    routes: [
      'POST /v1/charges/*',
      'POST /v1/refunds/*',
      'POST /v1/transfers/*',
      'POST /v1/transfers/*/reversals/*',
      'POST /v1/application_fees/*/refunds/*',
      'POST /v1/payouts/*',
      'POST /v1/topups/*',
      'POST /v1/credit_notes/*',
      'POST /v1/disputes/*',
      'POST /v1/climate/orders/*',
      'POST /v1/billing/credit_grants/*',
      'POST /v1/issuing/authorizations/*',
      'POST /v1/issuing/transactions/*',
      'POST /v1/issuing/tokens/*',
      'POST /v1/issuing/disputes',
      'POST /v1/issuing/disputes/*',
      'POST /v1/issuing/disputes/*/submit',
      'POST /v2/money_management/transactions/*',
      'POST /v2/money_management/transactions/*/refresh_regulatory_receipt',
    ],
  },
  {
    reason: 'stopping or cancelling: money that has not moved stays where it is',
    routes: [
      'POST /v1/payment_intents/*/cancel',
      'POST /v1/checkout/sessions/*/expire',
      'POST /v1/payouts/*/cancel',
      'POST /v1/topups/*/cancel',
      'POST /v1/refunds/*/cancel',
      'DELETE /v1/invoices/*',
      'POST /v1/invoices/*/void',
      'POST /v1/invoices/*/mark_uncollectible',
      'DELETE /v1/invoiceitems/*',
      'POST /v1/quotes/*/cancel',
      'POST /v1/subscription_schedules/*/release',
      'POST /v1/treasury/outbound_payments/*/cancel',
      'POST /v1/treasury/outbound_transfers/*/cancel',
      'POST /v1/treasury/inbound_transfers/*/cancel',
      'POST /v1/climate/orders/*/cancel',
      'POST /v1/billing/credit_grants/*/expire',
      'POST /v1/billing/credit_grants/*/void',
      'POST /v1/billing/meter_event_adjustments',
      'POST /v2/billing/meter_event_adjustments',
      'POST /v1/issuing/authorizations/*/decline',
      'POST /v2/money_management/outbound_payments/*/cancel',
      'POST /v2/money_management/payout_intents/*/cancel',
    ],
  },
  {
    reason: 'drafts and previews: a quote moves nothing until accepted, a preview nothing at all, and an attached payment moves by its own confirmation',
    routes: [
      'POST /v1/quotes',
      'POST /v1/quotes/*',
      'POST /v1/quotes/*/finalize',
      'POST /v1/invoices/create_preview',
      'POST /v1/invoices/*/attach_payment',
    ],
  },
  {
    reason: "a subscription's discount or billing mode acts only on its later renewals, which Stripe bills on its own and no call prices",
    routes: ['DELETE /v1/subscriptions/*/discount', 'POST /v1/subscriptions/*/migrate'],
  },
  {
    reason: 'connected accounts, their people, bank accounts and onboarding: nothing moves (routing money to them is refused: see account routing)',
    routes: [
      'POST /v1/accounts',
      'POST /v1/accounts/*',
      'DELETE /v1/accounts/*',
      'POST /v1/accounts/*/capabilities/*',
      'POST /v1/accounts/*/external_accounts',
      'POST /v1/accounts/*/external_accounts/*',
      'DELETE /v1/accounts/*/external_accounts/*',
      'POST /v1/accounts/*/login_links',
      'POST /v1/accounts/*/persons',
      'POST /v1/accounts/*/persons/*',
      'DELETE /v1/accounts/*/persons/*',
      'POST /v1/accounts/*/reject',
      'POST /v1/accounts/*/unreject',
      'POST /v1/account_links',
      'POST /v1/account_sessions',
      'POST /v1/balance_settings',
      'POST /v2/core/accounts',
      'POST /v2/core/accounts/*',
      'POST /v2/core/accounts/*/close',
      'POST /v2/core/accounts/*/persons',
      'POST /v2/core/accounts/*/persons/*',
      'DELETE /v2/core/accounts/*/persons/*',
      'POST /v2/core/accounts/*/person_tokens',
      'POST /v2/core/account_links',
      'POST /v2/core/account_tokens',
      'POST /v2/core/vault/gb_bank_accounts',
      'POST /v2/core/vault/gb_bank_accounts/*/archive',
      'POST /v2/core/vault/gb_bank_accounts/*/unarchive',
      'POST /v2/core/vault/us_bank_accounts',
      'POST /v2/core/vault/us_bank_accounts/*',
      'POST /v2/core/vault/us_bank_accounts/*/archive',
      'POST /v2/core/vault/us_bank_accounts/*/unarchive',
      'POST /v2/core/vault/us_bank_accounts/*/confirm_microdeposits',
      'POST /v2/core/vault/us_bank_accounts/*/send_microdeposits',
      'POST /v2/money_management/financial_accounts/*',
      'POST /v2/money_management/financial_addresses',
      'POST /v2/money_management/outbound_setup_intents',
      'POST /v2/money_management/outbound_setup_intents/*',
      'POST /v2/money_management/outbound_setup_intents/*/cancel',
      'POST /v2/money_management/payout_intents/*/refresh_fx_quote',
      'POST /v2/money_management/payout_intents/*/refresh_recipient_verification',
      'POST /v2/money_management/payout_methods/*/archive',
      'POST /v2/money_management/payout_methods/*/unarchive',
      'POST /v2/money_management/recipient_verifications',
      'POST /v2/money_management/recipient_verifications/*/acknowledge',
    ],
  },
  {
    reason: 'Issuing and Treasury set-up: a cardholder spends only through a card, a financial account only by a priced movement',
    routes: [
      'POST /v1/issuing/cardholders',
      'POST /v1/issuing/personalization_designs',
      'POST /v1/issuing/personalization_designs/*',
      'POST /v1/treasury/financial_accounts',
      'POST /v1/treasury/financial_accounts/*',
      'POST /v1/treasury/financial_accounts/*/features',
    ],
  },
  {
    reason: 'Terminal hardware, locations and screens; collecting a card does not charge it (confirming and processing are priced)',
    routes: [
      'POST /v1/terminal/configurations',
      'POST /v1/terminal/configurations/*',
      'DELETE /v1/terminal/configurations/*',
      'POST /v1/terminal/connection_tokens',
      'POST /v1/terminal/locations',
      'POST /v1/terminal/locations/*',
      'DELETE /v1/terminal/locations/*',
      'POST /v1/terminal/onboarding_links',
      'POST /v1/terminal/readers',
      'POST /v1/terminal/readers/*',
      'DELETE /v1/terminal/readers/*',
      'POST /v1/terminal/readers/*/cancel_action',
      'POST /v1/terminal/readers/*/collect_inputs',
      'POST /v1/terminal/readers/*/collect_payment_method',
      'POST /v1/terminal/readers/*/process_setup_intent',
      'POST /v1/terminal/readers/*/set_reader_display',
    ],
  },
  {
    reason: 'settings, developer tools, files, reports, tax records, fraud tools, identity checks and records of payments made outside Stripe (Stripe fees are not modelled)',
    routes: [
      'POST /v1/webhook_endpoints',
      'POST /v1/webhook_endpoints/*',
      'DELETE /v1/webhook_endpoints/*',
      'POST /v2/core/event_destinations',
      'POST /v2/core/event_destinations/*',
      'DELETE /v2/core/event_destinations/*',
      'POST /v2/core/event_destinations/*/disable',
      'POST /v2/core/event_destinations/*/enable',
      'POST /v2/core/event_destinations/*/ping',
      'POST /v1/files',
      'POST /v1/file_links',
      'POST /v1/file_links/*',
      'POST /v1/reporting/report_runs',
      'POST /v1/apps/secrets',
      'POST /v1/apps/secrets/delete',
      'POST /v1/apps/installs',
      'POST /v1/apps/installs/*',
      'POST /v1/apps/installs/*/uninstall',
      'POST /v1/tax/calculations',
      'POST /v1/tax/locations',
      'POST /v1/tax/registrations',
      'POST /v1/tax/registrations/*',
      'POST /v1/tax/settings',
      'POST /v1/tax/transactions/create_from_calculation',
      'POST /v1/tax/transactions/create_reversal',
      'POST /v1/radar/payment_evaluations',
      'POST /v1/radar/value_list_items',
      'DELETE /v1/radar/value_list_items/*',
      'POST /v1/radar/value_lists',
      'POST /v1/radar/value_lists/*',
      'DELETE /v1/radar/value_lists/*',
      'POST /v1/reviews/*/approve',
      'POST /v1/identity/verification_sessions',
      'POST /v1/identity/verification_sessions/*',
      'POST /v1/identity/verification_sessions/*/cancel',
      'POST /v1/identity/verification_sessions/*/redact',
      'POST /v1/payment_records/report_payment',
      'POST /v1/payment_records/*/report_payment_attempt',
      'POST /v1/payment_records/*/report_payment_attempt_canceled',
      'POST /v1/payment_records/*/report_payment_attempt_failed',
      'POST /v1/payment_records/*/report_payment_attempt_guaranteed',
      'POST /v1/payment_records/*/report_payment_attempt_informational',
      'POST /v1/payment_records/*/report_refund',
    ],
  },
  {
    reason: 'test helpers that move no money: shipping and design states, input collection, expiries, failures and test clocks (advancing one is priced)',
    routes: [
      'POST /v1/test_helpers/confirmation_tokens',
      'POST /v1/test_helpers/issuing/authorizations/*/expire',
      'POST /v1/test_helpers/issuing/authorizations/*/reverse',
      'POST /v1/test_helpers/issuing/cards/*/shipping/deliver',
      'POST /v1/test_helpers/issuing/cards/*/shipping/fail',
      'POST /v1/test_helpers/issuing/cards/*/shipping/return',
      'POST /v1/test_helpers/issuing/cards/*/shipping/ship',
      'POST /v1/test_helpers/issuing/cards/*/shipping/submit',
      'POST /v1/test_helpers/issuing/personalization_designs/*/activate',
      'POST /v1/test_helpers/issuing/personalization_designs/*/deactivate',
      'POST /v1/test_helpers/issuing/personalization_designs/*/reject',
      'POST /v1/test_helpers/refunds/*/expire',
      'POST /v1/test_helpers/terminal/readers/*/succeed_input_collection',
      'POST /v1/test_helpers/terminal/readers/*/timeout_input_collection',
      'POST /v1/test_helpers/test_clocks',
      'DELETE /v1/test_helpers/test_clocks/*',
      'POST /v1/test_helpers/treasury/inbound_transfers/*/fail',
      'POST /v1/test_helpers/treasury/outbound_payments/*',
      'POST /v1/test_helpers/treasury/outbound_payments/*/fail',
      'POST /v1/test_helpers/treasury/outbound_transfers/*',
      'POST /v1/test_helpers/treasury/outbound_transfers/*/fail',
      'POST /v2/test_helpers/money_management/recipient_verifications',
    ],
  },
];

// ---- the index ------------------------------------------------------------------------------

/** Checks each route as written (shape, classified once, no priced v2) and indexes it. */
function compile(routes: Iterable<StripeRoute>): RouteTable<StripeRoute> {
  const seen = new Set<string>();
  const entries: RouteEntry<StripeRoute>[] = [];
  for (const route of routes) {
    const match = /^(POST|DELETE) \/(v1|v2)\/([a-z_]+)((?:\/[a-z_*]+)*)$/.exec(route.route);
    if (match === null) throw new Error(`stripe route ${route.route}: expected "POST|DELETE /v1|v2/resource/…"`);
    if (seen.has(route.route)) throw new Error(`stripe route ${route.route} is classified twice`);
    if (route.class === 'priced' && match[2] === 'v2') throw new Error(`stripe route ${route.route}: v2 bodies are JSON, which no pricer reads`);
    seen.add(route.route);
    entries.push({ method: match[1] ?? '', segments: route.route.slice(route.route.indexOf('/') + 1).split('/'), value: route });
  }
  // Every Stripe route starts with its API version and resource: both literal.
  return new RouteTable(entries, 2);
}

function* allRoutes(): Generator<StripeRoute> {
  for (const { route, price, settles } of PRICED) yield { route, class: 'priced', price, settles };
  for (const { reason, routes } of ESTIMATED) {
    for (const route of routes) yield { route, class: 'estimated', price: unstatedAmount(reason), settles: ESTIMATED_SETTLES.get(route) ?? null };
  }
  for (const { routes } of FREE) for (const route of routes) yield { route, class: 'free', price: free, settles: null };
}

const TABLE = compile(allRoutes());

/** The route `method` and `segments` (canonical, upper-case method) fall on; undefined when on none. */
export function findStripeRoute(method: string, segments: readonly string[]): StripeRoute | undefined {
  return TABLE.find(method, segments);
}

/** Every classified route with its class and, for a group, its reason: for docs/pricing.md and its test. */
export function stripeRouteInventory(): ReadonlyArray<{ route: string; class: RouteClass; reason: string | null }> {
  const reasons = new Map<string, string>();
  for (const { reason, routes } of [...ESTIMATED, ...FREE]) for (const route of routes) reasons.set(route, reason);
  return [...allRoutes()].map(({ route, class: kind }) => ({ route, class: kind, reason: reasons.get(route) ?? null }));
}
