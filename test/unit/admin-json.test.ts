import { describe, expect, it } from 'vitest';

import { parseJsonObject, parseKeySpecJson, parseListKeysQuery } from '../../control-plane/admin-json.js';
import { compileKeySpec } from '../../control-plane/key-spec.js';

const seedBody = {
  vendor: 'stripe',
  daily_usd_cap: 300.0,
  allowed_endpoints: ['POST /v1/payment_intents'],
  expires_in: '4h',
  agent_run_label: 'metaflow/1234',
};

describe('POST /vault/keys body', () => {
  it('reads the first seed document body', () => {
    expect(parseKeySpecJson(seedBody)).toEqual({
      vendor: 'stripe',
      label: 'metaflow/1234',
      allowedEndpoints: ['POST /v1/payment_intents'],
      dailyCapMicros: 300_000_000,
      budgetMicros: 0,
      expiresInSeconds: 14_400,
      perCallEstimateMicros: 0,
    });
  });

  it('reads the second seed document body (/admin/vault_keys)', () => {
    const spec = parseKeySpecJson({
      label: 'metaflow-2026-07-cus_aaa',
      vendor: 'stripe',
      allowed_endpoints: ['POST /v1/charges'],
      daily_usd_cap: 10.99,
      expires_in_seconds: 7200,
    });
    expect(spec).toMatchObject({ label: 'metaflow-2026-07-cus_aaa', dailyCapMicros: 10_990_000, expiresInSeconds: 7200 });
  });

  it('accepts integer micros and a lifetime budget', () => {
    expect(parseKeySpecJson({ vendor: 'resend', allowed_endpoints: ['POST /emails'], daily_cap_micros: 5, budget_usd: '1.5' })).toMatchObject({
      dailyCapMicros: 5,
      budgetMicros: 1_500_000,
      expiresInSeconds: 0,
    });
  });

  const { vendor: _v, ...noVendor } = seedBody;
  const { allowed_endpoints: _e, ...noEndpoints } = seedBody;
  const { daily_usd_cap: _c, ...noCap } = seedBody;
  const { expires_in: _x, ...noExpiry } = seedBody;
  const { agent_run_label: _l, ...noLabel } = seedBody;
  it.each<[Record<string, unknown>, string, RegExp]>([
    [{ ...seedBody, vendor: 'strype' }, 'vendor', /unknown vendor "strype"/],
    [{ ...seedBody, vendor: 7 }, 'vendor', /must be a string/],
    [noVendor, 'vendor', /is required/],
    [{ ...seedBody, daily_usd_cap: 0 }, 'daily_usd_cap', /greater than 0/],
    [{ ...seedBody, daily_usd_cap: -5 }, 'daily_usd_cap', /greater than 0/],
    [{ ...seedBody, daily_usd_cap: 'lots' }, 'daily_usd_cap', /must be a number/],
    [{ ...seedBody, daily_cap_micros: 1 }, 'daily_usd_cap', /not both/],
    [{ ...noCap, daily_cap_micros: 1.5 }, 'daily_cap_micros', /whole number/],
    [{ ...seedBody, budget_usd: 0 }, 'budget_usd', /greater than 0/],
    [{ ...seedBody, expires_in: '4 hours' }, 'expires_in', /cannot parse duration/],
    [{ ...seedBody, expires_in: 14400 }, 'expires_in', /must be a string/],
    [{ ...noExpiry, expires_in_seconds: '7200' }, 'expires_in_seconds', /whole number of seconds/],
    [{ ...noExpiry, expires_in_seconds: 0 }, 'expires_in_seconds', /greater than 0/],
    [{ ...seedBody, expires_in_seconds: 60 }, 'expires_in', /not both/],
    [{ ...seedBody, allowed_endpoints: 'POST /v1/charges' }, 'allowed_endpoints', /array of strings/],
    [noEndpoints, 'allowed_endpoints', /is required/],
    [{ ...noLabel, label: 42 }, 'label', /must be a string/],
    [{ ...seedBody, daily_cap: 300 }, 'daily_cap', /unknown field/],
  ])('refuses %j naming the field', (body, field, message) => {
    const parse = () => parseKeySpecJson(body);
    expect(parse).toThrow(new RegExp(`^\\[invalid_argument\\] ${field}: `));
    expect(parse).toThrow(message);
  });

  it('refuses what is not a JSON object with malformed_request', () => {
    expect(() => parseJsonObject('{nope')).toThrow(/^\[malformed_request\] body: not valid JSON/);
    expect(() => parseJsonObject('[1]')).toThrow(/must be a JSON object, got an array/);
    expect(() => parseJsonObject('')).toThrow(/not valid JSON/);
  });
});

describe('compileKeySpec', () => {
  const base = { vendor: 'stripe', label: '', allowedEndpoints: ['POST /v1/charges'], dailyCapMicros: 1, budgetMicros: 0, expiresInSeconds: 0, perCallEstimateMicros: 0 };

  it('defaults the TTL to 24 hours and de-duplicates endpoints', () => {
    expect(compileKeySpec({ ...base, allowedEndpoints: ['POST /v1/charges', 'post /v1/charges'] })).toMatchObject({
      ttlSeconds: 86_400,
      allowedEndpoints: ['POST /v1/charges'],
    });
  });

  it.each<[Partial<typeof base>, RegExp]>([
    [{ dailyCapMicros: 0 }, /^\[invalid_argument\] daily_usd_cap: a cap is required/],
    [{ label: 'x'.repeat(201) }, /^\[invalid_argument\] label: longer than 200 characters/],
    [{ label: 'a\nb' }, /label: must not contain control characters/],
    [{ allowedEndpoints: [] }, /allowed_endpoints: at least one endpoint/],
    [{ allowedEndpoints: ['POST /v1/charges', 'GET /v1//x'] }, /allowed_endpoints\[1\]: /],
    [{ expiresInSeconds: 91 * 86_400 }, /expires_in_seconds: at most 7776000/],
    [{ dailyCapMicros: -1 }, /daily_cap_micros: must be a non-negative/],
  ])('refuses %j', (change, message) => {
    expect(() => compileKeySpec({ ...base, ...change })).toThrow(message);
  });

  it('names the spec in a batch', () => {
    expect(() => compileKeySpec({ ...base, vendor: 'x' }, 'specs[7].')).toThrow(/^\[invalid_argument\] specs\[7\]\.vendor: /);
  });
});

describe('GET /vault/keys query', () => {
  it('reads filters', () => {
    expect(parseListKeysQuery(new URLSearchParams('label=metaflow/1&vendor=stripe&status=revoked&limit=5'))).toMatchObject({
      label: 'metaflow/1',
      vendor: 'stripe',
      status: 3,
      pageSize: 5,
    });
  });
  it('refuses an unknown status or limit', () => {
    expect(() => parseListKeysQuery(new URLSearchParams('status=dead'))).toThrow(/status: must be active, expired or revoked/);
    expect(() => parseListKeysQuery(new URLSearchParams('limit=ten'))).toThrow(/limit: must be a whole number/);
  });
});
