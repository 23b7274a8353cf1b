import { describe, expect, it } from 'vitest';

import {
  parseAuditQuery,
  parseCreateTokenJson,
  parseInstant,
  parseJsonObject,
  parseKeySpecJson,
  parseListKeysQuery,
  parseVendorCredentialJson,
  readQuery,
} from '../../control-plane/admin-json.js';
import { compileKeySpec } from '../../control-plane/key-spec.js';
import { checkText, checkTime, fieldName } from '../../control-plane/request-bounds.js';
import { StrictJsonError, parseStrictJsonText } from '../../core/cost/strict-json.js';
import { OperatorError } from '../../core/operator-error.js';

/** The error `fn` throws (an OperatorError). */
function thrown(fn: () => unknown): OperatorError {
  try {
    fn();
  } catch (error) {
    if (error instanceof OperatorError) return error;
    throw error;
  }
  throw new Error('expected a throw');
}

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

  it('refuses a member given twice instead of reading the last (a $1 budget is not a $1,000,000,000 one)', () => {
    const body = '{"vendor":"stripe","allowed_endpoints":["POST /v1/charges"],"budget_usd":1,"budget_usd":1e9}';
    expect(() => parseJsonObject(body)).toThrow(/^\[malformed_request\] body: the member "budget_usd" is given more than once$/);
    expect(() => parseJsonObject('{"a":{"b":1,"b":2}}')).toThrow(/^\[malformed_request\] body: the member "b" is given more than once/);
    // Escapes spell the same key: still twice.
    expect(() => parseJsonObject('{"secret":"a","s\\u0065cret":"b"}')).toThrow(/the member "secret" is given more than once/);
    const long = thrown(() => parseJsonObject(`{"${'k'.repeat(800_000)}":1,"${'k'.repeat(800_000)}":2}`));
    expect(long.rawMessage.length).toBeLessThan(200);
    expect(long.rawMessage).toContain('(800000 characters)');
  });

  it('reads __proto__ as an unknown member, never as a prototype', () => {
    const body = parseJsonObject('{"__proto__":{"budget_usd":5},"vendor":"stripe"}');
    expect(Object.getPrototypeOf(body)).toBeNull();
    expect(Object.keys(body)).toEqual(['__proto__', 'vendor']);
    expect(({} as Record<string, unknown>)['budget_usd']).toBeUndefined();
    expect(() => parseKeySpecJson(body)).toThrow(/^\[invalid_argument\] __proto__: unknown field/);
  });

  it('bounds nesting', () => {
    expect(() => parseJsonObject(`{"a":${'['.repeat(100_000)}`)).toThrow(/^\[malformed_request\] body: not valid JSON \(nested deeper than 64 levels/);
  });

  it('names an unknown member without echoing it whole', () => {
    const error = thrown(() => parseKeySpecJson({ ...seedBody, ['x'.repeat(800_000)]: 1 }));
    expect(error.code).toBe('invalid_argument');
    expect(error.rawMessage).toMatch(/^"x{30,}…" \(800000 characters\): unknown field/);
    expect(error.rawMessage.length).toBeLessThan(400);
    expect(thrown(() => parseKeySpecJson({ ...seedBody, 'a\nb: c': 1 })).rawMessage).toMatch(/^"a\\nb: c": unknown field/);
  });

  it('quotes and cuts a money value it refuses', () => {
    for (const value of [`${'9'.repeat(400_000)}e5`, `-${'1'.repeat(400_000)}`, `1.${'1'.repeat(400_000)}`, '9'.repeat(400_000)]) {
      const error = thrown(() => parseKeySpecJson({ ...seedBody, daily_usd_cap: value }));
      expect(error.rawMessage).toMatch(/^daily_usd_cap: /);
      expect(error.rawMessage.length).toBeLessThan(200);
    }
  });

  it('reads the credential and token bodies, refusing unknown members', () => {
    expect(parseVendorCredentialJson({ secret: 'sk_test_1' })).toEqual({ secret: 'sk_test_1', accountSid: '' });
    expect(() => parseVendorCredentialJson({ secret: 'x', acount_sid: 'AC' })).toThrow(/^\[invalid_argument\] acount_sid: unknown field \(expected secret, account_sid\)/);
    expect(parseCreateTokenJson({ role: 'auditor', name: 'n' })).toEqual({ role: 3, name: 'n' });
    expect(() => parseCreateTokenJson({ role: 'auditor', rights: 'all' })).toThrow(/^\[invalid_argument\] rights: unknown field \(expected role, name\)/);
  });
});

