import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { canonicaliseTarget } from '../../data-plane/canonical-request.js';
import { ProxyError } from '../../data-plane/proxy-error.js';

describe('canonicaliseTarget', () => {
  it.each([
    ['/stripe/v1/charges', 'stripe', ['v1', 'charges'], ''],
    ['/v1/charges', null, ['v1', 'charges'], ''],
    ['/v2/core/events', null, ['v2', 'core', 'events'], ''],
    ['/stripe//v1/charges', 'stripe', ['v1', 'charges'], ''],
    ['/v1/charges?limit=3&expand[0]=customer', null, ['v1', 'charges'], 'limit=3&expand[0]=customer'],
    ['/v1/customers?email=a%40b.com', null, ['v1', 'customers'], 'email=a%40b.com'],
    ['/twilio/2010-04-01/Accounts/AC123/Messages.json', 'twilio', ['2010-04-01', 'Accounts', 'AC123', 'Messages.json'], ''],
    ['/resend/emails/batch', 'resend', ['emails', 'batch'], ''],
  ])('accepts %s', (target, vendor, segments, query) => {
    expect(canonicaliseTarget(target)).toEqual({ prefixVendor: vendor, segments, query });
  });

  // Every bypass class: each is refused before anything is looked up or forwarded.
  it.each([
    ['percent-encoded slash', '/v1/charges%2F..%2Frefunds'],
    ['percent-encoded dot segment', '/v1/%2e%2e/refunds'],
    ['percent-encoded letter', '/v1/ch%61rges'],
    ['dot segment', '/v1/../v1/refunds'],
    ['single-dot segment', '/v1/./charges'],
    ['empty segment', '/v1//charges'],
    ['trailing slash', '/v1/charges/'],
    ['two extra slashes after a prefix', '/stripe///v1/charges'],
    ['backslash', '/v1\\refunds'],
    ['matrix parameter', '/v1/charges;jsessionid=1'],
    ['non-ASCII', '/v1/chärges'],
    ['space', '/v1/char ges'],
    ['absolute-form target', 'http://api.stripe.com/v1/charges'],
    ['authority-form target', 'api.stripe.com:443'],
    ['asterisk-form target', '*'],
    ['fragment', '/v1/charges#x'],
    ['unknown route', '/paypal/v1/charges'],
    ['vendor root only', '/stripe'],
    ['vendor root with slash', '/stripe/'],
    ['query with raw non-ASCII', '/v1/charges?q=é'],
    ['query with a bad percent-encoding', '/v1/charges?q=%zz'],
    ['query with a quote', '/v1/charges?q="x"'],
    ['method override in the query', '/v1/charges?_method=DELETE'],
    ['method override later in the query', '/v1/charges?a=1&_METHOD=DELETE'],
    ['wildcard in the path', '/v1/*'],
  ])('refuses a %s: %s', (_name, target) => {
    expect(() => canonicaliseTarget(target)).toThrow(/^\[request_malformed\] /);
  });

  it('never yields a segment that is empty, a dot segment or has characters outside the canonical set', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (tail) => {
        let result;
        try {
          result = canonicaliseTarget(`/v1/${tail}`);
        } catch (error) {
          // A refusal is a ProxyError with a code; anything else (a TypeError) is a bug.
          if (error instanceof ProxyError && error.code === 'request_malformed') return;
          throw error;
        }
        for (const segment of result.segments) {
          expect(segment).toMatch(/^[A-Za-z0-9._~:@-]+$/);
          expect(segment === '.' || segment === '..').toBe(false);
        }
        // What is forwarded is exactly what came in.
        const rebuilt = `/${result.segments.join('/')}${result.query === '' ? '' : `?${result.query}`}`;
        expect(`/v1/${tail}`.startsWith(rebuilt.split('?')[0]!)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
