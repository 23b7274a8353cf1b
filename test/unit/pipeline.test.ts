import { randomBytes, createHmac } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { generateSecret, generateTaggedVaultKey, vaultKeyTagKey } from '../../core/secret-format.js';
import type { KeyPolicy } from '../../gen/keybrake/v1/dataplane.js';
import {
  authenticate,
  authorise,
  checkGuardedHeaders,
  checkRequestHeaders,
  downstreamHeaders,
  requireFreshPolicy,
  upstreamHeaders,
} from '../../data-plane/pipeline.js';
import { PolicyCache } from '../../data-plane/policy-cache.js';
import { scrubBody, scrubHeaderValue, secretFormsFor } from '../../data-plane/scrub.js';
import { VENDOR_ADAPTERS } from '../../data-plane/vendors/index.js';
import { ProxyError } from '../../data-plane/proxy-error.js';

const pepper = randomBytes(32);
const NOW = 1_800_000_000_000;

/** A cache holding these keys, as a lookup answered by a control plane leaves it; that control plane knows no other key. */
function cacheWith(keys: { vaultKey: string; policy: Partial<KeyPolicy> }[]): PolicyCache {
  const cache: PolicyCache = new PolicyCache({
    sendLookup: (unknownKeyHashes) => {
      setImmediate(() => cache.applyLookupResult({ keys: [], unknownKeyHashes: [...unknownKeyHashes], pricedIntents: [], failedKeyHashes: [] }, 0));
      return true;
    },
  });
  cache.welcome(pepper, 0);
  cache.applySnapshot({ keys: [], secrets: [{ vendor: 'stripe', secret: 'sk_live_real', accountSid: '' }], revision: 7 }, 0);
  cache.applyLookupResult(
    {
      keys: keys.map(({ vaultKey, policy }, i) => ({
        id: `vk_${String(i).padStart(20, '0')}`,
        keyHash: createHmac('sha256', pepper).update(vaultKey).digest('hex'),
        vendor: 'stripe',
        label: '',
        allowedEndpoints: ['POST /v1/charges', 'POST /v1/payment_intents/*/capture'],
        dailyCapMicros: 1,
        budgetMicros: 0,
        expiresAtUnixMs: NOW + 60_000,
        revoked: false,
        perCallEstimateMicros: 0,
        revision: 7,
        ...policy,
      })),
      unknownKeyHashes: [],
      pricedIntents: [],
      failedKeyHashes: [],
    },
    0,
  );
  return cache;
}

/** authenticate for a key held here: synchronous. */
function held(cache: PolicyCache, adapter: (typeof VENDOR_ADAPTERS)['stripe'], headers: Record<string, string>) {
  const key = authenticate(cache, adapter, headers, 0, NOW);
  if (key instanceof Promise) throw new Error('expected a held key, not a lookup');
  return key;
}

describe('authenticate', () => {
  const good = generateSecret('vaultKey');
  const revoked = generateSecret('vaultKey');
  const expired = generateSecret('vaultKey');
  const twilio = generateSecret('vaultKey');
  const cache = cacheWith([
    { vaultKey: good, policy: {} },
    { vaultKey: revoked, policy: { revoked: true } },
    { vaultKey: expired, policy: { expiresAtUnixMs: NOW } },
    { vaultKey: twilio, policy: { vendor: 'twilio', allowedEndpoints: ['POST /2010-04-01/Accounts/*/Messages.json'] } },
  ]);
  const stripe = VENDOR_ADAPTERS.stripe;

  it('finds a key by Bearer or Basic user', () => {
    expect(held(cache, stripe, { authorization: `Bearer ${good}` }).policy.id).toBe('vk_00000000000000000000');
    expect(held(cache, stripe, { authorization: `Basic ${Buffer.from(`${good}:`).toString('base64')}` }).vendor).toBe('stripe');
  });

  it.each<[string, Record<string, string>, string]>([
    ['no key', {}, 'vault_key_invalid'],
    ['a real Stripe key', { authorization: 'Bearer sk_live_123' }, 'vault_key_invalid'],
    ['a mistyped vault key', { authorization: `Bearer ${good.slice(0, -1)}x` }, 'vault_key_invalid'],
    ['an unknown vault key (looked up)', { authorization: `Bearer ${generateTaggedVaultKey(vaultKeyTagKey(pepper))}` }, 'vault_key_invalid'],
    ['a forged key: right checksum, wrong tag', { authorization: `Bearer ${generateTaggedVaultKey(vaultKeyTagKey(randomBytes(32)))}` }, 'vault_key_invalid'],
    ['a revoked key', { authorization: `Bearer ${revoked}` }, 'vault_key_revoked'],
    ['an expired key', { authorization: `Bearer ${expired}` }, 'vault_key_expired'],
    ['another vendor’s key', { authorization: `Bearer ${twilio}` }, 'vault_key_invalid'],
  ])('refuses %s', async (_name, headers, code) => {
    await expect(Promise.resolve().then(() => authenticate(cache, stripe, headers, 0, NOW))).rejects.toThrow(expect.objectContaining({ code }));
  });

  it('finds a Twilio key in the Basic password slot', () => {
    const header = { authorization: `Basic ${Buffer.from(`AC${'f'.repeat(32)}:${twilio}`).toString('base64')}` };
    expect(held(cache, VENDOR_ADAPTERS.twilio, header).vendor).toBe('twilio');
  });
});

