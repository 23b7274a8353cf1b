import type { ProxyError } from '../proxy-error.js';
import { basicCredentials, bearerToken, type VendorAdapter } from './vendor-adapter.js';

/**
 * Stripe: the key as `Authorization: Bearer` (both SDKs) or as the Basic user (curl -u).
 * Error bodies are `{error: {type, code, message}}`; stripe-node < 21 picks its exception by
 * `type`, later versions and stripe-python by status, so both are set consistently.
 * `Stripe-Should-Retry: false` stops the SDKs retrying a denial that cannot succeed.
 */
export const stripeAdapter: VendorAdapter = {
  vendor: 'stripe',
  vaultKeyFrom(headers) {
    return bearerToken(headers) ?? basicCredentials(headers)?.[0] ?? null;
  },
  forwardedSegments: (segments) => segments,
  authorization: (credential) => `Bearer ${credential.secret}`,
  guardedHeaders: ['stripe-account', 'stripe-context'],
  // Its Basic form (`base64(secret:)`, curl -u) and every other encoding are derived by scrub.ts.
  secretForms: (credential) => [credential.secret],
  denial(error: ProxyError) {
    const headers: Record<string, string> = {};
    if (error.status < 500) headers['stripe-should-retry'] = 'false';
    return { body: { error: { type: stripeErrorType(error.status), code: error.code, message: error.rawMessage } }, headers };
  },
};

function stripeErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 402) return 'card_error';
  if (status >= 500) return 'api_error';
  return 'invalid_request_error';
}
