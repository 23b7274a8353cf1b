/**
 * The official SDKs pointed at a Keybrake data plane, the way users configure them.
 */
import { Resend } from 'resend';
import Stripe from 'stripe';
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient.js';
import type * as TwilioHttpResponse from 'twilio/lib/http/response.js';

/** stripe-node has no base-path option: it talks to the data plane's bare /v1 routes. */
export function stripeThrough(proxyUrl: string, vaultKey: string, options: Partial<Stripe.StripeConfig> = {}): Stripe {
  const url = new URL(proxyUrl);
  return new Stripe(vaultKey, { host: url.hostname, port: Number(url.port), protocol: 'http', maxNetworkRetries: 0, ...options });
}

/**
 * twilio-node always sends to https://api.twilio.com; a RequestClient subclass that rewrites the
 * URI is the supported way to reach a proxy. The username must look like an account SID (any
 * AC… works: the proxy substitutes the real one); the vault key goes in the auth-token slot.
 */
export class KeybrakeTwilioClient extends twilio.RequestClient {
  constructor(private readonly proxyBase: string) {
    super();
  }

  override request<TData>(opts: RequestClient.RequestOptions<TData>): Promise<TwilioHttpResponse.default<TData>> {
    return super.request({ ...opts, uri: opts.uri.replace(/^https:\/\/api\.twilio\.com(?::443)?/, this.proxyBase) });
  }
}

export const PLACEHOLDER_ACCOUNT_SID = `AC${'0'.repeat(32)}`;

export function twilioThrough(proxyUrl: string, vaultKey: string): twilio.Twilio {
  return twilio(PLACEHOLDER_ACCOUNT_SID, vaultKey, { httpClient: new KeybrakeTwilioClient(`${proxyUrl}/twilio`) });
}

export function resendThrough(proxyUrl: string, vaultKey: string): Resend {
  return new Resend(vaultKey, { baseUrl: `${proxyUrl}/resend` });
}
