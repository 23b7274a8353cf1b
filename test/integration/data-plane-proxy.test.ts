/**
 * The data plane as the official SDKs see it: real control plane, etcd, a real data-plane
 * process, and simulated vendors with a wiretap. A correct caller notices nothing; everything
 * else is refused in the vendor's own error shape and never reaches the vendor.
 */
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { KeySpec } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';
import { startTestDataPlane, type TestDataPlane } from '../support/data-plane.js';
import { rawRequest } from '../support/raw-http.js';
import { resendThrough, stripeThrough, twilioThrough } from '../support/sdk-clients.js';
import { headerValue, startAllSimulators, STRIPE_ECHO_HEADERS_PATH, type AllSimulators } from '../simulators/index.js';

let stack: TestStack;
let cp: TestControlPlane;
let sims: AllSimulators;
let dp: TestDataPlane;
const keys = { stripe: '', twilio: '', resend: '', revoked: '', echo: '' };
const MAX_BODY = 64 * 1024;

const spec = (vendor: string, allowedEndpoints: string[], change: Partial<KeySpec> = {}): KeySpec => ({
  vendor, label: `proxy/${vendor}`, allowedEndpoints, dailyCapMicros: 0, budgetMicros: 1_000_000_000, expiresInSeconds: 3600, perCallEstimateMicros: 0, ...change,
});

beforeAll(async () => {
  stack = await createTestStack();
  cp = await startTestControlPlane(stack);
  sims = await startAllSimulators();
  await cp.client.setVendorCredential({ vendor: 'stripe', secret: sims.secrets.stripeSecretKey, accountSid: '' });
  await cp.client.setVendorCredential({ vendor: 'twilio', secret: sims.secrets.twilioAuthToken, accountSid: sims.secrets.twilioAccountSid });
  await cp.client.setVendorCredential({ vendor: 'resend', secret: sims.secrets.resendApiKey, accountSid: '' });
  const stripeEndpoints = ['POST /v1/customers', 'POST /v1/payment_intents', 'POST /v1/payment_intents/*/confirm', 'POST /v1/charges', 'GET /v1/charges/*', `POST ${STRIPE_ECHO_HEADERS_PATH}`];
  const { issued } = await cp.client.issueKeys({
    specs: [
      spec('stripe', stripeEndpoints),
      spec('twilio', ['POST /2010-04-01/Accounts/*/Messages.json', 'GET /2010-04-01/Accounts/*']),
      spec('resend', ['POST /emails', 'POST /emails/batch']),
      spec('stripe', ['POST /v1/charges']),
      // The simulator's echo route is no Stripe endpoint the cost model knows: a per-call estimate prices it.
      spec('stripe', [`POST ${STRIPE_ECHO_HEADERS_PATH}`], { perCallEstimateMicros: 1_000_000 }),
    ],
  });
  [keys.stripe, keys.twilio, keys.resend, keys.revoked, keys.echo] = issued.map((i) => i.vaultKey) as [string, string, string, string, string];
  await cp.client.revokeKey({ id: issued[3]!.key!.id });
  dp = await startTestDataPlane(stack, cp.grpcAddress, { stripe: sims.stripe.url, twilio: sims.twilio.url, resend: sims.resend.url }, {
    KEYBRAKE_MAX_BODY_BYTES: String(MAX_BODY),
    KEYBRAKE_UPSTREAM_TIMEOUT: '1s',
    KEYBRAKE_REQUEST_TIMEOUT: '2s',
  });
});

afterAll(async () => {
  await dp?.stop();
  await sims?.stop();
  await cp?.stop();
});

/** Every string a response could leak the real credentials through. */
function secretsIn(text: string): string[] {
  const forms = [sims.secrets.stripeSecretKey, sims.secrets.twilioAuthToken, sims.secrets.resendApiKey, 'CANARY'];
  return forms.filter((form) => text.includes(form));
}

