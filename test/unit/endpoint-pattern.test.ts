import { describe, expect, it } from 'vitest';

import { formatEndpointPattern, matchesEndpoint, parseEndpointPattern } from '../../core/endpoint-pattern.js';
import type { Vendor } from '../../core/vendors.js';

describe('parseEndpointPattern', () => {
  it.each<[Vendor, string, string]>([
    ['stripe', 'POST /v1/payment_intents', 'POST /v1/payment_intents'],
    ['stripe', 'post /v1/payment_intents/*/capture', 'POST /v1/payment_intents/*/capture'],
    ['stripe', 'GET /v1/charges/*', 'GET /v1/charges/*'],
    ['stripe', 'POST /v2/core/events', 'POST /v2/core/events'],
    ['twilio', 'POST /2010-04-01/Accounts/*/Messages.json', 'POST /2010-04-01/Accounts/*/Messages.json'],
    ['resend', 'POST /emails', 'POST /emails'],
    ['resend', 'POST /emails/batch', 'POST /emails/batch'],
  ])('%s accepts %j', (vendor, text, normalised) => {
    expect(formatEndpointPattern(parseEndpointPattern(text, vendor, 'allowed_endpoints[0]'))).toBe(normalised);
  });

  it.each<[Vendor, string, RegExp]>([
    ['stripe', '/v1/charges', /expected "METHOD \/path"/],
    ['stripe', 'POST  /v1/charges', /expected "METHOD \/path"/],
    ['stripe', 'FETCH /v1/charges', /unknown method/],
    ['stripe', 'POST v1/charges', /must start with "\/"/],
    ['stripe', 'POST /v1/charges/', /empty path segment/],
    ['stripe', 'POST /v1//charges', /empty path segment/],
    ['stripe', 'POST /v1/../v1/refunds', /dot segments/],
    ['stripe', 'POST /v1/charges?expand=x', /query/],
    ['stripe', 'POST /v1/char*', /whole segment/],
    ['stripe', 'POST /v1/**', /whole segment/],
    ['stripe', 'POST /v1/ch%2Farges', /characters a canonical path never has/],
    ['stripe', 'POST /v1/chärges', /characters a canonical path never has/],
    ['stripe', 'POST /stripe/v1/charges', /without the proxy's \/stripe prefix/],
    ['stripe', 'POST /emails', /stripe paths start with "\/v1\/" or "\/v2\/"/],
    ['twilio', 'POST /v1/charges', /twilio paths start with/],
    ['resend', 'POST /resend/emails', /without the proxy's \/resend prefix/],
  ])('%s refuses %j', (vendor, text, message) => {
    const parse = () => parseEndpointPattern(text, vendor, 'allowed_endpoints[2]');
    expect(parse).toThrow(message);
    expect(parse).toThrow(/^\[invalid_argument\] allowed_endpoints\[2\]: /);
  });
});

describe('matchesEndpoint', () => {
  const capture = parseEndpointPattern('POST /v1/payment_intents/*/capture', 'stripe', 'p');
  it('matches one segment per "*"', () => {
    expect(matchesEndpoint(capture, 'POST', ['v1', 'payment_intents', 'pi_123', 'capture'])).toBe(true);
  });
  it.each([
    ['GET', ['v1', 'payment_intents', 'pi_123', 'capture']],
    ['POST', ['v1', 'payment_intents', 'capture']],
    ['POST', ['v1', 'payment_intents', 'pi_1', 'x', 'capture']],
    ['POST', ['v1', 'payment_intents', 'pi_123', 'cancel']],
    ['POST', ['v1', 'Payment_intents', 'pi_123', 'capture']],
  ])('does not match %s %j', (method, segments) => {
    expect(matchesEndpoint(capture, method, segments)).toBe(false);
  });
});
