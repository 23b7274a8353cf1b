/**
 * Quoting what a caller sent inside an error message. A refusal names what it refuses, but
 * never echoes it whole: an 800 KB parameter name must not come back as an 800 KB message (or
 * land in a log line, an audit record or a metric). Pure.
 */
import { cutAtCodePoint } from './text.js';

/** How many characters of a refused value an error message shows. */
export const QUOTE_MAX_CHARS = 40;

/**
 * `text` as a JSON string literal, cut to its first `max` characters with the full length said
 * when longer: `"aaaa…" (800000 characters)`. Cut at a code point, never inside a surrogate pair.
 */
export function quote(value: unknown, max = QUOTE_MAX_CHARS): string {
  if (typeof value !== 'string') return excerpt(String(typeof value === 'number' || typeof value === 'boolean' || value === null ? JSON.stringify(value) : value), max);
  const text = value;
  if (text.length <= max) return JSON.stringify(text);
  return `${JSON.stringify(`${cutAtCodePoint(text, max)}…`)} (${text.length} characters)`;
}

/** A path or other text interpolated bare into a message, cut the same way (no JSON quotes). */
export function excerpt(text: string, max = 2 * QUOTE_MAX_CHARS): string {
  if (text.length <= max) return text;
  return `${cutAtCodePoint(text, max)}… (${text.length} characters)`;
}
