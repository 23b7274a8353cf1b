/**
 * Stripe's cost model. Only POSTs to the endpoints below move money (VENDORS.md, "Where the money
 * is", plus the legacy and Treasury routes that move money the same way); every other call —
 * reads, customers, metadata, setup intents — is free. The allowlist decides which calls a key
 * may make at all; this decides what each allowed call may cost.
 *
 * /v2 endpoints take JSON and, apart from money_management's money movers (priced by the key's
 * per-call estimate: their amounts are not modelled yet), move no money: they are free.
 */
import { addLineItems, emptyTotal, priceTotal, type LineItemTotal } from './stripe-line-items.js';
import { checkCurrencyRules, minorToMicros, parseCurrency, parseMinorAmount, toSafeNumber, worstCaseMicros, type AmountRules } from './currency.js';
import { parseBracketForm, readFormPairs, scalarAt, type FormMap } from './form-body.js';
import type { PriceTables } from './price-tables.js';
import { CostRefusal, FREE, malformed, perCallEstimate } from './refusal.js';
import { headerValue, isRecord, outcomeOf, responseJson, stringField } from './settlement.js';
import type { CostEstimate, KeyPricing, PricedRequest, Settlement, VendorResponse } from './types.js';

interface PricingContext {
  readonly params: FormMap;
  readonly key: KeyPricing;
  readonly tables: PriceTables;
}

type Pricer = (context: PricingContext) => CostEstimate;

interface StripeRoute {
  /** Canonical segments; '*' is one id segment. */
  readonly path: readonly string[];
  readonly price: Pricer;
  /** Where the answer shows the amount that moved: the object type and its amount field. */
  readonly settles: { readonly object: string; readonly field: string } | null;
}

function priced(micros: number, amount: bigint | null, currency: string | null, detail: string): CostEstimate {
  return { kind: 'priced', micros, amount: amount === null ? null : toSafeNumber(amount, 'the amount'), currency, detail };
}

/** `amount` and `currency` both required (creating a charge, a transfer, a payout, …). */
function statedAmount(object: string, rules: AmountRules = {}): Pricer {
  return ({ params, tables }) => {
    const amountText = scalarAt(params, ['amount']);
    const currencyText = scalarAt(params, ['currency']);
    if (amountText === undefined) throw malformed(`creating a ${object} requires amount`);
    if (currencyText === undefined) throw malformed(`creating a ${object} requires currency`);
    const amount = parseMinorAmount(amountText, 'amount');
    const currency = parseCurrency(currencyText, 'currency');
    checkCurrencyRules(amount, currency, 'amount', rules);
    return priced(minorToMicros(amount, currency, tables), amount, currency, `${object}: ${amount} ${currency}`);
  };
}

/**
 * An amount in the currency of an existing object, which the request does not state. Priced in
 * the dearest currency the operator has a rate for (an upper bound for any object in a priced
 * currency); a `currency` parameter is not trusted here, since Stripe uses the object's own.
 */
function amountInObjectCurrency(amount: bigint, field: string, object: string, tables: PriceTables): CostEstimate {
  const worst = worstCaseMicros(amount, tables);
  return priced(worst.micros, amount, null, `${object}: ${field} ${amount} in the ${object}'s currency, bounded at ${worst.currency} (the dearest priced currency)`);
}

/** An optional amount of an existing object (a capture, a refund): without it, "all of it". */
function optionalObjectAmount(field: string, object: string, whenAbsent: string): Pricer {
  return ({ params, key, tables }) => {
    const text = scalarAt(params, [field]);
    if (text === undefined) return perCallEstimate(key, whenAbsent);
    return amountInObjectCurrency(parseMinorAmount(text, field), field, object, tables);
  };
}

function requiredObjectAmount(field: string, object: string, action: string): Pricer {
  return ({ params, tables }) => {
    const text = scalarAt(params, [field]);
    if (text === undefined) throw malformed(`${action} requires ${field}`);
    return amountInObjectCurrency(parseMinorAmount(text, field), field, object, tables);
  };
}

