/**
 * In-process simulated vendors for integration tests (there is no internet in CI): start them,
 * point the proxy's vendor base URLs at `sim.url`, and assert on `sim.wiretap`.
 */
import { randomAlphanumeric, randomHex } from './random-ids.js';
import { startResendSimulator } from './resend-simulator.js';
import type { ResendSimulator } from './resend-simulator.js';
import { startStripeSimulator } from './stripe-simulator.js';
import type { StripeSimulator } from './stripe-simulator.js';
import { startTwilioSimulator } from './twilio-simulator.js';
import type { TwilioSimulator } from './twilio-simulator.js';

export * from './wiretap.js';
export * from './simulator.js';
export * from './stripe-simulator.js';
export * from './twilio-simulator.js';
export * from './resend-simulator.js';
export { countSegments, isGsm7 } from './sms-segments.js';
export type { SegmentCount, SmsEncoding } from './sms-segments.js';
export { parseStripeForm, splitFormKey } from './stripe-form.js';
export type { FormObject, FormValue } from './stripe-form.js';
export type { StripeObject, Customer, PaymentIntent, Charge, Refund, Transfer, Payout } from './stripe-objects.js';

/**
 * The real vendor credentials the simulators accept. Each contains CANARY so a test can search
 * logs, responses and storage for any leak of them.
 */
export interface CanarySecrets {
  stripeSecretKey: string;
  twilioAccountSid: string;
  twilioAuthToken: string;
  resendApiKey: string;
}

export interface AllSimulators {
  stripe: StripeSimulator;
  twilio: TwilioSimulator;
  resend: ResendSimulator;
  secrets: CanarySecrets;
  /** Stops all three; safe to call more than once. */
  stop(): Promise<void>;
}

export function canarySecrets(): CanarySecrets {
  return {
    stripeSecretKey: `sk_test_CANARY_stripe_${randomAlphanumeric(24)}`,
    // The SID must be AC + 32 hex for twilio-node; the token is free-form, 32 characters like Twilio's.
    twilioAccountSid: `AC${randomHex(32)}`,
    twilioAuthToken: `CANARY_twilio_${randomHex(18)}`,
    resendApiKey: `re_CANARY_resend_${randomAlphanumeric(24)}`,
  };
}

export async function startAllSimulators(secrets: CanarySecrets = canarySecrets()): Promise<AllSimulators> {
  const started = await Promise.allSettled([
    startStripeSimulator({ secretKey: secrets.stripeSecretKey }),
    startTwilioSimulator({ accountSid: secrets.twilioAccountSid, authToken: secrets.twilioAuthToken }),
    startResendSimulator({ apiKey: secrets.resendApiKey }),
  ] as const);
  const [stripe, twilio, resend] = started;
  if (stripe.status !== 'fulfilled' || twilio.status !== 'fulfilled' || resend.status !== 'fulfilled') {
    // Do not leak the servers that did start.
    await Promise.all(started.map((result) => (result.status === 'fulfilled' ? result.value.stop() : undefined)));
    const failure = started.find((result) => result.status === 'rejected');
    throw failure?.reason ?? new Error('a simulator failed to start');
  }
  return {
    stripe: stripe.value,
    twilio: twilio.value,
    resend: resend.value,
    secrets,
    stop: async () => {
      await Promise.all([stripe.value.stop(), twilio.value.stop(), resend.value.stop()]);
    },
  };
}
