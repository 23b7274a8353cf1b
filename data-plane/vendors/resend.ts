import type { ProxyError } from '../proxy-error.js';
import { bearerToken, type VendorAdapter } from './vendor-adapter.js';

/**
 * Resend: `Authorization: Bearer`. Errors are `{statusCode, message, name}`; resend-node never
 * throws and never retries: it returns `{data: null, error: {name, message}}`.
 */
const RESEND_ERROR_NAMES: Record<number, string> = {
  400: 'validation_error',
  401: 'invalid_api_key',
  402: 'validation_error',
  403: 'restricted_api_key',
  413: 'validation_error',
  429: 'rate_limit_exceeded',
};

export const resendAdapter: VendorAdapter = {
  vendor: 'resend',
  vaultKeyFrom: (headers) => bearerToken(headers),
  forwardedSegments: (segments) => segments,
  authorization: (credential) => `Bearer ${credential.secret}`,
  guardedHeaders: [],
  secretForms: (credential) => [credential.secret],
  denial(error: ProxyError) {
    const name = RESEND_ERROR_NAMES[error.status] ?? 'application_error';
    return { body: { statusCode: error.status, message: `${error.code}: ${error.rawMessage}`, name }, headers: {} };
  },
};
