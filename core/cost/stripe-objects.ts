/**
 * Pricers of Stripe objects whose amount is more than one parameter: a PaymentIntent update, the
 * line items of a Checkout Session, a Payment Link or a Subscription, an invoice item, a credit
 * note, a customer's opening balance, a billing credit grant. Each states what the request shows
 * and falls back to the key's per-call estimate (never below what it shows) for what it hides.
 */
import { ceilDiv, minorToMicros, parseCurrency, parseMinorAmount, parseMinorMagnitude, toSafeNumber, worstCaseMicros } from './currency.js';
import { listAt, mapAt, scalarAt, type FormMap } from './form-body.js';
import type { PriceTables } from './price-tables.js';
import { FREE, malformed, perCallEstimate } from './refusal.js';
import {
  addLineItem,
  addLineItems,
  DECIMAL_SCALE,
  emptyTotal,
  isSet,
  multiplyTotal,
  parseCount,
  priceTotal,
  SCALE,
  scaledUnitAmount,
  type LineItemTotal,
} from './stripe-line-items.js';
import { amountInObjectCurrency, priced, statedAmount, type Pricer } from './stripe-pricers.js';
import type { CostEstimate, KeyPricing } from './types.js';

type PricedEstimate = Extract<CostEstimate, { kind: 'priced' }>;

/**
 * Updating a PaymentIntent moves nothing by itself, but it sets what confirming and capturing
 * it will move, so a new amount is priced. A new currency alone re-denominates the existing
 * amount (1000 JPY → 1000 USD cents), which the request does not state.
 */
export const paymentIntentUpdate: Pricer = (context) => {
  const { params, key, tables } = context;
  const amountText = scalarAt(params, ['amount']);
  const currencyText = scalarAt(params, ['currency']);
  if (amountText === undefined && currencyText === undefined) return FREE;
  if (amountText === undefined) return perCallEstimate(key, "changing a PaymentIntent's currency re-prices its amount, which the request does not state");
  if (currencyText !== undefined) return statedAmount('payment intent')(context);
  return amountInObjectCurrency(parseMinorAmount(amountText, 'amount'), 'amount', 'payment intent', tables);
};

// ---- line items: Checkout, Payment Links, Subscriptions ------------------------------------

/** Tax computed by Stripe is added on top of the items; the request does not state it. */
function addAutomaticTax(params: FormMap, total: LineItemTotal): void {
  if (scalarAt(params, ['automatic_tax', 'enabled']) === 'true') total.hidden.push('automatic tax is added on top');
}

/**
 * What a customer may add on the payment page: optional items (each names a Price by id) and a
 * shipping option of their choosing.
 */
function addCustomerAdditions(params: FormMap, total: LineItemTotal): void {
  if (isSet(params.get('optional_items'))) total.hidden.push('the customer may add optional items');
  if (isSet(params.get('shipping_options'))) total.hidden.push('shipping options are added on top');
}

/**
 * Subscription parameters that bill more than one period of the items at once: backdating bills
 * the periods since the backdated start, and a billing cycle anchor bills a proration up to it
 * (unless proration_behavior=none). Billing schedules are not modelled.
 */
function addSubscriptionHidden(subscription: FormMap, prefix: string, total: LineItemTotal): void {
  if (isSet(subscription.get('backdate_start_date'))) total.hidden.push(`${prefix}backdate_start_date bills the periods since the backdated start`);
  const prorates = scalarAt(subscription, ['proration_behavior']) !== 'none';
  for (const anchor of ['billing_cycle_anchor', 'billing_cycle_anchor_config']) {
    if (prorates && isSet(subscription.get(anchor))) total.hidden.push(`${prefix}${anchor} bills a proration up to the anchor`);
  }
  if (isSet(subscription.get('billing_schedules'))) total.hidden.push(`${prefix}billing_schedules are not modelled`);
  if (isSet(subscription.get('default_tax_rates'))) total.hidden.push(`${prefix}default_tax_rates add tax on top`);
}

