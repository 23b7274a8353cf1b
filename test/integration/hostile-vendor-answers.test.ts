/**
 * What a vendor (or something pretending to be one) answers, and what a caller sends beside the
 * money, through a real data plane in front of a scripted upstream: the real secret never
 * leaves in any encoding the client would decode (gzip the proxy did not ask for, JSON escapes,
 * base64, percent-encoding); an answer the proxy cannot read is withheld and the call counts;
 * an encoded or oversized request body is refused before anything is forwarded; what node's
 * own HTTP parser refuses is counted.
 */
import { brotliCompressSync, gzipSync } from 'node:zlib';

import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTestStack, startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { startTestDataPlane, type TestDataPlane } from '../support/data-plane.js';
import { startHostileVendor, type HostileVendor } from '../support/hostile-vendor.js';
import { rawRequest } from '../support/raw-http.js';
import { stripeThrough } from '../support/sdk-clients.js';

const SECRET = `sk_test_${'4eC39HqLyjWDarjtT1zdp7dc'}Canary${Date.now()}`;
let cp: TestControlPlane;
let vendor: HostileVendor;
let dp: TestDataPlane;
let vaultKey = '';
let keyId = '';

beforeAll(async () => {
  const stack = await createTestStack();
  cp = await startTestControlPlane(stack);
  vendor = await startHostileVendor();
  await cp.client.setVendorCredential({ vendor: 'stripe', secret: SECRET, accountSid: '' });
  const { issued } = await cp.client.issueKey({
    spec: {
      vendor: 'stripe', label: 'hostile/answers', allowedEndpoints: ['POST /v1/customers', 'GET /v1/customers/*', 'POST /v1/charges'], dailyCapMicros: 0,
      budgetMicros: 100_000_000, expiresInSeconds: 3600, perCallEstimateMicros: 0,
    },
  });
  vaultKey = issued!.vaultKey;
  keyId = issued!.key!.id;
  dp = await startTestDataPlane(stack, cp.grpcAddress, { stripe: vendor.url });
});

afterAll(async () => {
  await dp?.stop();
  await vendor?.stop();
  await cp?.stop();
});

