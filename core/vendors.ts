import { describeType } from './money.js';
import { invalidField } from './operator-error.js';
import { quote } from './quote.js';

export const VENDORS = ['stripe', 'twilio', 'resend'] as const;
export type Vendor = (typeof VENDORS)[number];

/** Where each vendor's API lives in its own path space: allowlist entries must fall inside it. */
const VENDOR_PATH_ROOTS: Record<Vendor, readonly string[]> = {
  stripe: ['/v1/', '/v2/'],
  twilio: ['/2010-04-01/'],
  resend: ['/'],
};

export function isVendor(value: unknown): value is Vendor {
  return typeof value === 'string' && (VENDORS as readonly string[]).includes(value);
}

export function parseVendor(value: unknown, field = 'vendor'): Vendor {
  if (isVendor(value)) return value;
  if (typeof value !== 'string') throw invalidField(field, `must be one of ${VENDORS.join(', ')}, got ${describeType(value)}`);
  throw invalidField(field, `unknown vendor ${quote(value)} (expected one of ${VENDORS.join(', ')})`);
}

export function vendorPathRoots(vendor: Vendor): readonly string[] {
  return VENDOR_PATH_ROOTS[vendor];
}