describe('authorise', () => {
  const key = generateSecret('vaultKey');
  const cached = cacheWith([{ vaultKey: key, policy: {} }]).peek(key)!;
  it('allows what the allowlist names and nothing else', () => {
    expect(() => authorise(cached, 'POST', ['v1', 'charges'])).not.toThrow();
    expect(() => authorise(cached, 'POST', ['v1', 'payment_intents', 'pi_1', 'capture'])).not.toThrow();
    for (const [method, segments] of [
      ['GET', ['v1', 'charges']],
      ['POST', ['v1', 'refunds']],
      ['POST', ['v1', 'charges', 'ch_1', 'capture']],
      ['POST', ['v1', 'payment_intents', 'capture']],
    ] as const) {
      expect(() => authorise(cached, method, segments)).toThrow(expect.objectContaining({ code: 'endpoint_not_allowed' }));
    }
  });
});

describe('request checks', () => {
  it.each(['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override'])('refuses %s', (name) => {
    expect(() => checkRequestHeaders([name, 'DELETE'], { [name.toLowerCase()]: 'DELETE' })).toThrow(expect.objectContaining({ code: 'request_malformed' }));
  });
  it('refuses more than 100 headers and ambiguous framing', () => {
    const many = Array.from({ length: 101 }, (_, i) => [`x-h${i}`, 'v']).flat();
    expect(() => checkRequestHeaders(many, {})).toThrow(expect.objectContaining({ code: 'headers_too_large' }));
    expect(() => checkRequestHeaders([], { 'transfer-encoding': 'chunked', 'content-length': '3' })).toThrow(expect.objectContaining({ code: 'request_malformed' }));
  });
  it('refuses Stripe-Account and Stripe-Context', () => {
    expect(() => checkGuardedHeaders(VENDOR_ADAPTERS.stripe, { 'stripe-account': 'acct_1' })).toThrow(expect.objectContaining({ code: 'endpoint_not_allowed' }));
    expect(() => checkGuardedHeaders(VENDOR_ADAPTERS.stripe, { 'stripe-context': 'x' })).toThrow(expect.objectContaining({ code: 'endpoint_not_allowed' }));
  });
  it('fails closed when the control plane has been silent longer than the lease TTL', () => {
    const cache = new PolicyCache();
    expect(() => requireFreshPolicy(cache, 0, 30_000)).toThrow(expect.objectContaining({ code: 'control_plane_unavailable' }));
    cache.welcome(pepper, 1000);
    expect(() => requireFreshPolicy(cache, 31_000, 30_000)).not.toThrow();
    expect(() => requireFreshPolicy(cache, 31_001, 30_000)).toThrow(/not heard from a control plane for 30 s/);
  });
});