const customer = (extra: Record<string, unknown> = {}) => ({ id: 'cus_hostile', object: 'customer', ...extra });
const b64 = (text: string) => Buffer.from(text).toString('base64');
const unicodeEscaped = (text: string) => [...text].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
const percentEncoded = (text: string) => [...text].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`).join('');

/** The raw answer of one customers.create through the data plane. */
async function createCustomer(): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const answer = await rawRequest(
    dp.port,
    `POST /v1/customers HTTP/1.1\nHost: x\nAuthorization: Bearer ${vaultKey}\nContent-Type: application/x-www-form-urlencoded\nContent-Length: 0\nConnection: close\n\n`,
  );
  return { status: answer.status, headers: answer.headers, body: answer.body };
}

function expectNoSecret(answer: { headers: Record<string, string>; body: string }): void {
  const everything = `${JSON.stringify(answer.headers)}\n${answer.body}`;
  for (const form of [SECRET, b64(`${SECRET}:`), b64(`x${SECRET}`).slice(4, 40), unicodeEscaped(SECRET), percentEncoded(SECRET), SECRET.toUpperCase()]) {
    expect(everything).not.toContain(form);
  }
  expect(everything).not.toContain('Canary');
}

describe('the real secret in an answer', () => {
  it.each([
    ['gzip the proxy did not ask for', { headers: { 'content-encoding': 'gzip' }, body: gzipSync(JSON.stringify(customer({ echoed: SECRET }))) }],
    ['brotli', { headers: { 'content-encoding': 'br' }, body: brotliCompressSync(JSON.stringify(customer({ echoed: SECRET }))) }],
    ['\\u escapes in JSON', { body: `{"id":"cus_hostile","object":"customer","echoed":"${unicodeEscaped(SECRET)}"}` }],
    ['\\u escapes for one character', { body: `{"id":"cus_hostile","object":"customer","echoed":"${SECRET.replace('_', '\\u005f')}"}` }],
    ['base64 in a header (echoed Basic auth)', { headers: { 'www-authenticate': `Basic ${b64(`${SECRET}:`)}` }, body: customer() }],
    ['base64 inside a longer blob', { body: customer({ blob: b64(`prefix-${SECRET}-suffix`) }) }],
    ['percent-encoding in a URL', { headers: { location: `https://example.com/?k=${percentEncoded(SECRET)}` }, body: customer() }],
  ])('is redacted when it comes as %s', async (_name, answer) => {
    vendor.script(answer);
    const reply = await createCustomer();
    expect(reply.status).toBe(200);
    expect(reply.headers['content-encoding']).toBeUndefined();
    expectNoSecret(reply);
    expect(JSON.parse(reply.body)).toMatchObject({ id: 'cus_hostile' });
  });

  it('withholds an answer it cannot decode, and the call counts as made', async () => {
    vendor.script({ headers: { 'content-encoding': 'zstd' }, body: Buffer.from(`(zstd bytes) ${SECRET}`) });
    const reply = await createCustomer();
    expect(reply.status).toBe(502);
    expect(reply.headers['keybrake-error']).toBe('upstream_answer_withheld');
    expectNoSecret(reply);
    const entry = await waitForAudit((e) => e.reason === 'upstream_answer_withheld');
    expect(entry).toMatchObject({ decision: 'allowed', status: 502 });
  });

  it('lets stripe-node read a gzip answer as usual, settled from what it says', async () => {
    vendor.script({ headers: { 'content-encoding': 'gzip' }, body: gzipSync(JSON.stringify(customer({ id: 'cus_gzipped' }))) });
    const created = await stripeThrough(dp.url, vaultKey).customers.create({});
    expect(created.id).toBe('cus_gzipped');
    expect((await waitForAudit((e) => e.vendor_object_id === 'cus_gzipped')).decision).toBe('allowed');
  });
});

describe('what a caller sends beside the money', () => {
  it('refuses an encoded request body, which would be priced as other bytes than the vendor reads', async () => {
    const before = vendor.requests.length;
    const body = gzipSync('amount=100000&currency=usd');
    const answer = await rawRequest(
      dp.port,
      `POST /v1/charges HTTP/1.1\nHost: x\nAuthorization: Bearer ${vaultKey}\nContent-Type: application/x-www-form-urlencoded\nContent-Encoding: gzip\nContent-Length: ${body.length}\nConnection: close\n\n`,
      body.toString('latin1'),
    );
    expect(answer.status).toBe(400);
    expect(answer.headers['keybrake-error']).toBe('request_malformed');
    expect(vendor.requests.length).toBe(before);
  });

  it('refuses a Stripe body larger than any Stripe call needs (256 KiB) before reading it all', async () => {
    const before = vendor.requests.length;
    const error = await stripeThrough(dp.url, vaultKey)
      .customers.create({ description: 'x'.repeat(300 * 1024) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Stripe.errors.StripeError);
    expect((error as Stripe.errors.StripeError).statusCode).toBe(413);
    expect((error as Stripe.errors.StripeError).code).toBe('payload_too_large');
    expect(vendor.requests.length).toBe(before);
  });

  it('counts requests node’s parser refuses on /metrics', async () => {
    const answer = await rawRequest(dp.port, 'GARBAGE / HTTP/1.1\nHost: x\n\n');
    expect(answer.status).toBe(400);
    const metrics = await (await fetch(`${dp.url}/metrics`)).text();
    expect(metrics).toMatch(/^keybrake_proxy_client_errors_total\{code="HPE_[A-Z_]+"\} [1-9]/m);
  });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- audit entries are read as JSON
async function waitForAudit(match: (entry: any) => boolean): Promise<any> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { body } = await cp.http('GET', `/audit?key_id=${keyId}&limit=1000`);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const found = (body.entries as any[]).find(match);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error('the audit record did not arrive');
    await new Promise((r) => setTimeout(r, 100));
  }
}
