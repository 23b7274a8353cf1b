/**
 * Stripe amounts into micro-USD. Stripe states amounts as integers in a currency's minor unit,
 * with per-currency rules (VENDORS.md); the conversion rounds UP so an estimate is never below
 * the amount it stands for, and runs on BigInt so no float ever touches money.
 */
import { CostRefusal, malformed, notPriced } from './refusal.js';
import type { PriceTables } from './price-tables.js';
import { quote } from '../quote.js';

/** Currencies without a minor unit: an amount of 500 JPY is ¥500. */
export const ZERO_DECIMAL_CURRENCIES: ReadonlySet<string> = new Set([
  'bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'vnd', 'vuv', 'xaf', 'xof', 'xpf',
]);
/** Three-decimal currencies; Stripe requires the last digit to be 0 (whole tens of the minor unit). */
export const THREE_DECIMAL_CURRENCIES: ReadonlySet<string> = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);
/** Zero-decimal currencies that Stripe nevertheless takes as two-decimal amounts divisible by 100. */
export const TWO_DECIMAL_WHOLE_UNIT_CURRENCIES: ReadonlySet<string> = new Set(['isk', 'ugx']);
/** Two-decimal currencies whose payouts must be whole units (divisible by 100). */
export const WHOLE_UNIT_PAYOUT_CURRENCIES: ReadonlySet<string> = new Set(['huf', 'twd']);

const CURRENCY_PARAM = /^[A-Za-z]{3}$/;
const AMOUNT_DIGITS = /^\d+$/;
/** More digits than this cannot be a safe integer, whatever the leading zeros; refuse early. */
const MAX_AMOUNT_DIGITS = 32;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Decimal digits of the minor unit Stripe amounts are written in. */
export function currencyExponent(currency: string): 0 | 2 | 3 {
  if (ZERO_DECIMAL_CURRENCIES.has(currency)) return 0;
  if (THREE_DECIMAL_CURRENCIES.has(currency)) return 3;
  return 2;
}

/** A currency parameter as Stripe reads it: three letters, any case; answered lower-case. */
export function parseCurrency(text: string, field: string): string {
  if (!CURRENCY_PARAM.test(text)) throw malformed(`${field} must be a three-letter ISO currency code, got ${quote(text)}`);
  return text.toLowerCase();
}

/**
 * A Stripe integer amount: decimal digits only. `1e3`, `+1`, `-1`, `1.5`, ` 1` and '' are all
 * refused, because a vendor might read them differently from us.
 */
export function parseMinorAmount(text: string, field: string): bigint {
  if (!AMOUNT_DIGITS.test(text)) throw malformed(`${field} must be a whole number of the currency's minor unit in decimal digits, got ${quote(text)}`);
  if (text.length > MAX_AMOUNT_DIGITS) throw malformed(`${field} is out of range`);
  return BigInt(text);
}

/**
 * A signed Stripe amount (a customer balance transaction, an invoice item, a customer's balance),
 * as its size: a credit of -500 moves as much money as a debit of 500. A leading '-' is the only
 * sign accepted; the digits follow parseMinorAmount's rules.
 */
export function parseMinorMagnitude(text: string, field: string): bigint {
  return parseMinorAmount(text.startsWith('-') ? text.slice(1) : text, field);
}

export interface AmountRules {
  /** Payouts have stricter rules for some currencies. */
  readonly payout?: boolean;
}

/** Stripe's per-currency divisibility rules: an amount Stripe would refuse is refused here too. */
export function checkCurrencyRules(amount: bigint, currency: string, field: string, rules: AmountRules = {}): void {
  if (THREE_DECIMAL_CURRENCIES.has(currency) && amount % 10n !== 0n) {
    throw malformed(`${field}: ${currency.toUpperCase()} amounts must end in 0 (Stripe accepts whole tens of the minor unit), got ${amount}`);
  }
  if (TWO_DECIMAL_WHOLE_UNIT_CURRENCIES.has(currency) && amount % 100n !== 0n) {
    throw malformed(`${field}: ${currency.toUpperCase()} amounts are sent as two-decimal amounts divisible by 100, got ${amount}`);
  }
  if (rules.payout === true && WHOLE_UNIT_PAYOUT_CURRENCIES.has(currency) && amount % 100n !== 0n) {
    throw malformed(`${field}: ${currency.toUpperCase()} payouts must be divisible by 100, got ${amount}`);
  }
}

/** ceil(numerator / denominator) for non-negative numerator and positive denominator. */
export function ceilDiv(numerator: bigint, denominator: bigint): bigint {
  return (numerator + denominator - 1n) / denominator;
}

export function toSafeNumber(value: bigint, what: string): number {
  if (value < 0n || value > MAX_SAFE) throw malformed(`${what} is out of range`);
  return Number(value);
}

/**
 * micro-USD for `scaledAmount / 10^extraScale` minor units of `currency`, rounded up:
 * ceil(amount × microsPerMajorUnit / 10^(exponent + extraScale)). `extraScale` carries the
 * fractional minor units of Stripe's `unit_amount_decimal`.
 */
export function minorToMicros(scaledAmount: bigint, currency: string, tables: PriceTables, extraScale = 0): number {
  const rate = Object.hasOwn(tables.exchangeRates, currency) ? tables.exchangeRates[currency] : undefined;
  if (rate === undefined) throw notPriced(currency);
  const denominator = 10n ** BigInt(currencyExponent(currency) + extraScale);
  const micros = ceilDiv(scaledAmount * BigInt(rate.microsPerMajorUnit), denominator);
  // The message is only built for a refusal: this runs on every priced call.
  if (micros < 0n || micros > MAX_SAFE) return toSafeNumber(micros, `the amount ${describeScaled(scaledAmount, extraScale)} ${currency.toUpperCase()} in micro-USD`);
  return Number(micros);
}

function describeScaled(scaledAmount: bigint, extraScale: number): string {
  if (extraScale === 0) return String(scaledAmount);
  const text = String(scaledAmount).padStart(extraScale + 1, '0');
  return `${text.slice(0, -extraScale)}.${text.slice(-extraScale)}`.replace(/\.?0+$/, '');
}

/**
 * For an amount whose currency the request does not state (a refund, a capture, an incremental
 * authorization: the currency is the existing object's): the most the amount can be worth in any
 * currency the operator priced. This bounds every object in a priced currency, which every
 * payment made through a capped key is; an object created elsewhere in a currency without a rate
 * is the one case it cannot bound, and settlement reprices from the answer where it can.
 * `extraScale` as for minorToMicros.
 */
export function worstCaseMicros(amount: bigint, tables: PriceTables, extraScale = 0): { micros: number; currency: string } {
  let worst: { micros: number; currency: string } | null = null;
  for (const currency of Object.keys(tables.exchangeRates).sort()) {
    const micros = minorToMicros(amount, currency, tables, extraScale);
    if (worst === null || micros > worst.micros) worst = { micros, currency };
  }
  if (worst === null) throw new CostRefusal('currency_not_priced', 'no exchange rate is configured at all; an operator must set one');
  return worst;
}
