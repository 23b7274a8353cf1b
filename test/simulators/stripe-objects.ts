/**
 * The Stripe simulator's in-memory account: customers, PaymentIntents, charges, refunds,
 * transfers and payouts, with the state transitions that move money (confirm, capture, refund)
 * and test-mode declines. Object fields follow the v1 API; fields nothing here changes are
 * filled with the values a fresh test-mode object has.
 */
import { randomAlphanumeric, stripeId } from './random-ids.js';
import type { FormObject } from './stripe-form.js';
import {
  StripeError,
  invalidRequest,
  mergeMetadata,
  optionalAmount,
  optionalBoolean,
  optionalCurrency,
  optionalEnum,
  optionalString,
  optionalStringList,
  requiredAmount,
  requiredCurrency,
  requiredString,
  resourceMissing,
  unexpectedState,
} from './stripe-params.js';

interface StripeObjectBase {
  id: string;
  created: number;
  livemode: boolean;
  metadata: Record<string, string>;
  /** Remaining fields as the API sends them; not used by the simulator's logic. */
  [field: string]: unknown;
}

export interface Customer extends StripeObjectBase {
  object: 'customer';
  email: string | null;
  name: string | null;
  description: string | null;
}

export type PaymentIntentStatus =
  | 'requires_payment_method'
  | 'requires_confirmation'
  | 'requires_action'
  | 'processing'
  | 'requires_capture'
  | 'canceled'
  | 'succeeded';

export interface PaymentIntent extends StripeObjectBase {
  object: 'payment_intent';
  amount: number;
  amount_capturable: number;
  amount_received: number;
  currency: string;
  customer: string | null;
  capture_method: 'automatic' | 'automatic_async' | 'manual';
  payment_method: string | null;
  latest_charge: string | null;
  status: PaymentIntentStatus;
}

export interface Charge extends StripeObjectBase {
  object: 'charge';
  amount: number;
  amount_captured: number;
  amount_refunded: number;
  currency: string;
  customer: string | null;
  captured: boolean;
  paid: boolean;
  refunded: boolean;
  payment_intent: string | null;
  status: 'succeeded' | 'pending' | 'failed';
}

export interface Refund extends StripeObjectBase {
  object: 'refund';
  amount: number;
  charge: string;
  currency: string;
  payment_intent: string | null;
  status: 'succeeded';
}

export interface Transfer extends StripeObjectBase {
  object: 'transfer';
  amount: number;
  currency: string;
  destination: string;
}

export interface Payout extends StripeObjectBase {
  object: 'payout';
  amount: number;
  currency: string;
  status: 'pending';
}

export type StripeObject = Customer | PaymentIntent | Charge | Refund | Transfer | Payout;
type ObjectType = StripeObject['object'];
type ObjectOf<T extends ObjectType> = Extract<StripeObject, { object: T }>;

/** Test-mode payment methods and tokens that Stripe always declines. */
const DECLINING_PAYMENT_METHODS = new Set(['pm_card_chargeDeclined', 'pm_card_visa_chargeDeclined', 'tok_chargeDeclined']);

function now(): number {
  return Math.floor(Date.now() / 1000);
}

/** The message Stripe gives when an intent is in the wrong state for an action. */
function wrongStatus(action: string, intent: PaymentIntent, allowed: readonly string[]): StripeError {
  return unexpectedState(
    `This PaymentIntent could not be ${action} because it has a status of ${intent.status}. ` +
      `Only a PaymentIntent with one of the following statuses may be ${action}: ${allowed.join(', ')}.`,
  );
}

export class StripeAccount {
  readonly objects = new Map<string, StripeObject>();

  constructor(private readonly livemode: boolean) {}

  /** The object a path names (404 when absent), or one a parameter names (400). */
  find<T extends ObjectType>(type: T, id: string, param: string, status: 400 | 404 = 404): ObjectOf<T> {
    const found = this.objects.get(id);
    if (found?.object !== type) throw resourceMissing(type, id, param, status);
    return found as ObjectOf<T>;
  }