describe('stripe-node through bare /v1', () => {
  it('creates a customer, a confirmed PaymentIntent and a charge with the real secret swapped in', async () => {
    sims.stripe.wiretap.clear();
    const stripe = stripeThrough(dp.url, keys.stripe);
    const customer = await stripe.customers.create({ email: 'a@example.com', metadata: { run: 'metaflow/1' } });
    const intent = await stripe.paymentIntents.create({ amount: 2999, currency: 'usd', customer: customer.id, confirm: true });
    const charge = await stripe.charges.create({ amount: 2999, currency: 'usd', customer: customer.id, description: 'Subscription 2026-07' });
    expect(customer.id).toMatch(/^cus_/);
    expect(intent.latest_charge).toMatch(/^ch_/);
    expect(charge).toMatchObject({ amount: 2999, paid: true });
    expect(charge.lastResponse.requestId).toMatch(/^req_/);

    const requests = sims.stripe.wiretap.requests();
    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /v1/customers', 'POST /v1/payment_intents', 'POST /v1/charges']);
    for (const request of requests) {
      expect(headerValue(request, 'authorization')).toBe(`Bearer ${sims.secrets.stripeSecretKey}`);
      expect(headerValue(request, 'stripe-version')).toBe(Stripe.API_VERSION);
      expect(headerValue(request, 'idempotency-key')).toMatch(/^stripe-node-retry-/);
    }
    expect(requests[0]!.body.toString()).toContain('metadata[run]=metaflow%2F1');
  });

  it('replays an idempotent retry instead of charging twice', async () => {
    sims.stripe.wiretap.clear();
    const stripe = stripeThrough(dp.url, keys.stripe);
    const customer = await stripe.customers.create({});
    sims.stripe.wiretap.clear();
    const first = await stripe.charges.create({ amount: 2999, currency: 'usd', customer: customer.id }, { idempotencyKey: 'cus_A-2999-2026-07' });
    const second = await stripe.charges.create({ amount: 2999, currency: 'usd', customer: customer.id }, { idempotencyKey: 'cus_A-2999-2026-07' });
    expect(second.id).toBe(first.id);
    expect(second.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(sims.stripe.wiretap.requests().map((r) => headerValue(r, 'idempotency-key'))).toEqual(['cus_A-2999-2026-07', 'cus_A-2999-2026-07']);
  });

  it('raises PermissionError for an endpoint off the allowlist, and nothing reaches Stripe', async () => {
    sims.stripe.wiretap.clear();
    const stripe = stripeThrough(dp.url, keys.stripe, { maxNetworkRetries: 2 });
    const error = await stripe.refunds.create({ charge: 'ch_1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Stripe.errors.StripePermissionError);
    expect((error as Stripe.errors.StripeError).code).toBe('endpoint_not_allowed');
    expect((error as Stripe.errors.StripeError).headers?.['keybrake-error']).toBe('endpoint_not_allowed');
    expect(sims.stripe.wiretap.count).toBe(0);
  });

  it('raises AuthenticationError for revoked, unknown and real keys', async () => {
    sims.stripe.wiretap.clear();
    for (const [key, code] of [[keys.revoked, 'vault_key_revoked'], ['kbv_unknown', 'vault_key_invalid'], [sims.secrets.stripeSecretKey, 'vault_key_invalid']] as const) {
      const error = await stripeThrough(dp.url, key).charges.create({ amount: 1, currency: 'usd' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
      expect((error as Stripe.errors.StripeError).code).toBe(code);
    }
    expect(sims.stripe.wiretap.count).toBe(0);
  });

  it('refuses a key once it expires', async () => {
    const { issued } = await cp.client.issueKey({ spec: spec('stripe', ['POST /v1/charges'], { expiresInSeconds: 2 }) });
    const stripe = stripeThrough(dp.url, issued!.vaultKey);
    await stripe.charges.create({ amount: 100, currency: 'usd', source: 'tok_visa' });
    await new Promise((r) => setTimeout(r, 2100));
    const error = await stripe.charges.create({ amount: 100, currency: 'usd', source: 'tok_visa' }).catch((e: unknown) => e);
    expect((error as Stripe.errors.StripeError).code).toBe('vault_key_expired');
  });
});

describe('stripe-python style base URL /stripe/ and curl-style Basic auth', () => {
  it('accepts /stripe//v1/… and the key as Basic user', async () => {
    sims.stripe.wiretap.clear();
    const basic = Buffer.from(`${keys.stripe}:`).toString('base64');
    const answer = await rawRequest(dp.port, `POST /stripe//v1/charges HTTP/1.1\nHost: x\nAuthorization: Basic ${basic}\nContent-Type: application/x-www-form-urlencoded\nContent-Length: 36\nConnection: close\n\n`, 'amount=100&currency=usd&source=tok_1');
    expect(answer.status).toBe(200);
    expect(sims.stripe.wiretap.last()?.url).toBe('/v1/charges');
  });
});

describe('twilio-node with a custom httpClient', () => {
  it('sends a message with the real account SID in path and auth', async () => {
    sims.twilio.wiretap.clear();
    const client = twilioThrough(dp.url, keys.twilio);
    const message = await client.messages.create({ to: '+15005550006', from: '+15005550001', body: 'Your order shipped' });
    expect(message.sid).toMatch(/^SM[0-9a-f]{32}$/);
    expect(message.numSegments).toBe('1');
    const request = sims.twilio.wiretap.last()!;
    expect(request.url).toBe(`/2010-04-01/Accounts/${sims.secrets.twilioAccountSid}/Messages.json`);
    expect(headerValue(request, 'authorization')).toBe(`Basic ${Buffer.from(`${sims.secrets.twilioAccountSid}:${sims.secrets.twilioAuthToken}`).toString('base64')}`);
  });

  it('raises RestException for a call off the allowlist', async () => {
    const error = await twilioThrough(dp.url, keys.twilio).calls.create({ to: '+15005550006', from: '+15005550001', url: 'https://example.com/twiml' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 403, code: 20403 });
    // The refusal names the path as the caller sent it, not with the real account SID swapped in.
    expect((error as Error).message).toMatch(/Calls\.json is not on vault key/);
    expect((error as Error).message).not.toContain(sims.secrets.twilioAccountSid);
  });

  it('never returns the auth token, even when Twilio does', async () => {
    const client = twilioThrough(dp.url, keys.twilio);
    const account = await client.api.v2010.accounts(sims.secrets.twilioAccountSid).fetch();
    expect(JSON.stringify(account.toJSON())).not.toContain(sims.secrets.twilioAuthToken);
  });
});

describe('resend-node with baseUrl', () => {
  it('sends an email and a batch', async () => {
    sims.resend.wiretap.clear();
    const resend = resendThrough(dp.url, keys.resend);
    const sent = await resend.emails.send({ from: 'a@example.com', to: 'b@example.com', subject: 'hi', html: '<p>hi</p>' });
    expect(sent.error).toBeNull();
    expect(sent.data?.id).toBeTruthy();
    const batch = await resend.batch.send([
      { from: 'a@example.com', to: 'c@example.com', subject: '1', html: 'x' },
      { from: 'a@example.com', to: 'd@example.com', subject: '2', html: 'y' },
    ]);
    expect(batch.data?.data).toHaveLength(2);
    expect(headerValue(sims.resend.wiretap.last()!, 'x-batch-validation')).toBe('strict');
    expect(headerValue(sims.resend.wiretap.last()!, 'authorization')).toBe(`Bearer ${sims.secrets.resendApiKey}`);
  });

  it('returns {error} with a name for a refused key, without throwing', async () => {
    const result = await resendThrough(dp.url, keys.stripe).emails.send({ from: 'a@example.com', to: 'b@example.com', subject: 'x', html: 'x' });
    expect(result.data).toBeNull();
    expect(result.error).toMatchObject({ name: 'invalid_api_key' });
    expect(result.error?.message).toMatch(/^vault_key_invalid: /);
  });
});

describe('what is refused never reaches the vendor', () => {
  const head = (target: string, extra = '') =>
    `POST ${target} HTTP/1.1\nHost: x\nAuthorization: Bearer ${keys.stripe}\nContent-Type: application/x-www-form-urlencoded\nContent-Length: 9\n${extra}Connection: close\n\n`;

  it.each([
    ['percent-encoded slash', '/v1/charges%2F..%2Frefunds'],
    ['percent-encoded dot segment', '/v1/%2e%2e/v1/refunds'],
    ['dot segment', '/v1/customers/../refunds'],
    ['empty segment', '/v1//charges'],
    ['trailing slash', '/v1/charges/'],
    ['backslash', '/v1/charges\\..\\refunds'],
    ['matrix parameter', '/v1/charges;x=1'],
    ['absolute-form target', 'http://api.stripe.com/v1/charges'],
    ['prefix with two extra slashes', '/stripe///v1/charges'],
    ['method override in the query', '/v1/charges?_method=DELETE'],
    ['bad percent-encoding in the query', '/v1/charges?x=%G1'],
  ])('%s', async (_name, target) => {
    sims.stripe.wiretap.clear();
    const answer = await rawRequest(dp.port, head(target), 'amount=10');
    expect(answer.status).toBe(400);
    expect(answer.headers['keybrake-error']).toBe('request_malformed');
    expect(JSON.parse(answer.body)).toMatchObject({ error: { type: 'invalid_request_error', code: 'request_malformed' } });
    expect(sims.stripe.wiretap.count).toBe(0);
  });

  it('non-ASCII in the path', async () => {
    sims.stripe.wiretap.clear();
    const answer = await rawRequest(dp.port, head('/v1/ch\u00e4rges'), 'amount=10');
    expect(answer.status).toBe(400);
    expect(sims.stripe.wiretap.count).toBe(0);
  });

  it.each([
    ['X-HTTP-Method-Override', 'X-HTTP-Method-Override: DELETE\n', 400, 'request_malformed'],
    ['X-Method-Override', 'X-Method-Override: GET\n', 400, 'request_malformed'],
    ['Stripe-Account', 'Stripe-Account: acct_123\n', 403, 'endpoint_not_allowed'],
    ['Stripe-Context', 'Stripe-Context: ctx_123\n', 403, 'endpoint_not_allowed'],
  ])('%s header', async (_name, extra, status, code) => {
    sims.stripe.wiretap.clear();
    const answer = await rawRequest(dp.port, head('/v1/charges', extra), 'amount=10');
    expect(answer.status).toBe(status);
    expect(answer.headers['keybrake-error']).toBe(code);
    expect(sims.stripe.wiretap.count).toBe(0);
  });

  it('hop-by-hop, Connection-named and proxy headers are stripped; the client credential is replaced', async () => {
    sims.stripe.wiretap.clear();
    const body = 'amount=10&currency=usd&source=tok_1';
    const extra = 'Keep-Alive: timeout=5\nX-Private-Hop: 1\nProxy-Authorization: Basic eA==\nTE: trailers\nX-Forwarded-For: 10.0.0.1\nIdempotency-Key: keep-Me_exactly 1\n';
    const answer = await rawRequest(
      dp.port,
      head('/v1/charges', extra).replace('Content-Length: 9', `Content-Length: ${body.length}`).replace('Connection: close', 'Connection: close, X-Private-Hop'),
      body,
    );
    expect(answer.status).toBe(200);
    const request = sims.stripe.wiretap.last()!;
    for (const name of ['keep-alive', 'x-private-hop', 'proxy-authorization', 'te', 'x-forwarded-for']) {
      expect(headerValue(request, name), name).toBeUndefined();
    }
    // undici speaks keep-alive to the vendor on its own; the caller's Connection never travels.
    expect(headerValue(request, 'connection')).not.toMatch(/private|close/i);
    expect(headerValue(request, 'idempotency-key')).toBe('keep-Me_exactly 1');
    expect(headerValue(request, 'authorization')).toBe(`Bearer ${sims.secrets.stripeSecretKey}`);
  });
});

describe('the real secret never leaves', () => {
  it('is scrubbed from a vendor error that echoes request headers, body and headers alike', async () => {
    const answer = await rawRequest(dp.port, `POST /v1/test_helpers/echo_headers HTTP/1.1\nHost: x\nAuthorization: Bearer ${keys.echo}\nContent-Length: 0\nConnection: close\n\n`);
    expect(answer.status).toBe(400);
    expect(sims.stripe.wiretap.last()?.response?.body.toString()).toContain(sims.secrets.stripeSecretKey);
    expect(secretsIn(answer.raw)).toEqual([]);
    expect(answer.raw).toContain('[redacted by keybrake]');
  });

  it('appears in no response of this whole suite’s kinds: success, denial, vendor error', async () => {
    const answers = await Promise.all([
      rawRequest(dp.port, `GET /v1/charges/ch_missing HTTP/1.1\nHost: x\nAuthorization: Bearer ${keys.stripe}\nConnection: close\n\n`),
      rawRequest(dp.port, `POST /v1/refunds HTTP/1.1\nHost: x\nAuthorization: Bearer ${keys.stripe}\nContent-Length: 0\nConnection: close\n\n`),
      rawRequest(dp.port, `POST /v1/customers HTTP/1.1\nHost: x\nAuthorization: Bearer ${keys.stripe}\nContent-Length: 0\nConnection: close\n\n`),
    ]);
    expect(answers.map((a) => a.status)).toEqual([404, 403, 200]);
    for (const answer of answers) expect(secretsIn(answer.raw)).toEqual([]);
  });
});

describe('limits', () => {
  it('413 for a body over the limit, before forwarding', async () => {
    sims.stripe.wiretap.clear();
    const body = 'a='.padEnd(MAX_BODY + 10, 'x');
    const answer = await rawRequest(dp.port, `POST /v1/charges HTTP/1.1\nHost: x\nAuthorization: Bearer ${keys.stripe}\nContent-Length: ${body.length}\nConnection: close\n\n`, body);
    expect(answer.status).toBe(413);
    expect(answer.headers['keybrake-error']).toBe('payload_too_large');
    expect(sims.stripe.wiretap.count).toBe(0);
  });

  it('431 for too many headers or too large headers', async () => {
    const many = Array.from({ length: 120 }, (_, i) => `X-H${i}: v\n`).join('');
    const tooMany = await rawRequest(dp.port, `GET /v1/charges/ch_1 HTTP/1.1\nHost: x\nAuthorization: Bearer ${keys.stripe}\n${many}Connection: close\n\n`);
    expect(tooMany.status).toBe(431);
    const tooLarge = await rawRequest(dp.port, `GET /v1/charges/ch_1 HTTP/1.1\nHost: x\nX-Big: ${'b'.repeat(20_000)}\nConnection: close\n\n`);
    expect(tooLarge.status).toBe(431);
    expect(tooLarge.headers['keybrake-error']).toBe('headers_too_large');
  });

  it('408 for a request that never finishes arriving', async () => {
    const answer = await rawRequest(dp.port, `POST /v1/charges HTTP/1.1\nHost: x\nAuthorization: Bearer ${keys.stripe}\nContent-Length: 100\n\n`, 'amount=1', 8000);
    expect(answer.status).toBe(408);
  });

  it('504 when Stripe does not answer in time, 502 when it cannot be reached', async () => {
    sims.stripe.setLatency(2500);
    const slow = await stripeThrough(dp.url, keys.stripe).customers.create({}).catch((e: unknown) => e);
    sims.stripe.setLatency(0);
    expect(slow).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect((slow as Stripe.errors.StripeError).statusCode).toBe(504);
    expect((slow as Stripe.errors.StripeError).code).toBe('upstream_timeout');
    sims.stripe.failNext({ dropConnection: true });
    const dropped = await rawRequest(dp.port, `POST /v1/customers HTTP/1.1\nHost: x\nAuthorization: Bearer ${keys.stripe}\nContent-Length: 0\nConnection: close\n\n`);
    expect(dropped.status).toBe(502);
    expect(dropped.headers['keybrake-error']).toBe('upstream_unreachable');
  });

  it('returns an upstream redirect instead of following it', async () => {
    sims.stripe.failNext({ status: 302, headers: { location: 'http://127.0.0.1:9/elsewhere' } });
    sims.stripe.wiretap.clear();
    const answer = await rawRequest(dp.port, `POST /v1/customers HTTP/1.1\nHost: x\nAuthorization: Bearer ${keys.stripe}\nContent-Length: 0\nConnection: close\n\n`);
    expect(answer.status).toBe(302);
    expect(answer.headers['location']).toBe('http://127.0.0.1:9/elsewhere');
    expect(sims.stripe.wiretap.count).toBe(1);
  });
});

describe('policy changes reach the data plane', () => {
  it('a revocation is enforced within a fraction of a second', async () => {
    const { issued } = await cp.client.issueKey({ spec: spec('stripe', ['POST /v1/customers']) });
    const stripe = stripeThrough(dp.url, issued!.vaultKey);
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline) {
      const ok = await stripe.customers.create({}).then(() => true, () => false);
      if (ok) break;
    }
    await cp.client.revokeKey({ id: issued!.key!.id });
    const revokedAt = Date.now();
    let code: string | undefined;
    while (Date.now() - revokedAt < 2000) {
      code = await stripe.customers.create({}).then(() => undefined, (e: Stripe.errors.StripeError) => e.code);
      if (code === 'vault_key_revoked') break;
    }
    expect(code).toBe('vault_key_revoked');
    expect(Date.now() - revokedAt).toBeLessThan(1000);
  });
});