function lineItemEstimate(object: string, total: LineItemTotal, key: KeyPricing, tables: PriceTables): CostEstimate {
  const visible = priceTotal(total, tables);
  if (total.hidden.length > 0) return perCallEstimate(key, `${object}: ${total.hidden.join('; ')}`, visible.micros);
  if (total.byCurrency.size === 0) return FREE;
  return { kind: 'priced', micros: visible.micros, amount: visible.amount, currency: visible.currency, detail: `${object}: line items` };
}

/** Checkout Session: `line_items`, with shipping, tax and optional items on top when asked for. mode=setup has none. */
export const checkoutSession: Pricer = ({ params, key, tables }) => {
  const total = emptyTotal();
  addLineItems(params, 'line_items', scalarAt(params, ['currency']), total, { adjustable: true });
  addAutomaticTax(params, total);
  addCustomerAdditions(params, total);
  const subscriptionData = mapAt(params, ['subscription_data']);
  if (subscriptionData !== undefined) addSubscriptionHidden(subscriptionData, 'subscription_data: ', total);
  return lineItemEstimate('checkout session', total, key, tables);
};

/**
 * Payment Link: a Checkout Session any number of customers can open. Its line items bound one
 * payment; `restrictions[completed_sessions][limit]` bounds how many; without a limit the link
 * can take money forever, which only the per-call estimate can price.
 */
export const paymentLink: Pricer = ({ params, key, tables }) => {
  const total = emptyTotal();
  addLineItems(params, 'line_items', scalarAt(params, ['currency']), total, { adjustable: true });
  addAutomaticTax(params, total);
  addCustomerAdditions(params, total);
  const limit = scalarAt(params, ['restrictions', 'completed_sessions', 'limit']);
  if (limit === undefined) total.hidden.push('a payment link without restrictions[completed_sessions][limit] can be paid any number of times');
  else multiplyTotal(total, parseCount(limit, 'restrictions[completed_sessions][limit]'));
  return lineItemEstimate('payment link', total, key, tables);
};

/**
 * Subscription: the first period of its `items` plus the one-off `add_invoice_items` (billed
 * with the first invoice). A trial delays that money; the estimate still bounds it (and
 * settlement keeps it: see settleStripe).
 */
export const subscriptionCreate: Pricer = ({ params, key, tables }) => {
  const total = emptyTotal();
  const currency = scalarAt(params, ['currency']);
  addLineItems(params, 'items', currency, total, { adjustable: false });
  addLineItems(params, 'add_invoice_items', currency, total, { adjustable: false });
  addAutomaticTax(params, total);
  addSubscriptionHidden(params, '', total);
  return lineItemEstimate('subscription', total, key, tables);
};

/**
 * Adding an item to a subscription: one period of it at most (the proration for the rest of the
 * current period, or the next invoice's line), the body being the item itself.
 */
export const subscriptionItemCreate: Pricer = ({ params, key, tables }) => {
  const total = emptyTotal();
  addLineItem(params, 'the subscription item', undefined, total, { adjustable: false });
  return lineItemEstimate('subscription item', total, key, tables);
};

// ---- invoice items, credit notes, balances ------------------------------------------------

/** An amount of unstated currency (the customer's, the invoice's), in 10^-12 minor units, bounded at the dearest priced currency. */
function scaledInObjectCurrency(scaled: bigint, object: string, tables: PriceTables): PricedEstimate {
  const worst = worstCaseMicros(scaled, tables, DECIMAL_SCALE);
  const amount = toSafeNumber(ceilDiv(scaled, SCALE), `the ${object} amount`);
  return { kind: 'priced', micros: worst.micros, amount, currency: null, detail: `${object}: ${amount} in the ${object}'s currency, bounded at ${worst.currency} (the dearest priced currency)` };
}