describe('parseStrictJsonText', () => {
  it('throws a plain StrictJsonError naming what it read', () => {
    const error = (() => {
      try {
        parseStrictJsonText('{"a":1,"a":2}', 'local.json');
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(error).toBeInstanceOf(StrictJsonError);
    expect(error).toMatchObject({ message: 'local.json gives the property "a" more than once', repeatedKey: 'a' });
    expect(() => parseStrictJsonText('[1,]', 'x')).toThrow(/^x is not valid JSON: unexpected "]" at offset 3$/);
    expect(parseStrictJsonText('{"a":[1,{"b":null}]}', 'x')).toEqual({ a: [1, { b: null }] });
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
    for (const limit of ['0', '1001', '99999999999999999999', '1e3', '-1', '1.0']) {
      expect(() => parseListKeysQuery(new URLSearchParams({ limit }))).toThrow(/^\[invalid_argument\] limit: must be a whole number from 1 to 1000/);
    }
  });

  it('refuses a parameter given twice or one it does not take', () => {
    expect(() => parseListKeysQuery(new URLSearchParams('label=a&label=b'))).toThrow(/^\[invalid_argument\] label: given more than once$/);
    expect(() => parseListKeysQuery(new URLSearchParams('lable=a'))).toThrow(/^\[invalid_argument\] lable: unknown parameter \(expected label, label_prefix, vendor, status, limit, cursor\)/);
    expect(() => parseListKeysQuery(new URLSearchParams('key_id=vk_1'))).toThrow(/key_id: unknown parameter/);
    const long = thrown(() => parseListKeysQuery(new URLSearchParams({ ['p'.repeat(100_000)]: '1' })));
    expect(long.rawMessage).toMatch(/^"p+…" \(100000 characters\): unknown parameter/);
    expect(long.rawMessage.length).toBeLessThan(300);
    expect(() => readQuery(new URLSearchParams('x=1'), [])).toThrow(/^\[invalid_argument\] x: unknown parameter \(this route takes none\)/);
    expect(readQuery(new URLSearchParams(''), [])).toEqual(new Map());
  });
});

describe('GET /audit query', () => {
  it('reads every filter', () => {
    expect(
      parseAuditQuery(new URLSearchParams('label=l&key_id=vk_1&idempotency_key=i&vendor=stripe&vendor_object_id=ch_1&decision=denied&since=0&until=2026-11-23T10:00:00Z&limit=5&cursor=c')),
    ).toEqual({
      label: 'l', keyId: 'vk_1', idempotencyKey: 'i', vendor: 'stripe', vendorObjectId: 'ch_1', decision: 'denied',
      since: new Date(0), until: new Date('2026-11-23T10:00:00Z'), limit: 5, cursor: 'c',
    });
    expect(parseAuditQuery(new URLSearchParams('label=&since=&limit='))).toMatchObject({ label: '', since: undefined, limit: 0 });
  });

  it.each<[string, RegExp]>([
    ['until=99999999999999999999', /^until: must be a time from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z, got "99999999999999999999"/],
    ['until=253402300800', /^until: must be a time from 1970/],
    ['since=1969-12-31T23:59:59Z', /^since: must be a time from 1970/],
    ['since=1970-01-01T00:30:00%2B01:00', /^since: must be a time from 1970/],
    ['since=0000-01-01', /^since: must be a time from 1970/],
    ['since=%2B010000-01-01', /^since: must be an ISO 8601 time/],
    ['since=2026-02-31', /^since: is not a valid time: "2026-02-31"/],
    ['since=2026-01-01T24:00:00Z', /^since: is not a valid time/],
    ['since=foo 2020', /^since: must be an ISO 8601 time/],
    ['since=1 2 3', /^since: must be an ISO 8601 time/],
    ['since=yesterday', /^since: must be an ISO 8601 time/],
    ['limit=0', /^limit: must be a whole number from 1 to 1000/],
    ['limit=1001', /^limit: /],
    ['decision=maybe', /^decision: must be allowed or denied/],
    ['label=a&label=b', /^label: given more than once/],
    ['until=1&until=2', /^until: given more than once/],
    ['labels=a', /^labels: unknown parameter/],
    ['page_token=x', /^page_token: unknown parameter/],
  ])('refuses %s naming the parameter', (query, message) => {
    const error = thrown(() => parseAuditQuery(new URLSearchParams(query)));
    expect(error.code).toBe('invalid_argument');
    expect(error.rawMessage).toMatch(message);
  });

  it('reads ISO 8601 times exactly, a time without an offset as UTC', () => {
    const ms = (text: string) => parseInstant(text, 'since')?.getTime();
    expect(ms('2026-11-23')).toBe(Date.UTC(2026, 10, 23));
    expect(ms('2026-11-23T10:00')).toBe(Date.UTC(2026, 10, 23, 10));
    expect(ms('2026-11-23 10:00:00.123456789')).toBe(Date.UTC(2026, 10, 23, 10, 0, 0, 123));
    expect(ms('2026-11-23T10:00:00+01:30')).toBe(Date.UTC(2026, 10, 23, 8, 30));
    expect(ms('2026-11-23T10:00:00-0100')).toBe(Date.UTC(2026, 10, 23, 11));
    expect(ms('2024-02-29T00:00:00Z')).toBe(Date.UTC(2024, 1, 29));
    expect(ms('9999-12-31T23:59:59.999Z')).toBe(Date.UTC(9999, 11, 31, 23, 59, 59, 999));
    expect(ms('253402300799')).toBe(253_402_300_799_000);
    expect(ms('1970-01-01T00:00:00Z')).toBe(0);
    expect(() => ms('2025-02-29')).toThrow(/is not a valid time/);
  });
});

describe('request bounds (both transports)', () => {
  it('refuses text PostgreSQL cannot store or compare as sent', () => {
    expect(() => checkText('a\u0000b', 'label', 200)).toThrow(/^\[invalid_argument\] label: must not contain NUL/);
    expect(() => checkText('a\ud800b', 'label', 200)).toThrow(/^\[invalid_argument\] label: must be Unicode text/);
    expect(() => checkText('\udc00', 'label', 200)).toThrow(/lone surrogate/);
    expect(() => checkText('x'.repeat(201), 'label', 200)).toThrow(/^\[invalid_argument\] label: longer than 200 characters \(201\)/);
    expect(() => checkText('a\tb', 'name', 200, { controls: false })).toThrow(/^\[invalid_argument\] name: must not contain control characters/);
    expect(checkText('😀 \ufffd a\tb', 'label', 200)).toBe('😀 \ufffd a\tb');
  });

  it('takes times from 1970 to 9999', () => {
    expect(checkTime(undefined, 'until')).toBeUndefined();
    expect(checkTime(new Date(0), 'since')).toBe(0);
    for (const date of [new Date(Number.NaN), new Date(-1), new Date(Date.UTC(10000, 0, 1))]) {
      expect(() => checkTime(date, 'until')).toThrow(/^\[invalid_argument\] until: must be a time from 1970/);
    }
  });

  it('shows a name as it is only when it looks like one', () => {
    expect(fieldName('daily_cap')).toBe('daily_cap');
    expect(fieldName('specs[3].label')).toBe('specs[3].label');
    expect(fieldName('')).toBe('""');
    expect(fieldName('a b')).toBe('"a b"');
    expect(fieldName('\u0000')).toBe('"\\u0000"');
  });

  it('refuses a key label with a lone surrogate', () => {
    const base = { vendor: 'stripe', label: 'ok\ud800', allowedEndpoints: ['POST /v1/charges'], dailyCapMicros: 1, budgetMicros: 0, expiresInSeconds: 0, perCallEstimateMicros: 0 };
    expect(() => compileKeySpec(base)).toThrow(/^\[invalid_argument\] label: must be Unicode text/);
  });
});
