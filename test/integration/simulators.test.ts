/**
 * The vendor simulators, driven directly by the official SDKs (stripe-node, twilio-node,
 * resend-node) from node_modules: if the SDKs accept the simulators' answers, tests of the proxy
 * against them are tests against what the real vendors would send. Also pins SDK behaviour the
 * proxy relies on (headers sent, retries, error mapping).
 */
import { Resend } from 'resend';
import Stripe from 'stripe';
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient.js';
import type * as TwilioHttpResponse from 'twilio/lib/http/response.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  canarySecrets,
  countSegments,
  headerValue,
  maskStripeKey,
  parseStripeForm,
  startAllSimulators,
  startStripeSimulator,
  STRIPE_ECHO_HEADERS_PATH,
} from '../simulators/index.js';
import type { AllSimulators, TappedRequest } from '../simulators/index.js';

let sims: AllSimulators;

beforeAll(async () => {
  sims = await startAllSimulators();
});
afterAll(async () => {
  await sims?.stop();
});

function stripeClient(key = sims.secrets.stripeSecretKey, extra: Partial<Stripe.StripeConfig> = {}): Stripe {
  return new Stripe(key, { host: '127.0.0.1', port: sims.stripe.port, protocol: 'http', maxNetworkRetries: 0, ...extra });
}

/**
 * twilio-node has no base-URL option: requests always go to https://api.twilio.com (edge and
 * region only change the host name). A RequestClient subclass that rewrites `opts.uri` is the
 * supported way to send them elsewhere.
 */
class RedirectingRequestClient extends twilio.RequestClient {
  constructor(private readonly baseUrl: string) {
    super();
  }

  override request<TData>(opts: RequestClient.RequestOptions<TData>): Promise<TwilioHttpResponse.default<TData>> {
    return super.request({ ...opts, uri: opts.uri.replace(/^https:\/\/api\.twilio\.com(?::443)?/, this.baseUrl) });
  }
}

function twilioClient(authToken = sims.secrets.twilioAuthToken): twilio.Twilio {
  return twilio(sims.secrets.twilioAccountSid, authToken, { httpClient: new RedirectingRequestClient(sims.twilio.url) });
}

function resendClient(key = sims.secrets.resendApiKey): Resend {
  return new Resend(key, { baseUrl: sims.resend.url });
}

function bodyText(request: TappedRequest | undefined): string {
  return request?.body.toString('utf8') ?? '';
}