function unstatedAmount(reason: string): Pricer {
  return ({ key }) => perCallEstimate(key, reason);
}

/**
 * Updating a PaymentIntent moves nothing by itself, but it sets what confirming and capturing
 * it will move, so a new amount is priced. A new currency alone re-denominates the existing
 * amount (1000 JPY → 1000 USD cents), which the request does not state.
 */
const paymentIntentUpdate: Pricer = (context) => {
  const { params, key, tables } = context;
  const amountText = scalarAt(params, ['amount']);
  const currencyText = scalarAt(params, ['currency']);
  if (amountText === undefined && currencyText === undefined) return FREE;
  if (amountText === undefined) return perCallEstimate(key, "changing a PaymentIntent's currency re-prices its amount, which the request does not state");
  if (currencyText !== undefined) return statedAmount('payment intent')(context);
  return amountInObjectCurrency(parseMinorAmount(amountText, 'amount'), 'amount', 'payment intent', tables);
};

/** Tax computed by Stripe is added on top of the items; the request does not state it. */
function addObjectLevelHidden(params: FormMap, total: LineItemTotal, taxRateParams: readonly string[]): void {
  if (scalarAt(params, ['automatic_tax', 'enabled']) === 'true') total.hidden.push('automatic tax is added on top');
  for (const name of taxRateParams) {
    const node = params.get(name);
    if (node !== undefined && node !== '') total.hidden.push(`${name} add tax on top`);
  }
}

function lineItemEstimate(object: string, total: LineItemTotal, key: KeyPricing, tables: PriceTables): CostEstimate {
  const visible = priceTotal(total, tables);
  if (total.hidden.length > 0) return perCallEstimate(key, `${object}: ${total.hidden.join('; ')}`, visible.micros);
  if (total.byCurrency.size === 0) return FREE;
  return { kind: 'priced', micros: visible.micros, amount: visible.amount, currency: visible.currency, detail: `${object}: line items` };
}

/** Checkout Session: `line_items`, with shipping and tax on top when asked for. mode=setup has none. */
const checkoutSession: Pricer = ({ params, key, tables }) => {
  const total = emptyTotal();
  addLineItems(params, 'line_items', scalarAt(params, ['currency']), total, { adjustable: true });
  addObjectLevelHidden(params, total, []);
  const shipping = params.get('shipping_options');
  if (shipping !== undefined && shipping !== '') total.hidden.push('shipping options are added on top');
  return lineItemEstimate('checkout session', total, key, tables);
};

/**
 * Subscription: the first period of its `items` plus the one-off `add_invoice_items` (billed
 * with the first invoice). A trial delays that money; the estimate still bounds it.
 */
const subscription: Pricer = ({ params, key, tables }) => {
  const total = emptyTotal();
  const currency = scalarAt(params, ['currency']);
  addLineItems(params, 'items', currency, total, { adjustable: false });
  addLineItems(params, 'add_invoice_items', currency, total, { adjustable: false });
  addObjectLevelHidden(params, total, ['default_tax_rates']);
  return lineItemEstimate('subscription', total, key, tables);
};

const refundLike = (object: string, whenAbsent: string) => optionalObjectAmount('amount', object, whenAbsent);
const REFUND_REST = 'a refund without amount refunds the rest of the charge, which the request does not state';

const settlesAs = (object: string, field = 'amount') => ({ object, field });

