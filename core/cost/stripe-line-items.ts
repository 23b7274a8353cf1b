/**
 * The amount of a Checkout Session, a Payment Link, a Subscription or one of its items: the sum
 * of the line items' `price_data[unit_amount]` × `quantity`. A line item naming a Price (or a
 * legacy Plan) by id, and anything Stripe adds on top of the items (tax, shipping), is not in the
 * request: such a call falls back to the key's per-call estimate, never below what the visible
 * items add up to.
 */
import { malformed } from './refusal.js';
import { ceilDiv, minorToMicros, parseCurrency, parseMinorAmount, toSafeNumber } from './currency.js';
import { listAt, mapAt, scalarAt, type FormMap, type FormNode } from './form-body.js';
import type { PriceTables } from './price-tables.js';
import { quote } from '../quote.js';

/** `unit_amount_decimal` has up to 12 decimal places: totals are kept in 10^-12 minor units. */
export const DECIMAL_SCALE = 12;
export const SCALE = 10n ** BigInt(DECIMAL_SCALE);
const UNIT_AMOUNT_DECIMAL = /^(\d+)(?:\.(\d{1,12}))?$/;
const COUNT = /^\d{1,15}$/;
/** Stripe's default `adjustable_quantity[maximum]`. */
const DEFAULT_ADJUSTABLE_MAXIMUM = 99n;

export interface LineItemTotal {
  /** Sum per currency, in 10^-12 minor units. */
  readonly byCurrency: Map<string, bigint>;
  /** Why the visible items are not the whole amount; empty when they are. */
  readonly hidden: string[];
}

export function emptyTotal(): LineItemTotal {
  return { byCurrency: new Map(), hidden: [] };
}

export function parseCount(text: string, field: string): bigint {
  if (!COUNT.test(text)) throw malformed(`${field} must be a whole number in decimal digits, got ${quote(text)}`);
  return BigInt(text);
}

/** A `unit_amount_decimal` in 10^-12 minor units. */
export function parseUnitAmountDecimal(text: string, field: string): bigint {
  const match = UNIT_AMOUNT_DECIMAL.exec(text);
  if (match === null || text.length > 40) throw malformed(`${field} must be a decimal number with at most 12 decimal places, got ${quote(text)}`);
  const [, whole = '0', fraction = ''] = match;
  return BigInt(whole) * SCALE + BigInt(fraction.padEnd(DECIMAL_SCALE, '0'));
}

/** True when a parameter is set: Stripe reads an empty value as "unset". */
export function isSet(node: FormNode | undefined): boolean {
  return node !== undefined && node !== '';
}

function quantityOf(item: FormMap, field: string, adjustable: boolean): bigint {
  const stated = scalarAt(item, ['quantity']);
  let quantity = stated === undefined ? 1n : parseCount(stated, `${field}[quantity]`);
  // A customer may raise an adjustable quantity up to its maximum on the payment page.
  if (adjustable && scalarAt(item, ['adjustable_quantity', 'enabled']) === 'true') {
    const maximumText = scalarAt(item, ['adjustable_quantity', 'maximum']);
    const maximum = maximumText === undefined ? DEFAULT_ADJUSTABLE_MAXIMUM : parseCount(maximumText, `${field}[adjustable_quantity][maximum]`);
    if (maximum > quantity) quantity = maximum;
  }
  return quantity;
}

/**
 * Adds the list parameter `listName` to `total`. `fallbackCurrency` is the object's own
 * `currency`, used by a `price_data` that names none.
 */
export function addLineItems(params: FormMap, listName: string, fallbackCurrency: string | undefined, total: LineItemTotal, options: { adjustable: boolean }): void {
  for (const { index, item } of listAt(params, listName)) addLineItem(item, `${listName}[${index}]`, fallbackCurrency, total, options);
}

/**
 * Adds one line item (`price` or `price_data`, `quantity`, `tax_rates`) to `total`: an item of a
 * list, or the whole body of a call that creates one item (a subscription item). `field` names it
 * in messages.
 */
export function addLineItem(item: FormMap, field: string, fallbackCurrency: string | undefined, total: LineItemTotal, options: { adjustable: boolean }): void {
  const priceId = scalarAt(item, ['price']);
  const planId = scalarAt(item, ['plan']);
  const priceData = mapAt(item, ['price_data']);
  if (isSet(item.get('tax_rates')) || isSet(item.get('dynamic_tax_rates'))) total.hidden.push(`${field} has tax rates added on top`);
  if ([priceId, planId, priceData].filter((given) => given !== undefined).length > 1) throw malformed(`${field} gives more than one of price, plan and price_data`);
  const quantity = quantityOf(item, field, options.adjustable);
  if (priceId !== undefined || planId !== undefined) {
    const [kind, id] = priceId !== undefined ? ['Price', priceId] : ['Plan', planId];
    total.hidden.push(`${field} names the ${kind} ${quote(id)}, whose amount the request does not state`);
    return;
  }
  if (priceData === undefined) throw malformed(`${field} needs price or price_data`);
  const scaled = scaledUnitAmount(priceData, `${field}[price_data]`);
  if (scaled === undefined) throw malformed(`${field}[price_data] needs unit_amount or unit_amount_decimal`);
  const currencyText = scalarAt(priceData, ['currency']) ?? fallbackCurrency;
  if (currencyText === undefined) throw malformed(`${field}[price_data][currency] is required`);
  const currency = parseCurrency(currencyText, `${field}[price_data][currency]`);
  total.byCurrency.set(currency, (total.byCurrency.get(currency) ?? 0n) + scaled * quantity);
}

/**
 * The `unit_amount` or `unit_amount_decimal` of `holder` (a `price_data`, a credit note line, or
 * the top level when `field` is '') in 10^-12 minor units; undefined when it gives neither.
 */
export function scaledUnitAmount(holder: FormMap, field: string): bigint | undefined {
  const name = (param: string) => (field === '' ? param : `${field}[${param}]`);
  const unitAmount = scalarAt(holder, ['unit_amount']);
  const unitAmountDecimal = scalarAt(holder, ['unit_amount_decimal']);
  if (unitAmount !== undefined && unitAmountDecimal !== undefined) throw malformed(`${name('unit_amount')} and ${name('unit_amount_decimal')} are both given`);
  if (unitAmount !== undefined) return parseMinorAmount(unitAmount, name('unit_amount')) * SCALE;
  if (unitAmountDecimal !== undefined) return parseUnitAmountDecimal(unitAmountDecimal, name('unit_amount_decimal'));
  return undefined;
}

/** `total` times `factor` (a Payment Link paid up to `factor` times). */
export function multiplyTotal(total: LineItemTotal, factor: bigint): void {
  for (const [currency, scaled] of total.byCurrency) total.byCurrency.set(currency, scaled * factor);
}

export interface PricedTotal {
  readonly micros: number;
  /** In the minor unit, rounded up; null when the items are in more than one currency. */
  readonly amount: number | null;
  readonly currency: string | null;
}

/** The visible items in micro-USD: each currency's exact sum converted once, rounded up. */
export function priceTotal(total: LineItemTotal, tables: PriceTables): PricedTotal {
  let micros = 0n;
  for (const [currency, scaled] of total.byCurrency) micros += BigInt(minorToMicros(scaled, currency, tables, DECIMAL_SCALE));
  const single = total.byCurrency.size === 1 ? [...total.byCurrency][0] : undefined;
  return {
    micros: toSafeNumber(micros, 'the line items total in micro-USD'),
    amount: single === undefined ? null : toSafeNumber(ceilDiv(single[1], SCALE), 'the line items total'),
    currency: single?.[0] ?? null,
  };
}