/** Resolves with the error a promise rejects with, failing the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

describe('stripe simulator, driven by stripe-node', () => {
  it('creates a customer, a confirmed PaymentIntent and a charge with real-looking objects', async () => {
    const stripe = stripeClient();
    sims.stripe.wiretap.clear();

    const customer = await stripe.customers.create({ email: 'ada@example.com', metadata: { run: 'sim-1' } });
    expect(customer.id).toMatch(/^cus_[0-9A-Za-z]{14}$/);
    expect(customer).toMatchObject({ object: 'customer', email: 'ada@example.com', metadata: { run: 'sim-1' }, livemode: false });

    const intent = await stripe.paymentIntents.create({
      amount: 500,
      currency: 'USD',
      customer: customer.id,
      confirm: true,
      payment_method: 'pm_card_visa',
      allowed_payment_method_types: ['card'],
      metadata: { order: '42' },
    });
    expect(intent.id).toMatch(/^pi_[0-9A-Za-z]{24}$/);
    expect(intent).toMatchObject({ object: 'payment_intent', amount: 500, currency: 'usd', status: 'succeeded', amount_received: 500, customer: customer.id });
    expect(intent.latest_charge).toMatch(/^ch_/);
    expect(intent.lastResponse.requestId).toMatch(/^req_[0-9A-Za-z]{14}$/);

    const charge = await stripe.charges.create({ amount: 1200, currency: 'usd', customer: customer.id, description: 'sim' });
    expect(charge).toMatchObject({ object: 'charge', amount: 1200, paid: true, status: 'succeeded', captured: true, description: 'sim' });
    expect(charge.id).toMatch(/^ch_/);

    const fetched = await stripe.paymentIntents.retrieve(intent.id);
    expect(fetched.id).toBe(intent.id);
    expect(sims.stripe.objects.get(intent.id)).toMatchObject({ status: 'succeeded' });

    // What went over the wire: literal-bracket form bodies, Bearer auth, Stripe-Version.
    const create = sims.stripe.wiretap.find((r) => r.method === 'POST' && r.path === '/v1/payment_intents');
    expect(headerValue(create!, 'content-type')).toBe('application/x-www-form-urlencoded');
    expect(bodyText(create)).toContain('allowed_payment_method_types[0]=card');
    expect(bodyText(create)).toContain('metadata[order]=42');
    expect(parseStripeForm(bodyText(create))).toMatchObject({ amount: '500', currency: 'USD', confirm: 'true', allowed_payment_method_types: ['card'], metadata: { order: '42' } });
    expect(headerValue(create!, 'authorization')).toBe(`Bearer ${sims.secrets.stripeSecretKey}`);
    expect(headerValue(create!, 'stripe-version')).toBe(Stripe.API_VERSION);
    expect(intent.lastResponse.headers['stripe-version']).toBe(Stripe.API_VERSION);
    expect(headerValue(create!, 'user-agent')).toMatch(/^Stripe\/v1 NodeBindings\//);
    expect(headerValue(create!, 'x-stripe-client-user-agent')).toBeDefined();
    // The GET carries no body and no Idempotency-Key; every POST gets one from the SDK itself.
    const get = sims.stripe.wiretap.find((r) => r.method === 'GET');
    expect(get?.body.length).toBe(0);
    expect(headerValue(get!, 'idempotency-key')).toBeUndefined();
    for (const post of sims.stripe.wiretap.filter((r) => r.method === 'POST')) {
      expect(headerValue(post, 'idempotency-key')).toMatch(/^stripe-node-retry-[0-9a-f-]{36}$/);
    }
    // Telemetry of the previous call (its request id) rides along on the next one.
    expect(headerValue(get!, 'x-stripe-client-telemetry')).toContain('"request_id":"req_');
  });

  it('replays a retried charge with the same Idempotency-Key and refuses the key for other parameters', async () => {
    const stripe = stripeClient();
    const idempotencyKey = `charge-${Date.now()}`;
    const params = { amount: 700, currency: 'usd', source: 'tok_visa', metadata: { attempt: 'a' } };
    sims.stripe.wiretap.clear();
    const chargesBefore = [...sims.stripe.objects.values()].filter((o) => o.object === 'charge').length;

    const first = await stripe.charges.create(params, { idempotencyKey });
    const second = await stripe.charges.create(params, { idempotencyKey });
    expect(second.id).toBe(first.id);
    expect([...sims.stripe.objects.values()].filter((o) => o.object === 'charge')).toHaveLength(chargesBefore + 1);

    const [tapFirst, tapSecond] = sims.stripe.wiretap.requests();
    expect(sims.stripe.wiretap.count).toBe(2);
    expect(headerValue(tapFirst!, 'idempotency-key')).toBe(idempotencyKey);
    expect(tapFirst!.response?.headers['idempotent-replayed']).toBeUndefined();
    expect(tapSecond!.response?.headers['idempotent-replayed']).toBe('true');
    expect(second.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(second.lastResponse.headers['original-request']).toBe(first.lastResponse.requestId);
    expect(second.lastResponse.requestId).not.toBe(first.lastResponse.requestId);

    const error = await rejection(stripe.charges.create({ ...params, amount: 701 }, { idempotencyKey }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(error).toMatchObject({ statusCode: 400, type: 'StripeIdempotencyError', rawType: 'idempotency_error' });
  });

  it('answers a wrong key with 401 StripeAuthenticationError showing only the masked key', async () => {
    const wrongKey = 'sk_test_WRONG_key_for_the_simulator_9876';
    const error = await rejection(stripeClient(wrongKey).customers.create({ email: 'x@example.com' }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    const authError = error as Stripe.errors.StripeAuthenticationError;
    expect(authError.statusCode).toBe(401);
    expect(authError.rawType).toBe('invalid_request_error');
    expect(authError.message).toBe(`Invalid API Key provided: ${maskStripeKey(wrongKey)}`);
    expect(authError.message).toMatch(/^Invalid API Key provided: sk_test_\*+9876$/);
    expect(authError.message).not.toContain('WRONG');
  });

  it('maps missing parameters, unknown ids and declines to the SDK error classes', async () => {
    const stripe = stripeClient();
    // @ts-expect-error currency is required: the point is to send a request without it.
    const missing = await rejection(stripe.paymentIntents.create({ amount: 500 }));
    expect(missing).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(missing).toMatchObject({ statusCode: 400, code: 'parameter_missing', param: 'currency', message: 'Missing required param: currency.' });

    const unknown = await rejection(stripe.paymentIntents.retrieve('pi_doesnotexist'));
    expect(unknown).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(unknown).toMatchObject({ statusCode: 404, code: 'resource_missing', message: "No such payment_intent: 'pi_doesnotexist'" });

    const declined = await rejection(
      stripe.paymentIntents.create({ amount: 900, currency: 'usd', confirm: true, payment_method: 'pm_card_chargeDeclined' }),
    );
    expect(declined).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(declined).toMatchObject({ statusCode: 402, code: 'card_declined', decline_code: 'generic_decline' });
  });

  it('authorises, captures part, refunds, transfers and pays out', async () => {
    const stripe = stripeClient();
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'eur', capture_method: 'manual', confirm: true });
    expect(intent).toMatchObject({ status: 'requires_capture', amount_capturable: 1000, amount_received: 0 });

    const updated = await stripe.paymentIntents.incrementAuthorization(intent.id, { amount: 1200 });
    expect(updated).toMatchObject({ amount: 1200, amount_capturable: 1200 });

    const captured = await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 800 });
    expect(captured).toMatchObject({ status: 'succeeded', amount_received: 800, amount_capturable: 0 });

    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 300 });
    expect(refund.id).toMatch(/^re_/);
    expect(refund).toMatchObject({ object: 'refund', amount: 300, status: 'succeeded', charge: captured.latest_charge });
    const rest = await stripe.refunds.create({ payment_intent: intent.id });
    expect(rest.amount).toBe(500);
    const over = await rejection(stripe.refunds.create({ payment_intent: intent.id, amount: 1 }));
    expect(over).toMatchObject({ statusCode: 400, code: 'charge_already_refunded' });

    const transfer = await stripe.transfers.create({ amount: 400, currency: 'usd', destination: 'acct_1SimulatedDest' });
    expect(transfer.id).toMatch(/^tr_/);
    expect(transfer).toMatchObject({ object: 'transfer', amount: 400, destination: 'acct_1SimulatedDest' });
    const payout = await stripe.payouts.create({ amount: 250, currency: 'usd' });
    expect(payout.id).toMatch(/^po_/);
    expect(payout).toMatchObject({ object: 'payout', amount: 250, status: 'pending' });

    const confirmLater = await stripe.paymentIntents.create({ amount: 50, currency: 'jpy' });
    expect(confirmLater).toMatchObject({ status: 'requires_payment_method', latest_charge: null });
    const changed = await stripe.paymentIntents.update(confirmLater.id, { amount: 75, metadata: { k: 'v' } });
    expect(changed).toMatchObject({ amount: 75, metadata: { k: 'v' } });
    const confirmed = await stripe.paymentIntents.confirm(confirmLater.id);
    expect(confirmed).toMatchObject({ status: 'succeeded', amount_received: 75 });
    const frozen = await rejection(stripe.paymentIntents.update(confirmLater.id, { amount: 80 }));
    expect(frozen).toMatchObject({ statusCode: 400, code: 'payment_intent_unexpected_state' });
  });

  it('accepts curl-style Basic auth and answers unknown routes and long keys like Stripe', async () => {
    const basic = Buffer.from(`${sims.secrets.stripeSecretKey}:`).toString('base64');
    const created = await fetch(`${sims.stripe.url}/v1/customers`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'name=Ada&metadata[a]=1&preferred_locales[]=en',
    });
    expect(created.status).toBe(200);
    expect(created.headers.get('request-id')).toMatch(/^req_/);
    expect(created.headers.get('content-type')).toBe('application/json');
    expect(created.headers.get('stripe-version')).toBeNull(); // nothing sent, nothing echoed

    const bearer = { authorization: `Bearer ${sims.secrets.stripeSecretKey}` };
    const unknown = await fetch(`${sims.stripe.url}/v1/nonsense`, { method: 'POST', headers: bearer });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({
      error: { type: 'invalid_request_error', message: expect.stringMatching(/^Unrecognized request URL \(POST: \/v1\/nonsense\)/) },
    });

    const longKey = await fetch(`${sims.stripe.url}/v1/customers`, { method: 'POST', headers: { ...bearer, 'idempotency-key': 'k'.repeat(256) } });
    expect(longKey.status).toBe(400);
    expect(await longKey.json()).toMatchObject({ error: { type: 'invalid_request_error' } });

    const noKey = await fetch(`${sims.stripe.url}/v1/customers`, { method: 'POST' });
    expect(noKey.status).toBe(401);
    expect(noKey.headers.get('www-authenticate')).toBe('Basic realm="Stripe"');
    expect(await noKey.json()).toMatchObject({ error: { type: 'invalid_request_error', message: expect.stringContaining('You did not provide an API key') } });
  });

  it('echoes the received Authorization header from the test hook, like a vendor leaking credentials', async () => {
    const response = await fetch(`${sims.stripe.url}${STRIPE_ECHO_HEADERS_PATH}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sims.secrets.stripeSecretKey}`, 'x-custom': 'yes' },
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('x-echo-authorization')).toBe(`Bearer ${sims.secrets.stripeSecretKey}`);
    const body = (await response.json()) as { error: { message: string; received_headers: Record<string, string> } };
    expect(body.error.message).toContain(`Bearer ${sims.secrets.stripeSecretKey}`);
    expect(body.error.message).toContain('"x-custom":"yes"');
    expect(body.error.received_headers.authorization).toBe(`Bearer ${sims.secrets.stripeSecretKey}`);
  });

  it('answers a duplicate that arrives while the first is in flight with 409', async () => {
    const stripe = stripeClient();
    const idempotencyKey = `concurrent-${Date.now()}`;
    const params = { amount: 300, currency: 'usd', source: 'tok_visa' };
    // Only the first request is held (after its key is reserved); the duplicate is sent once the
    // first has arrived, so the outcome does not depend on timing.
    sims.stripe.failNext({ delayMs: 300 });
    const first = stripe.charges.create(params, { idempotencyKey });
    await sims.stripe.wiretap.waitFor((r) => headerValue(r, 'idempotency-key') === idempotencyKey);
    const conflict = await rejection(stripe.charges.create(params, { idempotencyKey }));
    expect(conflict).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect(conflict).toMatchObject({ statusCode: 409, code: 'idempotency_key_in_use' });
    expect((await first).id).toMatch(/^ch_/);
    // Once the first has finished, the same key replays it.
    const again = await stripe.charges.create(params, { idempotencyKey });
    expect(again.lastResponse.headers['idempotent-replayed']).toBe('true');
  });
});

describe('failure injection and latency (stripe-node)', () => {
  it('fails the next request with the given status, then recovers', async () => {
    const stripe = stripeClient();
    sims.stripe.failNext({ status: 500 });
    const error = await rejection(stripe.customers.create({ name: 'outage' }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect(error).toMatchObject({ statusCode: 500, rawType: 'api_error' });
    expect((await stripe.customers.create({ name: 'after' })).id).toMatch(/^cus_/);
  });

  it('lets stripe-node retry a 503 with the same Idempotency-Key, which then succeeds (nothing stored from the outage)', async () => {
    const stripe = stripeClient(undefined, { maxNetworkRetries: 1 });
    sims.stripe.wiretap.clear();
    sims.stripe.failNext({ status: 503 });
    const customer = await stripe.customers.create({ name: 'retried' });
    expect(customer.id).toMatch(/^cus_/);
    const [failed, retried] = sims.stripe.wiretap.requests();
    expect(sims.stripe.wiretap.count).toBe(2);
    expect(failed!.response?.status).toBe(503);
    expect(retried!.response?.status).toBe(200);
    expect(headerValue(retried!, 'idempotency-key')).toBe(headerValue(failed!, 'idempotency-key'));
    expect(retried!.response?.headers['idempotent-replayed']).toBeUndefined();
  });

  it('drops connections: stripe-node retries a reset once even with maxNetworkRetries 0', async () => {
    const stripe = stripeClient();
    sims.stripe.wiretap.clear();
    sims.stripe.failNext({ dropConnection: true });
    const customer = await stripe.customers.create({ name: 'reset once' });
    expect(customer.id).toMatch(/^cus_/);
    expect(sims.stripe.wiretap.count).toBe(2);
    expect(sims.stripe.wiretap.requests()[0]?.response?.dropped).toBe(true);

    sims.stripe.failNext({ dropConnection: true, times: 2 });
    const error = await rejection(stripe.customers.create({ name: 'reset twice' }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeConnectionError);
  });

  it('delays a response past the client timeout, and adds latency to every request', async () => {
    const impatient = stripeClient(undefined, { timeout: 100 });
    sims.stripe.failNext({ delayMs: 400 });
    const error = await rejection(impatient.customers.create({ name: 'slow' }));
    expect(error).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    expect((error as Error).message).toMatch(/timeout/);

    const stripe = stripeClient();
    sims.stripe.setLatency(120);
    try {
      const started = performance.now();
      await stripe.customers.create({ name: 'latent' });
      expect(performance.now() - started).toBeGreaterThanOrEqual(110);
    } finally {
      sims.stripe.setLatency(0);
    }
  });
});

describe('twilio simulator, driven by twilio-node', () => {
  it('sends an SMS and returns the Message resource as Twilio does', async () => {
    sims.twilio.wiretap.clear();
    const message = await twilioClient().messages.create({ to: '+15558675310', from: '+15017122661', body: 'Hello from the simulator' });
    expect(message.sid).toMatch(/^SM[0-9a-f]{32}$/);
    expect(message).toMatchObject({
      accountSid: sims.secrets.twilioAccountSid,
      to: '+15558675310',
      from: '+15017122661',
      body: 'Hello from the simulator',
      status: 'queued',
      numSegments: '1',
      numMedia: '0',
      price: null,
      priceUnit: 'USD',
      direction: 'outbound-api',
      apiVersion: '2010-04-01',
    });
    expect(message.dateCreated).toBeInstanceOf(Date);
    expect(Number.isNaN(message.dateCreated.getTime())).toBe(false);
    expect(message.uri).toBe(`/2010-04-01/Accounts/${sims.secrets.twilioAccountSid}/Messages/${message.sid}.json`);

    const tapped = sims.twilio.wiretap.last()!;
    expect(tapped.method).toBe('POST');
    expect(tapped.path).toBe(`/2010-04-01/Accounts/${sims.secrets.twilioAccountSid}/Messages.json`);
    expect(headerValue(tapped, 'content-type')).toBe('application/x-www-form-urlencoded');
    const expectedAuth = Buffer.from(`${sims.secrets.twilioAccountSid}:${sims.secrets.twilioAuthToken}`).toString('base64');
    expect(headerValue(tapped, 'authorization')).toBe(`Basic ${expectedAuth}`);
    expect(headerValue(tapped, 'user-agent')).toMatch(/^twilio-node\/6\./);
    expect(new URLSearchParams(bodyText(tapped)).get('Body')).toBe('Hello from the simulator');
    expect(tapped.response?.status).toBe(201);
    expect(tapped.response?.headers['twilio-request-id']).toMatch(/^RQ[0-9a-f]{32}$/);

    const fetched = await twilioClient().messages(message.sid).fetch();
    expect(fetched.sid).toBe(message.sid);
  });

  it('counts segments with the GSM-7 and UCS-2 rules, as a string', async () => {
    const client = twilioClient();
    const cases: [string, string][] = [
      ['a'.repeat(160), '1'],
      ['a'.repeat(161), '2'],
      ['a'.repeat(306), '2'],
      ['a'.repeat(307), '3'],
      ['a'.repeat(159) + '€', '2'], // € is an extension character: two septets
      ['Ж'.repeat(70), '1'],
      ['Ж'.repeat(71), '2'],
      ['Ж'.repeat(134), '2'],
      ['Ж'.repeat(135), '3'],
    ];
    for (const [body, segments] of cases) {
      const message = await client.messages.create({ to: '+15558675310', from: '+15017122661', body });
      expect(message.numSegments, `${body.length} × ${body[0]}`).toBe(segments);
      expect(String(countSegments(body).segments)).toBe(segments);
    }
  });

  it('sends MMS with repeated MediaUrl, via a Messaging Service, and places a call', async () => {
    const client = twilioClient();
    sims.twilio.wiretap.clear();
    const mms = await client.messages.create({
      to: '+15558675310',
      messagingServiceSid: `MG${'0'.repeat(32)}`,
      mediaUrl: ['https://example.com/1.png', 'https://example.com/2.png'],
    });
    expect(mms).toMatchObject({ numMedia: '2', from: null, status: 'accepted' });
    expect(new URLSearchParams(bodyText(sims.twilio.wiretap.last())).getAll('MediaUrl')).toEqual(['https://example.com/1.png', 'https://example.com/2.png']);

    const call = await client.calls.create({ to: '+15558675310', from: '+15017122661', twiml: '<Response><Say>Hi</Say></Response>', timeLimit: 60 });
    expect(call.sid).toMatch(/^CA[0-9a-f]{32}$/);
    expect(call).toMatchObject({ status: 'queued', price: null, direction: 'outbound-api', toFormatted: '(555) 867-5310' });
    const sent = new URLSearchParams(bodyText(sims.twilio.wiretap.last()));
    expect(sent.get('Twiml')).toBe('<Response><Say>Hi</Say></Response>');
    expect(sent.get('TimeLimit')).toBe('60');
  });

  it('answers a wrong token with RestException 20003 / 401', async () => {
    const error = await rejection(twilioClient('0'.repeat(32)).messages.create({ to: '+15558675310', from: '+15017122661', body: 'x' }));
    expect(error).toBeInstanceOf(twilio.RestException);
    expect(error).toMatchObject({ status: 401, code: 20003, moreInfo: 'https://www.twilio.com/docs/errors/20003' });

    // The right token for another account in the path is refused too.
    const otherAccount = twilio(`AC${'1'.repeat(32)}`, sims.secrets.twilioAuthToken, { httpClient: new RedirectingRequestClient(sims.twilio.url) });
    const mismatch = await rejection(otherAccount.messages.create({ to: '+15558675310', from: '+15017122661', body: 'x' }));
    expect(mismatch).toMatchObject({ status: 401, code: 20003 });
    expect(sims.twilio.wiretap.last()?.response?.headers['www-authenticate']).toBe('Basic realm="Twilio API"');
  });

  it('validates like Twilio: the SDK checks To locally, the API answers 21604 / 21602', async () => {
    const before = sims.twilio.wiretap.count;
    // twilio-node throws synchronously (not a rejected promise) for a missing required parameter.
    // @ts-expect-error `to` is required: the SDK refuses before sending anything.
    expect(() => twilioClient().messages.create({ from: '+15017122661', body: 'x' })).toThrow(/params\['to'\]/);
    expect(sims.twilio.wiretap.count).toBe(before);

    const auth = Buffer.from(`${sims.secrets.twilioAccountSid}:${sims.secrets.twilioAuthToken}`).toString('base64');
    const post = (body: string): Promise<Response> =>
      fetch(`${sims.twilio.url}/2010-04-01/Accounts/${sims.secrets.twilioAccountSid}/Messages.json`, {
        method: 'POST',
        headers: { authorization: `Basic ${auth}`, 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
    const noTo = await post('From=%2B15017122661&Body=x');
    expect(noTo.status).toBe(400);
    expect(await noTo.json()).toEqual({ code: 21604, message: "A 'To' phone number is required.", more_info: 'https://www.twilio.com/docs/errors/21604', status: 400 });
    const noBody = await post('From=%2B15017122661&To=%2B15558675310');
    expect(await noBody.json()).toMatchObject({ code: 21602, status: 400 });

    const error = await rejection(twilioClient().messages('SM' + 'f'.repeat(32)).fetch());
    expect(error).toMatchObject({ status: 404, code: 20404 });
  });

  it('injects Twilio-shaped failures', async () => {
    sims.twilio.failNext({ status: 503 });
    const error = await rejection(twilioClient().messages.create({ to: '+15558675310', from: '+15017122661', body: 'x' }));
    expect(error).toBeInstanceOf(twilio.RestException);
    expect(error).toMatchObject({ status: 503, code: 20503 });
  });
});

describe('resend simulator, driven by resend-node', () => {
  it('sends an email and returns { data: { id }, error: null }', async () => {
    sims.resend.wiretap.clear();
    const resend = resendClient();
    const sent = await resend.emails.send({ from: 'Keybrake <ops@example.com>', to: 'ada@example.com', subject: 'Hi', html: '<p>Hi</p>' });
    expect(sent.error).toBeNull();
    expect(sent.data?.id).toMatch(/^[0-9a-f-]{36}$/);

    const tapped = sims.resend.wiretap.last()!;
    expect(tapped).toMatchObject({ method: 'POST', path: '/emails' });
    expect(headerValue(tapped, 'authorization')).toBe(`Bearer ${sims.secrets.resendApiKey}`);
    expect(headerValue(tapped, 'content-type')).toBe('application/json');
    expect(headerValue(tapped, 'user-agent')).toMatch(/^resend-node:6\./);
    expect(JSON.parse(bodyText(tapped))).toMatchObject({ from: 'Keybrake <ops@example.com>', to: 'ada@example.com', subject: 'Hi', html: '<p>Hi</p>' });

    const fetched = await resend.emails.get(sent.data!.id);
    expect(fetched.data).toMatchObject({ object: 'email', id: sent.data!.id, to: ['ada@example.com'], subject: 'Hi' });
    const missing = await resend.emails.get('00000000-0000-4000-8000-000000000000');
    expect(missing.error).toMatchObject({ statusCode: 404, name: 'not_found' });
  });

  it('sends a batch (strict by default, permissive on request)', async () => {
    const resend = resendClient();
    sims.resend.wiretap.clear();
    const email = { from: 'ops@example.com', to: ['a@example.com'], subject: 'Batch', text: 'hello' };
    const strict = await resend.batch.send([email, { ...email, to: ['b@example.com'] }]);
    expect(strict.error).toBeNull();
    expect(strict.data?.data).toHaveLength(2);
    expect(headerValue(sims.resend.wiretap.last()!, 'x-batch-validation')).toBe('strict');

    const invalid = { ...email, from: 'not an address' };
    const refused = await resend.batch.send([email, invalid]);
    expect(refused.data).toBeNull();
    expect(refused.error).toMatchObject({ statusCode: 422, name: 'validation_error' });

    const permissive = await resend.batch.send([email, invalid], { batchValidation: 'permissive' });
    expect(permissive.data?.data).toHaveLength(1);
    expect(permissive.data?.errors).toEqual([{ index: 1, message: expect.stringContaining('`from`') }]);
  });

  it('reports a wrong key as { data: null, error } without throwing', async () => {
    const result = await resendClient('re_wrong_key').emails.send({ from: 'ops@example.com', to: 'a@example.com', subject: 'x', text: 'x' });
    expect(result.data).toBeNull();
    expect(result.error).toEqual({ statusCode: 403, name: 'invalid_api_key', message: 'API key is invalid' });

    const missingKey = await fetch(`${sims.resend.url}/emails`, { method: 'POST', body: '{}' });
    expect(missingKey.status).toBe(401);
    expect(await missingKey.json()).toMatchObject({ statusCode: 401, name: 'missing_api_key' });
  });

  it('refuses an email without `to` with 422 missing_required_field', async () => {
    const response = await fetch(`${sims.resend.url}/emails`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sims.secrets.resendApiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ from: 'ops@example.com', subject: 'x', text: 'x' }),
    });
    expect(response.status).toBe(422);
    expect(await response.json()).toEqual({ statusCode: 422, message: 'Missing `to` field.', name: 'missing_required_field' });
  });

  it('replays an Idempotency-Key for the same payload and refuses it for another', async () => {
    const resend = resendClient();
    const idempotencyKey = `welcome/${Date.now()}`;
    const payload = { from: 'ops@example.com', to: 'a@example.com', subject: 'Once', text: 'only once' };
    sims.resend.wiretap.clear();
    const first = await resend.emails.send(payload, { idempotencyKey });
    const second = await resend.emails.send(payload, { idempotencyKey });
    expect(second.data?.id).toBe(first.data?.id);
    expect(sims.resend.wiretap.count).toBe(2);
    expect(headerValue(sims.resend.wiretap.last()!, 'idempotency-key')).toBe(idempotencyKey);

    const conflict = await resend.emails.send({ ...payload, subject: 'Other' }, { idempotencyKey });
    expect(conflict.error).toMatchObject({ statusCode: 409, name: 'invalid_idempotent_request' });

    const batchKey = `batch/${Date.now()}`;
    const batchFirst = await resend.batch.send([payload], { idempotencyKey: batchKey });
    const batchSecond = await resend.batch.send([payload], { idempotencyKey: batchKey });
    expect(batchSecond.data?.data[0]?.id).toBe(batchFirst.data?.data[0]?.id);
  });

  it('injects failures the SDK returns as errors, with no retry', async () => {
    const resend = resendClient();
    const payload = { from: 'ops@example.com', to: 'a@example.com', subject: 'x', text: 'x' };
    sims.resend.wiretap.clear();
    sims.resend.failNext({ status: 429 });
    const limited = await resend.emails.send(payload);
    expect(limited.error).toMatchObject({ statusCode: 429, name: 'rate_limit_exceeded' });
    expect(limited.headers?.['retry-after']).toBe('1');
    expect(sims.resend.wiretap.count).toBe(1);

    sims.resend.failNext({ dropConnection: true });
    const dropped = await resend.emails.send(payload);
    expect(dropped.error).toMatchObject({ statusCode: null, name: 'application_error' });
    expect(sims.resend.wiretap.count).toBe(2);
  });
});

describe('simulator plumbing', () => {
  it('parses Stripe bracket forms into nested objects and arrays', () => {
    const form = 'line_items[0][price_data][unit_amount]=500&line_items[0][quantity]=2&line_items[1][price]=price_1&metadata[k]=v&expand[]=a&expand[]=b&name=A%20B';
    expect(parseStripeForm(form)).toEqual({
      line_items: [{ price_data: { unit_amount: '500' }, quantity: '2' }, { price: 'price_1' }],
      metadata: { k: 'v' },
      expand: ['a', 'b'],
      name: 'A B',
    });
    expect(parseStripeForm('__proto__[polluted]=1&a[constructor][x]=1')).toEqual({ a: {} });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });


  it('records the raw request target, original header case and the exact body before handling', async () => {
    const before = sims.resend.wiretap.count;
    const body = Buffer.from([0x7b, 0x22, 0xff, 0x22]); // not valid UTF-8 or JSON: kept byte for byte
    const response = await fetch(`${sims.resend.url}/emails/batch?x=1&y=%5B2%5D`, {
      method: 'POST',
      headers: { 'X-Mixed-Case': 'Value', authorization: `Bearer ${sims.secrets.resendApiKey}` },
      body,
    });
    expect(response.status).toBe(400);
    const tapped = sims.resend.wiretap.requests()[before]!;
    expect(tapped).toMatchObject({ method: 'POST', url: '/emails/batch?x=1&y=%5B2%5D', path: '/emails/batch', query: 'x=1&y=%5B2%5D' });
    expect(tapped.rawHeaders).toContain('X-Mixed-Case');
    expect(tapped.headers['x-mixed-case']).toBe('Value');
    expect(tapped.body.equals(body)).toBe(true);
    expect(tapped.receivedAt).toBeLessThanOrEqual(Date.now());
  });

  it('refuses bodies over 10 MiB with 413, keeping the first 10 MiB', async () => {
    const response = await fetch(`${sims.resend.url}/emails`, { method: 'POST', body: Buffer.alloc(10 * 1024 * 1024 + 1, 0x61) });
    expect(response.status).toBe(413);
    const tapped = sims.resend.wiretap.last()!;
    expect(tapped.bodyTruncated).toBe(true);
    expect(tapped.body.length).toBe(10 * 1024 * 1024);
  });

  it('stop() closes kept-alive connections, after which the port refuses', async () => {
    const secrets = canarySecrets();
    const sim = await startStripeSimulator({ secretKey: secrets.stripeSecretKey });
    try {
      const stripe = new Stripe(secrets.stripeSecretKey, { host: '127.0.0.1', port: sim.port, protocol: 'http', maxNetworkRetries: 0 });
      await stripe.customers.create({ name: 'keep-alive' });
      sim.failNext({ delayMs: 5_000 });
      const pending = rejection(stripe.customers.create({ name: 'cut off by stop' }));
      await sim.wiretap.waitFor((r) => parseStripeForm(r.body.toString('utf8')).name === 'cut off by stop', 1_000);
      const started = performance.now();
      await sim.stop();
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(await pending).toBeInstanceOf(Stripe.errors.StripeConnectionError);
      await expect(fetch(`${sim.url}/v1/customers`)).rejects.toThrow();
    } finally {
      await sim.stop();
    }
  });
});