/** Where an invoice item's amount comes from; `unit_amount` and `price` are older API versions' spellings. */
const INVOICE_ITEM_AMOUNT_PARAMS = ['amount', 'unit_amount', 'unit_amount_decimal', 'price_data', 'pricing', 'price'] as const;

/**
 * An invoice item: billed with the customer's next invoice (which a subscription collects on its
 * own), so it is priced when it is created. `amount` is the item's total and may be negative (a
 * credit, priced by its size); otherwise a unit amount × `quantity`. Without `currency` the
 * customer's currency applies. A Price by id, a decimal quantity and tax rates are not in the
 * request. An update is free unless it changes the amount.
 */
function invoiceItem(update: boolean): Pricer {
  return ({ params, key, tables }) => {
    const given = INVOICE_ITEM_AMOUNT_PARAMS.filter((name) => params.has(name));
    if (given.length > 1) throw malformed(`an invoice item takes one of ${INVOICE_ITEM_AMOUNT_PARAMS.join(', ')}; got ${given.join(' and ')}`);
    const [source] = given;
    const hidden: string[] = [];
    if (isSet(params.get('tax_rates'))) hidden.push('tax_rates add tax on top');
    if (params.has('quantity_decimal')) hidden.push('quantity_decimal is not modelled');
    if (source === 'pricing' || source === 'price') hidden.push("it names a Price, whose amount the request does not state");
    if (source === undefined) {
      if (!update) throw malformed('an invoice item needs amount, unit_amount_decimal, price_data or pricing');
      if (params.has('quantity')) hidden.push("a new quantity multiplies the item's unit amount, which the request does not state");
      if (hidden.length === 0) return FREE;
    }
    if (hidden.length > 0) return perCallEstimate(key, `invoice item: ${hidden.join('; ')}`);
    const quantityText = scalarAt(params, ['quantity']);
    const quantity = quantityText === undefined ? 1n : parseCount(quantityText, 'quantity');
    let scaled: bigint;
    let currencyText = scalarAt(params, ['currency']);
    if (source === 'amount') {
      // Stripe documents `amount` as the item's total (unit_amount × quantity); multiplying by a
      // quantity given beside it can only over-reserve, and settlement reads the item's amount.
      scaled = parseMinorMagnitude(scalarAt(params, ['amount']) ?? '', 'amount') * SCALE * quantity;
    } else if (source === 'unit_amount' || source === 'unit_amount_decimal') {
      scaled = (scaledUnitAmount(params, '') ?? 0n) * quantity;
    } else {
      const priceData = mapAt(params, ['price_data']) ?? new Map();
      const unit = scaledUnitAmount(priceData, 'price_data');
      if (unit === undefined) throw malformed('price_data needs unit_amount or unit_amount_decimal');
      scaled = unit * quantity;
      currencyText = scalarAt(priceData, ['currency']) ?? currencyText;
    }
    if (currencyText === undefined) return scaledInObjectCurrency(scaled, 'invoice item', tables);
    const currency = parseCurrency(currencyText, 'currency');
    const micros = minorToMicros(scaled, currency, tables, DECIMAL_SCALE);
    const amount = toSafeNumber(ceilDiv(scaled, SCALE), 'the invoice item amount');
    return priced(micros, BigInt(amount), currency, `invoice item: ${amount} ${currency}`);
  };
}

export const invoiceItemCreate = invoiceItem(false);
export const invoiceItemUpdate = invoiceItem(true);

function optionalAmount(params: FormMap, path: readonly string[], field: string): bigint | undefined {
  const text = scalarAt(params, path);
  return text === undefined ? undefined : parseMinorAmount(text, field);
}

/** The credit of one credit note line: its `amount`, or unit amount × quantity; hidden when it credits a quantity at the invoice line's price. */
function creditNoteLine(line: FormMap, field: string, hidden: string[]): bigint {
  if (isSet(line.get('tax_rates')) || isSet(line.get('tax_amounts'))) hidden.push(`${field} adds tax`);
  const amount = optionalAmount(line, ['amount'], `${field}[amount]`);
  if (amount !== undefined) return amount * SCALE;
  const quantityText = scalarAt(line, ['quantity']);
  const quantity = quantityText === undefined ? 1n : parseCount(quantityText, `${field}[quantity]`);
  const unit = scaledUnitAmount(line, field);
  if (unit !== undefined) return unit * quantity;
  hidden.push(`${field} credits a quantity at the invoice line's price, which the request does not state`);
  return 0n;
}

