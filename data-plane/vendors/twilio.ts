import { malformed, type ProxyError } from '../proxy-error.js';
import { basicCredentials, type VendorAdapter } from './vendor-adapter.js';

/**
 * Twilio: twilio-node insists on an `AC…` account SID as the Basic user, so the vault key
 * travels as the Basic password (the auth-token slot). The proxy puts the real account SID in
 * both the path (/2010-04-01/Accounts/{sid}/…) and the credentials.
 * Errors are top-level `{code, message, more_info, status}`; twilio-node raises RestException.
 */
const ACCOUNT_SID_SEGMENT = /^AC[0-9a-fA-F]{32}(\.json)?$/;
const TWILIO_ERROR_CODES: Record<number, number> = { 400: 20001, 401: 20003, 402: 20005, 403: 20403, 429: 20429 };

export const twilioAdapter: VendorAdapter = {
  vendor: 'twilio',
  vaultKeyFrom(headers) {
    const credentials = basicCredentials(headers);
    return credentials === null || credentials[1] === '' ? null : credentials[1];
  },
  forwardedSegments(segments, credential) {
    if (segments[1] !== 'Accounts' || segments.length < 3) return segments;
    // "AC…" alone (…/Accounts/AC…/Messages.json) or with a suffix (…/Accounts/AC….json).
    const match = ACCOUNT_SID_SEGMENT.exec(segments[2]!);
    if (match === null) throw malformed('Twilio paths name an account SID (AC followed by 32 hex digits) after /Accounts/');
    return [segments[0]!, 'Accounts', `${credential.accountSid}${match[1] ?? ''}`, ...segments.slice(3)];
  },
  authorization: (credential) => `Basic ${Buffer.from(`${credential.accountSid}:${credential.secret}`).toString('base64')}`,
  guardedHeaders: [],
  // The Basic credentials as a whole too: scrub.ts derives their base64 (the Authorization header echoed) and every other form.
  secretForms: (credential) => [credential.secret, `${credential.accountSid}:${credential.secret}`],
  denial(error: ProxyError) {
    const code = TWILIO_ERROR_CODES[error.status] ?? 20500;
    return {
      body: { code, message: `${error.code}: ${error.rawMessage}`, more_info: `https://www.twilio.com/docs/errors/${code}`, status: error.status },
      headers: {},
    };
  },
};
