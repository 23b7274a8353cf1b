/**
 * Money is integer micro-USD everywhere inside Keybrake: 1 USD = 1,000,000 micros.
 * Decimal text is parsed digit by digit, never through floating point arithmetic.
 */
import { invalidField } from './operator-error.js';
import { quote } from './quote.js';

export const MICROS_PER_USD = 1_000_000;
const MICRO_DIGITS = 6;
const DECIMAL_PATTERN = /^(\d+)(?:\.(\d+))?$/;

/**
 * Parses a USD amount given as JSON number or decimal string into micros.
 * A JSON number arrives as a double: its shortest round-trip text (String(n)) is exactly
 * what the sender wrote for any amount with at most 15 significant digits, so parsing that
 * text is exact for every sensible cap.
 */
export function parseUsdToMicros(value: unknown, field: string): number {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalidField(field, 'must be a finite number');
    text = String(value);
  } else if (typeof value === 'string') {
    text = value.trim();
  } else {
    throw invalidField(field, `must be a number of US dollars, got ${describeType(value)}`);
  }
  if (/e/i.test(text)) throw invalidField(field, `${quote(value)} is out of range`);
  if (text.startsWith('-')) throw invalidField(field, `must be greater than 0, got ${quote(value)}`);
  const match = DECIMAL_PATTERN.exec(text);
  if (match === null) throw invalidField(field, `must be a number of US dollars, got ${quote(value)}`);
  const whole = match[1] ?? '0';
  const fraction = match[2] ?? '';
  if (fraction.length > MICRO_DIGITS && /[1-9]/.test(fraction.slice(MICRO_DIGITS))) {
    throw invalidField(field, `has more than ${MICRO_DIGITS} decimal places: ${quote(value)}`);
  }
  const micros = BigInt(whole) * BigInt(MICROS_PER_USD) + BigInt(fraction.slice(0, MICRO_DIGITS).padEnd(MICRO_DIGITS, '0'));
  if (micros > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidField(field, `${quote(value)} is out of range`);
  return Number(micros);
}

/** Formats micros as a decimal USD string with at least two decimals: 1500000 → "1.50". */
export function formatMicrosAsUsd(micros: number): string {
  if (!Number.isSafeInteger(micros)) throw new RangeError(`micros must be a safe integer, got ${micros}`);
  const sign = micros < 0 ? '-' : '';
  const abs = Math.abs(micros);
  const whole = Math.trunc(abs / MICROS_PER_USD);
  let fraction = String(abs % MICROS_PER_USD).padStart(MICRO_DIGITS, '0').replace(/0+$/, '');
  if (fraction.length < 2) fraction = fraction.padEnd(2, '0');
  return `${sign}${whole}.${fraction}`;
}

export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `string ${quote(value)}`;
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}