const V1_ROUTES: readonly StripeRoute[] = [
  { path: ['v1', 'payment_intents'], price: statedAmount('payment intent'), settles: settlesAs('payment_intent') },
  { path: ['v1', 'payment_intents', '*'], price: paymentIntentUpdate, settles: settlesAs('payment_intent') },
  {
    path: ['v1', 'payment_intents', '*', 'confirm'],
    price: unstatedAmount("confirming a PaymentIntent moves its amount, which the request does not state"),
    settles: settlesAs('payment_intent'),
  },
  {
    path: ['v1', 'payment_intents', '*', 'capture'],
    price: optionalObjectAmount('amount_to_capture', 'payment intent', 'a capture without amount_to_capture captures the whole capturable amount, which the request does not state'),
    settles: settlesAs('payment_intent', 'amount_received'),
  },
  {
    // `amount` is the new authorized total (an upper bound of the increment) in the intent's currency.
    path: ['v1', 'payment_intents', '*', 'increment_authorization'],
    price: requiredObjectAmount('amount', 'payment intent', 'increment_authorization'),
    settles: settlesAs('payment_intent'),
  },
  { path: ['v1', 'charges'], price: statedAmount('charge'), settles: settlesAs('charge') },
  {
    path: ['v1', 'charges', '*', 'capture'],
    price: optionalObjectAmount('amount', 'charge', 'a capture without amount captures the whole charge, which the request does not state'),
    settles: settlesAs('charge', 'amount_captured'),
  },
  { path: ['v1', 'refunds'], price: refundLike('refund', REFUND_REST), settles: settlesAs('refund') },
  // Legacy refund routes: the same money as /v1/refunds. The older one answers with the Charge.
  { path: ['v1', 'charges', '*', 'refunds'], price: refundLike('refund', REFUND_REST), settles: settlesAs('refund') },
  { path: ['v1', 'charges', '*', 'refund'], price: refundLike('refund', REFUND_REST), settles: settlesAs('charge', 'amount_refunded') },
  { path: ['v1', 'transfers'], price: statedAmount('transfer'), settles: settlesAs('transfer') },
  {
    path: ['v1', 'transfers', '*', 'reversals'],
    price: refundLike('transfer reversal', 'a reversal without amount reverses the rest of the transfer, which the request does not state'),
    settles: settlesAs('transfer_reversal'),
  },
  {
    path: ['v1', 'application_fees', '*', 'refunds'],
    price: refundLike('application fee refund', 'an application fee refund without amount refunds the rest of the fee, which the request does not state'),
    settles: settlesAs('fee_refund'),
  },
  {
    path: ['v1', 'application_fees', '*', 'refund'],
    price: refundLike('application fee refund', 'an application fee refund without amount refunds the rest of the fee, which the request does not state'),
    settles: settlesAs('application_fee', 'amount_refunded'),
  },
  { path: ['v1', 'payouts'], price: statedAmount('payout', { payout: true }), settles: settlesAs('payout') },
  {
    path: ['v1', 'payouts', '*', 'reverse'],
    price: unstatedAmount("reversing a payout moves the payout's amount, which the request does not state"),
    settles: settlesAs('payout'),
  },
  { path: ['v1', 'topups'], price: statedAmount('top-up'), settles: settlesAs('topup') },
  { path: ['v1', 'treasury', 'outbound_payments'], price: statedAmount('outbound payment'), settles: settlesAs('treasury.outbound_payment') },
  { path: ['v1', 'treasury', 'outbound_transfers'], price: statedAmount('outbound transfer'), settles: settlesAs('treasury.outbound_transfer') },
  {
    path: ['v1', 'invoices', '*', 'pay'],
    price: unstatedAmount("paying an invoice moves its amount_due, which the request does not state"),
    settles: settlesAs('invoice', 'amount_paid'),
  },
  { path: ['v1', 'checkout', 'sessions'], price: checkoutSession, settles: settlesAs('checkout.session', 'amount_total') },
  { path: ['v1', 'subscriptions'], price: subscription, settles: null },
];

const V2_MONEY_MOVERS: readonly (readonly string[])[] = [
  ['v2', 'money_management', 'outbound_payments'],
  ['v2', 'money_management', 'outbound_transfers'],
  ['v2', 'money_management', 'inbound_transfers'],
  ['v2', 'money_management', 'payout_intents'],
  ['v2', 'money_management', 'payout_intents', '*'],
  ['v2', 'money_management', 'payout_intents', '*', 'confirm'],
];