/**
 * A credit note: money refunded (`refund_amount`, `refunds`), credited to the customer's balance
 * (`credit_amount`) or settled outside Stripe; together they make up its total, which `amount`
 * or `lines` state. Priced at the largest of these, in the invoice's (unstated) currency.
 */
export const creditNote: Pricer = ({ params, key, tables }) => {
  const hidden: string[] = [];
  const stated: bigint[] = [];
  const amount = optionalAmount(params, ['amount'], 'amount');
  if (amount !== undefined) stated.push(amount * SCALE);
  const lines = listAt(params, 'lines');
  if (lines.length > 0) stated.push(lines.reduce((sum, { index, item }) => sum + creditNoteLine(item, `lines[${index}]`, hidden), 0n));
  let split: bigint | undefined;
  for (const name of ['refund_amount', 'credit_amount', 'out_of_band_amount']) {
    const part = optionalAmount(params, [name], name);
    if (part !== undefined) split = (split ?? 0n) + part * SCALE;
  }
  for (const { index, item } of listAt(params, 'refunds')) {
    const part = optionalAmount(item, ['amount_refunded'], `refunds[${index}][amount_refunded]`);
    if (part !== undefined) split = (split ?? 0n) + part * SCALE;
  }
  if (split !== undefined) stated.push(split);
  if (isSet(params.get('shipping_cost'))) hidden.push('shipping_cost adds a shipping rate');
  if (stated.length === 0) hidden.push('a credit note without amount, lines or refund_amount credits an amount the request does not state');
  const largest = stated.reduce((max, value) => (value > max ? value : max), 0n);
  const visible = scaledInObjectCurrency(largest, 'credit note', tables);
  // `amount` is the whole total: what the lines hide is inside it.
  if (hidden.length > 0 && amount === undefined) return perCallEstimate(key, `credit note: ${hidden.join('; ')}`, visible.micros);
  return visible;
};

/** A customer balance transaction: `amount` (negative: a credit) in `currency`, both required. */
export const customerBalanceTransaction: Pricer = statedAmount('customer balance transaction', {}, parseMinorMagnitude);

/**
 * Creating a customer is free, unless it opens with a `balance` (what its next invoices owe or,
 * negative, a credit against them): money as surely as a balance transaction, in the customer's
 * currency, which the request does not state.
 */
export const customerCreate: Pricer = ({ params, tables }) => {
  const balance = scalarAt(params, ['balance']);
  // An empty value is Stripe's "unset": a new customer then opens at 0.
  if (balance === undefined || balance === '') return FREE;
  return amountInObjectCurrency(parseMinorMagnitude(balance, 'balance'), 'balance', 'customer', tables);
};

/**
 * A billing credit grant gives a customer credit against future usage invoices: its
 * `amount[monetary][value]` in `amount[monetary][currency]`. Another kind of amount is not
 * modelled.
 */
export const creditGrant: Pricer = ({ params, key, tables }) => {
  const value = scalarAt(params, ['amount', 'monetary', 'value']);
  const currencyText = scalarAt(params, ['amount', 'monetary', 'currency']);
  if (value === undefined || currencyText === undefined) return perCallEstimate(key, 'a credit grant without amount[monetary][value] and amount[monetary][currency] grants an amount the request does not state');
  const amount = parseMinorAmount(value, 'amount[monetary][value]');
  const currency = parseCurrency(currencyText, 'amount[monetary][currency]');
  return priced(minorToMicros(amount, currency, tables), amount, currency, `credit grant: ${amount} ${currency}`);
};