  #base(prefix: string, params: FormObject, length = 24): StripeObjectBase {
    return { id: stripeId(prefix, length), created: now(), livemode: this.livemode, metadata: mergeMetadata(params) };
  }

  #store<T extends StripeObject>(object: T): T {
    this.objects.set(object.id, object);
    return object;
  }

  /** A `customer` parameter must name an existing customer. */
  #customerParam(params: FormObject): string | null {
    const customer = optionalString(params, 'customer');
    if (customer === undefined || customer === '') return null;
    return this.find('customer', customer, 'customer', 400).id;
  }

  createCustomer(params: FormObject): Customer {
    const base = this.#base('cus', params, 14);
    return this.#store({
      ...base,
      object: 'customer',
      address: null,
      balance: 0,
      currency: null,
      default_source: null,
      delinquent: false,
      description: optionalString(params, 'description') ?? null,
      discount: null,
      email: optionalString(params, 'email') ?? null,
      invoice_prefix: randomAlphanumeric(8).toUpperCase(),
      invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
      name: optionalString(params, 'name') ?? null,
      next_invoice_sequence: 1,
      phone: optionalString(params, 'phone') ?? null,
      preferred_locales: [],
      shipping: null,
      tax_exempt: 'none',
      test_clock: null,
    });
  }

  updateCustomer(id: string, params: FormObject): Customer {
    const customer = this.find('customer', id, 'id');
    customer.metadata = mergeMetadata(params, customer.metadata);
    for (const field of ['email', 'name', 'description', 'phone'] as const) {
      const value = optionalString(params, field);
      if (value !== undefined) customer[field] = value === '' ? null : value;
    }
    return customer;
  }

  deleteCustomer(id: string): { id: string; object: 'customer'; deleted: true } {
    this.find('customer', id, 'id');
    this.objects.delete(id);
    return { id, object: 'customer', deleted: true };
  }

  createPaymentIntent(params: FormObject): PaymentIntent {
    const amount = requiredAmount(params);
    const currency = requiredCurrency(params);
    const base = this.#base('pi', params);
    const intent = this.#store<PaymentIntent>({
      ...base,
      object: 'payment_intent',
      amount,
      amount_capturable: 0,
      amount_details: { tip: {} },
      amount_received: 0,
      application: null,
      application_fee_amount: null,
      automatic_payment_methods: null,
      canceled_at: null,
      cancellation_reason: null,
      capture_method: optionalEnum(params, 'capture_method', ['automatic', 'automatic_async', 'manual'] as const) ?? 'automatic_async',
      client_secret: `${base.id}_secret_${randomAlphanumeric(25)}`,
      confirmation_method: 'automatic',
      currency,
      customer: this.#customerParam(params),
      description: optionalString(params, 'description') ?? null,
      last_payment_error: null,
      latest_charge: null,
      next_action: null,
      on_behalf_of: null,
      payment_method: optionalString(params, 'payment_method') ?? null,
      payment_method_options: {},
      // API versions from 2026 call the parameter allowed_payment_method_types; older ones payment_method_types.
      allowed_payment_method_types: optionalStringList(params, 'allowed_payment_method_types') ?? null,
      payment_method_types: optionalStringList(params, 'allowed_payment_method_types') ?? optionalStringList(params, 'payment_method_types') ?? ['card'],
      processing: null,
      receipt_email: optionalString(params, 'receipt_email') ?? null,
      review: null,
      setup_future_usage: null,
      shipping: null,
      source: null,
      statement_descriptor: null,
      statement_descriptor_suffix: null,
      status: 'requires_payment_method',
      transfer_data: null,
      transfer_group: optionalString(params, 'transfer_group') ?? null,
    });
    if (intent.payment_method !== null) intent.status = 'requires_confirmation';
    if (optionalBoolean(params, 'confirm') === true) this.#confirm(intent, params);
    return intent;
  }

  updatePaymentIntent(id: string, params: FormObject): PaymentIntent {
    const intent = this.find('payment_intent', id, 'intent');
    const amount = optionalAmount(params, 'amount');
    const currency = optionalCurrency(params);
    const editable = ['requires_payment_method', 'requires_confirmation', 'requires_action'];
    if ((amount !== undefined || currency !== undefined) && !editable.includes(intent.status)) {
      throw wrongStatus('updated', intent, editable);
    }
    if (amount !== undefined) intent.amount = amount;
    if (currency !== undefined) intent.currency = currency;
    if (params.customer !== undefined) intent.customer = this.#customerParam(params);
    const description = optionalString(params, 'description');
    if (description !== undefined) intent.description = description === '' ? null : description;
    const paymentMethod = optionalString(params, 'payment_method');
    if (paymentMethod !== undefined) {
      intent.payment_method = paymentMethod;
      intent.status = 'requires_confirmation';
    }
    intent.metadata = mergeMetadata(params, intent.metadata);
    return intent;
  }

  confirmPaymentIntent(id: string, params: FormObject): PaymentIntent {
    const intent = this.find('payment_intent', id, 'intent');
    intent.metadata = mergeMetadata(params, intent.metadata);
    this.#confirm(intent, params);
    return intent;
  }

  /**
   * Charges the intent's full amount. The simulator is lenient where Stripe is not: with no
   * payment method it uses a test card, so tests need not create one.
   */
  #confirm(intent: PaymentIntent, params: FormObject): void {
    const confirmable = ['requires_payment_method', 'requires_confirmation', 'requires_action'];
    if (!confirmable.includes(intent.status)) throw wrongStatus('confirmed', intent, confirmable);
    const paymentMethod = optionalString(params, 'payment_method') ?? intent.payment_method ?? stripeId('pm');
    intent.payment_method = paymentMethod;
    const manual = intent.capture_method === 'manual';
    const charge = this.#newCharge(intent.amount, intent.currency, intent.customer, params, {
      payment_intent: intent.id,
      payment_method: paymentMethod,
      captured: !manual,
    });
    intent.latest_charge = charge.id;
    if (!charge.paid) {
      intent.status = 'requires_payment_method';
      intent.last_payment_error = { type: 'card_error', code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' };
      throw declined(charge, { payment_intent: intent });
    }
    intent.status = manual ? 'requires_capture' : 'succeeded';
    intent.amount_capturable = manual ? intent.amount : 0;
    intent.amount_received = manual ? 0 : intent.amount;
  }

  capturePaymentIntent(id: string, params: FormObject): PaymentIntent {
    const intent = this.find('payment_intent', id, 'intent');
    if (intent.status !== 'requires_capture') throw wrongStatus('captured', intent, ['requires_capture']);
    const amount = optionalAmount(params, 'amount_to_capture') ?? intent.amount_capturable;
    if (amount > intent.amount_capturable) {
      throw invalidRequest(`The amount to capture (${amount}) exceeds the capturable amount (${intent.amount_capturable}).`, {
        code: 'amount_too_large',
        param: 'amount_to_capture',
      });
    }
    const charge = this.find('charge', intent.latest_charge ?? '', 'intent');
    captureCharge(charge, amount);
    intent.amount_received = amount;
    intent.amount_capturable = 0;
    intent.status = 'succeeded';
    intent.metadata = mergeMetadata(params, intent.metadata);
    return intent;
  }

  /** `amount` is the new total authorised amount, not the increment. */
  incrementAuthorization(id: string, params: FormObject): PaymentIntent {
    const intent = this.find('payment_intent', id, 'intent');
    if (intent.status !== 'requires_capture') throw wrongStatus('incremented', intent, ['requires_capture']);
    const amount = requiredAmount(params);
    if (amount < intent.amount) throw invalidRequest('The new amount must be greater than the current amount.', { param: 'amount' });
    intent.amount = amount;
    intent.amount_capturable = amount;
    const charge = this.find('charge', intent.latest_charge ?? '', 'intent');
    charge.amount = amount;
    return intent;
  }

  cancelPaymentIntent(id: string, params: FormObject): PaymentIntent {
    const intent = this.find('payment_intent', id, 'intent');
    const cancelable = ['requires_payment_method', 'requires_capture', 'requires_confirmation', 'requires_action', 'processing'];
    if (!cancelable.includes(intent.status)) throw wrongStatus('canceled', intent, cancelable);
    intent.status = 'canceled';
    intent.canceled_at = now();
    intent.cancellation_reason = optionalString(params, 'cancellation_reason') ?? null;
    intent.amount_capturable = 0;
    return intent;
  }

  createCharge(params: FormObject): Charge {
    const amount = requiredAmount(params);
    const currency = requiredCurrency(params);
    const customer = this.#customerParam(params);
    const source = optionalString(params, 'source');
    if (customer === null && source === undefined) throw invalidRequest('Must provide source or customer.');
    const charge = this.#newCharge(amount, currency, customer, params, {
      payment_intent: null,
      payment_method: source ?? stripeId('card'),
      captured: optionalBoolean(params, 'capture') ?? true,
    });
    if (!charge.paid) throw declined(charge, {});
    return charge;
  }

  captureCharge(id: string, params: FormObject): Charge {
    const charge = this.find('charge', id, 'charge');
    if (charge.captured) throw invalidRequest(`Charge ${id} has already been captured.`, { code: 'charge_already_captured' });
    const amount = optionalAmount(params, 'amount') ?? charge.amount;
    if (amount > charge.amount) throw invalidRequest(`Amount must be no more than ${charge.amount}.`, { code: 'amount_too_large', param: 'amount' });
    captureCharge(charge, amount);
    return charge;
  }

  #newCharge(
    amount: number,
    currency: string,
    customer: string | null,
    params: FormObject,
    link: { payment_intent: string | null; payment_method: string; captured: boolean },
  ): Charge {
    const paid = !DECLINING_PAYMENT_METHODS.has(link.payment_method);
    const base = this.#base('ch', params);
    return this.#store<Charge>({
      ...base,
      object: 'charge',
      amount,
      amount_captured: paid && link.captured ? amount : 0,
      amount_refunded: 0,
      application: null,
      application_fee: null,
      balance_transaction: paid && link.captured ? stripeId('txn') : null,
      billing_details: { address: null, email: null, name: null, phone: null },
      calculated_statement_descriptor: 'KEYBRAKE SIM',
      captured: paid && link.captured,
      currency,
      customer,
      description: optionalString(params, 'description') ?? null,
      disputed: false,
      failure_code: paid ? null : 'card_declined',
      failure_message: paid ? null : 'Your card was declined.',
      fraud_details: {},
      outcome: paid
        ? { network_status: 'approved_by_network', reason: null, risk_level: 'normal', seller_message: 'Payment complete.', type: 'authorized' }
        : { network_status: 'declined_by_network', reason: 'generic_decline', risk_level: 'normal', seller_message: 'The bank did not return any further details with this decline.', type: 'issuer_declined' },
      paid,
      payment_intent: link.payment_intent,
      payment_method: link.payment_method,
      receipt_email: optionalString(params, 'receipt_email') ?? null,
      receipt_url: `https://pay.stripe.com/receipts/${randomAlphanumeric(32)}`,
      refunded: false,
      status: paid ? 'succeeded' : 'failed',
      transfer_group: null,
    });
  }

  createRefund(params: FormObject): Refund {
    const charge = this.#refundableCharge(params);
    // amount_refunded already includes any uncaptured remainder released at capture.
    const remaining = charge.amount - charge.amount_refunded;
    if (remaining <= 0) throw invalidRequest(`Charge ${charge.id} has already been refunded.`, { code: 'charge_already_refunded' });
    const amount = optionalAmount(params, 'amount') ?? remaining;
    if (amount > remaining) {
      throw invalidRequest(`Refund amount (${amount} ${charge.currency}) is greater than unrefunded amount on charge (${remaining} ${charge.currency})`, {
        code: 'amount_too_large',
        param: 'amount',
      });
    }
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded === charge.amount;
    const base = this.#base('re', params);
    return this.#store<Refund>({
      ...base,
      object: 'refund',
      amount,
      balance_transaction: stripeId('txn'),
      charge: charge.id,
      currency: charge.currency,
      destination_details: null,
      payment_intent: charge.payment_intent,
      reason: optionalEnum(params, 'reason', ['duplicate', 'fraudulent', 'requested_by_customer'] as const) ?? null,
      receipt_number: null,
      source_transfer_reversal: null,
      status: 'succeeded',
      transfer_reversal: null,
    });
  }

  #refundableCharge(params: FormObject): Charge {
    const chargeId = optionalString(params, 'charge');
    if (chargeId !== undefined) {
      const charge = this.find('charge', chargeId, 'charge', 400);
      if (!charge.captured) throw invalidRequest(`Charge ${charge.id} has not been captured and cannot be refunded.`, { code: 'charge_not_refundable' });
      return charge;
    }
    const intentId = optionalString(params, 'payment_intent');
    if (intentId === undefined) {
      throw invalidRequest('One of the following params should be provided for this request: payment_intent or charge.', { code: 'parameter_missing' });
    }
    const intent = this.find('payment_intent', intentId, 'payment_intent', 400);
    const charge = intent.latest_charge === null ? undefined : this.objects.get(intent.latest_charge);
    if (charge?.object !== 'charge' || !charge.captured) {
      throw invalidRequest(`This PaymentIntent (${intent.id}) does not have a successful charge to refund.`, { code: 'charge_not_refundable' });
    }
    return charge;
  }

  createTransfer(params: FormObject): Transfer {
    const amount = requiredAmount(params);
    const currency = requiredCurrency(params);
    const destination = requiredString(params, 'destination');
    const base = this.#base('tr', params);
    return this.#store<Transfer>({
      ...base,
      object: 'transfer',
      amount,
      amount_reversed: 0,
      balance_transaction: stripeId('txn'),
      currency,
      description: optionalString(params, 'description') ?? null,
      destination,
      destination_payment: stripeId('py'),
      reversals: { object: 'list', data: [], has_more: false, total_count: 0, url: `/v1/transfers/${base.id}/reversals` },
      reversed: false,
      source_transaction: optionalString(params, 'source_transaction') ?? null,
      source_type: 'card',
      transfer_group: optionalString(params, 'transfer_group') ?? null,
    });
  }

  createPayout(params: FormObject): Payout {
    const amount = requiredAmount(params);
    const currency = requiredCurrency(params);
    const base = this.#base('po', params);
    return this.#store<Payout>({
      ...base,
      object: 'payout',
      amount,
      arrival_date: now() + 2 * 86_400,
      automatic: false,
      balance_transaction: stripeId('txn'),
      currency,
      description: optionalString(params, 'description') ?? null,
      destination: optionalString(params, 'destination') ?? stripeId('ba'),
      failure_balance_transaction: null,
      failure_code: null,
      failure_message: null,
      method: optionalEnum(params, 'method', ['standard', 'instant'] as const) ?? 'standard',
      original_payout: null,
      reconciliation_status: 'not_applicable',
      reversed_by: null,
      source_type: optionalString(params, 'source_type') ?? 'card',
      statement_descriptor: optionalString(params, 'statement_descriptor') ?? null,
      status: 'pending',
      type: 'bank_account',
    });
  }
}

function captureCharge(charge: Charge, amount: number): void {
  charge.captured = true;
  charge.amount_captured = amount;
  // Stripe releases the uncaptured remainder as a refund of it.
  charge.amount_refunded = charge.amount - amount;
  charge.balance_transaction = stripeId('txn');
}

/** The 402 Stripe sends for a decline; the failed charge is kept, as Stripe keeps it. */
function declined(charge: Charge, extra: Record<string, unknown>): StripeError {
  return new StripeError(402, {
    type: 'card_error',
    code: 'card_declined',
    decline_code: 'generic_decline',
    message: 'Your card was declined.',
    charge: charge.id,
    ...extra,
  });
}

