import type { Vendor } from '../../core/vendors.js';
import { resendAdapter } from './resend.js';
import { stripeAdapter } from './stripe.js';
import { twilioAdapter } from './twilio.js';
import type { VendorAdapter } from './vendor-adapter.js';

export const VENDOR_ADAPTERS: Record<Vendor, VendorAdapter> = {
  stripe: stripeAdapter,
  twilio: twilioAdapter,
  resend: resendAdapter,
};

export type { VendorAdapter, VendorCredential } from './vendor-adapter.js';
export { basicCredentials, bearerToken } from './vendor-adapter.js';