function matches(path: readonly string[], segments: readonly string[]): boolean {
  return path.length === segments.length && path.every((segment, i) => segment === '*' || segment === segments[i]);
}

function findRoute(request: PricedRequest): StripeRoute | undefined {
  if (request.method !== 'POST') return undefined;
  return V1_ROUTES.find((route) => matches(route.path, request.segments));
}

/** Throws CostRefusal; the dispatcher turns that into a refused estimate. */
export function estimateStripe(request: PricedRequest, key: KeyPricing, tables: PriceTables): CostEstimate {
  if (request.method !== 'POST') return FREE;
  if (request.segments[0] === 'v2') {
    const mover = V2_MONEY_MOVERS.some((path) => matches(path, request.segments));
    return mover ? perCallEstimate(key, `${request.segments.slice(1).join(' ')}: Stripe v2 money movement is priced by the per-call estimate`) : FREE;
  }
  const route = findRoute(request);
  if (route === undefined) return FREE;
  const params = parseBracketForm(readFormPairs(request));
  return route.price({ params, key, tables });
}

// ---- settlement ----------------------------------------------------------------------------

function safeAmount(value: unknown): bigint | null {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : null;
}

interface Revealed {
  readonly amount: bigint;
  readonly currency: string;
  readonly micros: number;
}

/** The amount the answer shows moved, in micro-USD; null when it shows none we can price. */
function revealedAmount(route: StripeRoute | undefined, body: unknown, tables: PriceTables): Revealed | null {
  if (route?.settles == null || !isRecord(body) || body.object !== route.settles.object) return null;
  const amount = safeAmount(body[route.settles.field]);
  const currency = stringField(body, 'currency')?.toLowerCase() ?? null;
  if (amount === null || currency === null) return null;
  try {
    return { amount, currency, micros: minorToMicros(amount, currency, tables) };
  } catch (error) {
    // A currency without a rate (or an absurd amount): keep the reservation as the figure.
    if (error instanceof CostRefusal) return null;
    throw error;
  }
}

/** A Charge's id, or the latest Charge of a PaymentIntent (an id, or the expanded object's id). */
function chargeIdOf(body: unknown): string | null {
  if (!isRecord(body)) return null;
  if (body.object === 'charge') return stringField(body, 'id');
  if (body.object === 'payment_intent') {
    const latest = body.latest_charge;
    return typeof latest === 'string' && latest !== '' ? latest : stringField(latest, 'id');
  }
  return null;
}

export function settleStripe(request: PricedRequest, estimate: CostEstimate, response: VendorResponse, tables: PriceTables): Settlement {
  const body = responseJson(response.body);
  const objectId = stringField(body, 'id');
  const stripeChargeId = chargeIdOf(body);
  // A free call moves nothing, whatever amount its object shows (a metadata update of an intent).
  const revealed = estimate.kind === 'priced' ? revealedAmount(findRoute(request), body, tables) : null;
  const reservedAmount = estimate.kind === 'priced' ? estimate.amount : null;
  const reservedCurrency = estimate.kind === 'priced' ? estimate.currency : null;
  const amount = revealed === null ? reservedAmount : Number(revealed.amount);
  const currency = revealed?.currency ?? reservedCurrency;
  const replayed = headerValue(response.headers, 'idempotent-replayed')?.trim().toLowerCase() === 'true';
  const outcome = outcomeOf(response.status);
  // Stripe answered from its idempotency store: the money moved (or not) the first time.
  const micros = replayed || outcome === 'refused' || estimate.kind !== 'priced' ? 0 : outcome === 'indeterminate' || revealed === null ? estimate.micros : revealed.micros;
  return { micros, replayed, objectId, stripeChargeId, amount, currency };
}
