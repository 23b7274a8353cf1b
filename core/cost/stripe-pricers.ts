/**
 * The building blocks of Stripe's cost model. A Pricer reads a call's parameters (parsed once per
 * call by estimateStripe) and says the most the call can move: an amount the request states, or
 * the key's per-call estimate when it does not. Pure.
 */
import { checkCurrencyRules, minorToMicros, parseCurrency, parseMinorAmount, toSafeNumber, worstCaseMicros, type AmountRules } from './currency.js';
import { scalarAt, type FormMap, type FormNode } from './form-body.js';
import type { PriceTables } from './price-tables.js';
import { FREE, malformed, perCallEstimate } from './refusal.js';
import type { CostEstimate, KeyPricing } from './types.js';
import { quote } from '../quote.js';

export interface PricingContext {
  readonly params: FormMap;
  readonly key: KeyPricing;
  readonly tables: PriceTables;
}

export type Pricer = (context: PricingContext) => CostEstimate;

export const free: Pricer = () => FREE;

export function priced(micros: number, amount: bigint | null, currency: string | null, detail: string): CostEstimate {
  return { kind: 'priced', micros, amount: amount === null ? null : toSafeNumber(amount, 'the amount'), currency, detail };
}

/**
 * `amount` and `currency` both required (creating a charge, a transfer, a payout, …).
 * `parseAmount` reads a signed amount as its size where a credit moves money as a debit does.
 */
export function statedAmount(object: string, rules: AmountRules = {}, parseAmount = parseMinorAmount): Pricer {
  return ({ params, tables }) => {
    const amountText = scalarAt(params, ['amount']);
    const currencyText = scalarAt(params, ['currency']);
    if (amountText === undefined) throw malformed(`creating a ${object} requires amount`);
    if (currencyText === undefined) throw malformed(`creating a ${object} requires currency`);
    const amount = parseAmount(amountText, 'amount');
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
export function amountInObjectCurrency(amount: bigint, field: string, object: string, tables: PriceTables): CostEstimate {
  const worst = worstCaseMicros(amount, tables);
  return priced(worst.micros, amount, null, `${object}: ${field} ${amount} in the ${object}'s currency, bounded at ${worst.currency} (the dearest priced currency)`);
}

/** An optional amount of an existing object (a capture, a refund): without it, "all of it". */
export function optionalObjectAmount(field: string, object: string, whenAbsent: string): Pricer {
  return ({ params, key, tables }) => {
    const text = scalarAt(params, [field]);
    if (text === undefined) return perCallEstimate(key, whenAbsent);
    return amountInObjectCurrency(parseMinorAmount(text, field), field, object, tables);
  };
}

export function requiredObjectAmount(field: string, object: string, action: string): Pricer {
  return ({ params, tables }) => {
    const text = scalarAt(params, [field]);
    if (text === undefined) throw malformed(`${action} requires ${field}`);
    return amountInObjectCurrency(parseMinorAmount(text, field), field, object, tables);
  };
}

/** Money moves, but the request does not bound it: the key's per-call estimate prices it. */
export function unstatedAmount(reason: string): Pricer {
  return ({ key }) => perCallEstimate(key, reason);
}

/**
 * A parameter that changes something: present and not the boolean `false`. An empty value
 * counts: Stripe reads it as "unset", and unsetting (a balance, a flag's default) can move money.
 */
function changesSomething(node: FormNode | undefined): boolean {
  return node !== undefined && node !== 'false';
}

/** Request parameter names for a message: a few, each quoted (they are the caller's text). */
function nameList(names: readonly string[]): string {
  const shown = names.slice(0, 3).map((name) => quote(name)).join(', ');
  return names.length > 3 ? `${shown} and ${names.length - 3} more` : shown;
}

/**
 * Free unless one of `moneyParams` is given (cancelling with `invoice_now`, closing an account with
 * `forwarding_settings`): then the per-call estimate, for money the request does not state.
 */
export function freeUnless(moneyParams: readonly string[], reason: string): Pricer {
  return ({ params, key }) => {
    const given = moneyParams.filter((name) => changesSomething(params.get(name)));
    return given.length === 0 ? FREE : perCallEstimate(key, `${reason} (${given.join(', ')} given)`);
  };
}

/**
 * An update that is free while it touches only `harmless` parameters (metadata, a description,
 * where receipts go); any other parameter may change what the object moves, by an amount the
 * request does not state. An entry `name=value` allows the parameter with that value only
 * (`active=false` stops a Payment Link; `active=true` lets it take money again). `expand` only
 * shapes the answer.
 */
export function freeOnlyWith(harmless: readonly string[], reason: string): Pricer {
  const anyValue = new Set(['expand']);
  const onlyValues = new Map<string, Set<string>>();
  for (const entry of harmless) {
    const equals = entry.indexOf('=');
    if (equals === -1) anyValue.add(entry);
    else onlyValues.set(entry.slice(0, equals), (onlyValues.get(entry.slice(0, equals)) ?? new Set()).add(entry.slice(equals + 1)));
  }
  return ({ params, key }) => {
    const others: string[] = [];
    for (const [name, node] of params) {
      if (anyValue.has(name) || (typeof node === 'string' && onlyValues.get(name)?.has(node) === true)) continue;
      others.push(name);
    }
    return others.length === 0 ? FREE : perCallEstimate(key, `${reason} (${nameList(others)} given)`);
  };
}