describe('upstream headers', () => {
  const credential = { secret: 'sk_live_real', accountSid: '' };
  const raw = [
    'Host', 'proxy.local', 'Authorization', 'Bearer kbv_x', 'Stripe-Version', '2024-06-20', 'Idempotency-Key', 'Abc-123_ key',
    'Connection', 'keep-alive, X-Secret-Hop', 'X-Secret-Hop', 'yes', 'Keep-Alive', 'timeout=5', 'Proxy-Authorization', 'Basic x',
    'Transfer-Encoding', 'chunked', 'TE', 'trailers', 'Upgrade', 'h2c', 'X-Forwarded-For', '1.2.3.4', 'Accept-Encoding', 'gzip',
    'Cookie', 'a=b', 'Content-Type', 'application/x-www-form-urlencoded', 'Keybrake-Debug', '1',
  ];
  const headers = { connection: 'keep-alive, X-Secret-Hop' };
  const out = upstreamHeaders(raw, headers, VENDOR_ADAPTERS.stripe, credential, 12);
  const pairs = Array.from({ length: out.length / 2 }, (_, i): [string, string] => [out[2 * i]!, out[2 * i + 1]!]);
  const names = pairs.map(([n]) => n.toLowerCase());

  it('keeps Stripe-Version and Idempotency-Key byte for byte', () => {
    expect(pairs).toContainEqual(['Stripe-Version', '2024-06-20']);
    expect(pairs).toContainEqual(['Idempotency-Key', 'Abc-123_ key']);
    expect(pairs).toContainEqual(['Content-Type', 'application/x-www-form-urlencoded']);
  });
  it('drops hop-by-hop, Connection-named, proxy, forwarding, cookie and client credential headers', () => {
    for (const name of ['host', 'connection', 'x-secret-hop', 'keep-alive', 'proxy-authorization', 'transfer-encoding', 'te', 'upgrade', 'x-forwarded-for', 'cookie', 'keybrake-debug']) {
      expect(names).not.toContain(name);
    }
  });
  it('injects the real credential once, after stripping, and asks for an identity encoding', () => {
    expect(pairs.filter(([n]) => n.toLowerCase() === 'authorization')).toEqual([['authorization', 'Bearer sk_live_real']]);
    expect(pairs).toContainEqual(['accept-encoding', 'identity']);
    expect(pairs).toContainEqual(['content-length', '12']);
  });
  it('drops hop-by-hop headers from responses and scrubs secrets from the rest', () => {
    const down = downstreamHeaders(
      { 'request-id': 'req_1', connection: 'close, x-hop', 'x-hop': '1', 'transfer-encoding': 'chunked', 'content-length': '3', 'x-echo': 'Bearer sk_live_real' },
      (text) => scrubHeaderValue(text, secretFormsFor(['sk_live_real'])) ?? 'withheld',
    );
    expect(down).toEqual(['request-id', 'req_1', 'x-echo', 'Bearer [redacted by keybrake]']);
  });
  it('keeps every value of a repeated response header, each scrubbed', () => {
    const down = downstreamHeaders({ 'set-cookie': ['a=1', 'b=sk_live_real'] }, (text) => scrubHeaderValue(text, secretFormsFor(['sk_live_real'])) ?? 'withheld');
    expect(down).toEqual(['set-cookie', 'a=1', 'set-cookie', 'b=[redacted by keybrake]']);
  });
});

describe('scrubbing', () => {
  it('replaces every occurrence of every form', () => {
    const body = Buffer.from('{"auth":"Bearer sk_live_real","again":"sk_live_real","b64":"c2tfbGl2ZV9yZWFsOg=="}');
    const clean = scrubBody(body, secretFormsFor(['sk_live_real']))!.toString();
    expect(clean).not.toContain('sk_live_real');
    expect(clean).not.toContain('c2tfbGl2ZV9yZWFsOg==');
    expect(clean.match(/redacted by keybrake/g)).toHaveLength(3);
  });
});

describe('denials in the vendor’s shape', () => {
  const error = new ProxyError('endpoint_not_allowed', 'POST /v1/refunds is not on the allowlist');
  it('Stripe: {error: {type, code, message}} and no retry', () => {
    expect(VENDOR_ADAPTERS.stripe.denial(error)).toEqual({
      body: { error: { type: 'invalid_request_error', code: 'endpoint_not_allowed', message: 'POST /v1/refunds is not on the allowlist' } },
      headers: { 'stripe-should-retry': 'false' },
    });
    expect(VENDOR_ADAPTERS.stripe.denial(new ProxyError('vault_key_revoked', 'x')).body).toMatchObject({ error: { type: 'authentication_error' } });
    expect(VENDOR_ADAPTERS.stripe.denial(new ProxyError('spend_cap_exceeded', 'x')).body).toMatchObject({ error: { type: 'rate_limit_error' } });
  });
  it('Twilio: top-level {code, message, more_info, status}', () => {
    expect(VENDOR_ADAPTERS.twilio.denial(error).body).toEqual({
      code: 20403,
      message: 'endpoint_not_allowed: POST /v1/refunds is not on the allowlist',
      more_info: 'https://www.twilio.com/docs/errors/20403',
      status: 403,
    });
  });
  it('Resend: {statusCode, message, name}', () => {
    expect(VENDOR_ADAPTERS.resend.denial(error).body).toEqual({ statusCode: 403, message: 'endpoint_not_allowed: POST /v1/refunds is not on the allowlist', name: 'restricted_api_key' });
  });
  it('Twilio: the real account SID goes into the path', () => {
    const fake = `AC${'0'.repeat(32)}`;
    const real = `AC${'f'.repeat(32)}`;
    const credential = { secret: 't', accountSid: real };
    expect(VENDOR_ADAPTERS.twilio.forwardedSegments(['2010-04-01', 'Accounts', fake, 'Messages.json'], credential)).toEqual(['2010-04-01', 'Accounts', real, 'Messages.json']);
    expect(VENDOR_ADAPTERS.twilio.forwardedSegments(['2010-04-01', 'Accounts', `${fake}.json`], credential)).toEqual(['2010-04-01', 'Accounts', `${real}.json`]);
    expect(() => VENDOR_ADAPTERS.twilio.forwardedSegments(['2010-04-01', 'Accounts', 'ACfake', 'Messages.json'], credential)).toThrow(/account SID/);
  });
});
