/**
 * Identifiers in the vendors' own formats, so code under test that checks prefixes or lengths
 * (or scrubs them from logs) sees what production would send.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';

const ALPHANUMERIC = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function randomAlphanumeric(length: number): string {
  let out = '';
  for (let i = 0; i < length; i += 1) out += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return out;
}

export function randomHex(length: number): string {
  return randomBytes(Math.ceil(length / 2)).toString('hex').slice(0, length);
}

/** Stripe: `pi_3Mtw…` style, prefix plus 24 alphanumerics (customers get 14). */
export function stripeId(prefix: string, length = 24): string {
  return `${prefix}_${randomAlphanumeric(length)}`;
}

/** Stripe request ids look like `req_8PtdEVrqVJiOhr`. */
export function stripeRequestId(): string {
  return `req_${randomAlphanumeric(14)}`;
}

/** Twilio SIDs: two-letter type prefix plus 32 lower-case hex digits. */
export function twilioSid(prefix: string): string {
  return `${prefix}${randomHex(32)}`;
}

/** Resend ids are UUIDv4. */
export function resendId(): string {
  return randomUUID();
}
