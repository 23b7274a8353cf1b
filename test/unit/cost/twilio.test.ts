import { describe, expect, it } from 'vitest';

import { estimateCost, settleCost, type CostEstimate, type KeyPricing, type PricedRequest } from '../../../core/cost/index.js';
import { ALLOWANCE, NO_ALLOWANCE, response, TABLES, twilioPost, TWILIO_ACCOUNT } from './helpers.js';

type Params = ReadonlyArray<readonly [string, string]>;
type Expected = Partial<Record<'kind' | 'micros' | 'code', unknown>>;

const priced = (micros: number): Expected => ({ kind: 'priced', micros });
const malformed: Expected = { kind: 'refused', code: 'request_malformed' };
const unknown: Expected = { kind: 'refused', code: 'amount_unknown' };
const US = '+14155550100';
const UK = '+447700900123';
const FROM: readonly [string, string] = ['From', '+15005550006'];

function check(request: PricedRequest, expected: Expected, key: KeyPricing = NO_ALLOWANCE): CostEstimate {
  const estimate = estimateCost(request, key, TABLES);
  expect(estimate).toMatchObject(expected);
  if (estimate.kind === 'priced') expect(estimate).toMatchObject({ amount: null, currency: null });
  return estimate;
}

const sms = (to: string, body: string, ...more: Params): PricedRequest => twilioPost('Messages.json', [['To', to], FROM, ['Body', body], ...more]);

describe('Twilio messages', () => {
  it.each<[string, PricedRequest, Expected]>([
    ['1 segment to the US', sms(US, 'hello'), priced(8_300)],
    ['160 GSM-7 chars: 1 segment', sms(US, 'a'.repeat(160)), priced(8_300)],
    ['161 GSM-7 chars: 2 segments', sms(US, 'a'.repeat(161)), priced(16_600)],
    ['306 GSM-7 chars: 2 segments', sms(US, 'a'.repeat(306)), priced(16_600)],
    ['307 GSM-7 chars: 3 segments', sms(US, 'a'.repeat(307)), priced(24_900)],
    ['70 UCS-2 chars: 1 segment', sms(US, 'ж'.repeat(70)), priced(8_300)],
    ['71 UCS-2 chars: 2 segments', sms(US, 'ж'.repeat(71)), priced(16_600)],
    ['134 UCS-2 chars: 2 segments', sms(US, 'ж'.repeat(134)), priced(16_600)],
    ['135 UCS-2 chars: 3 segments', sms(US, 'ж'.repeat(135)), priced(24_900)],
    ['81 euro signs (2 septets each): 2 segments', sms(US, '€'.repeat(81)), priced(16_600)],
    ['36 emoji (2 UTF-16 units each): 2 segments', sms(US, '😀'.repeat(36)), priced(16_600)],
    ['1,600 chars: the most Twilio takes', sms(US, 'a'.repeat(1600)), priced(11 * 8_300)],
    ['the UK price', sms(UK, 'hello'), priced(52_400)],
    ['a Jamaican +1 number at its own price, not the US one', sms('+18765550100', 'hello'), priced(90_000)],
    ['an unlisted country at the default', sms('+4915112345678', 'a'.repeat(161)), priced(200_000)],
    ['a MessagingServiceSid instead of From', twilioPost('Messages.json', [['To', US], ['MessagingServiceSid', 'MG1'], ['Body', 'hi']]), priced(8_300)],
    ['one MMS, whatever the text length', sms(US, 'a'.repeat(500), ['MediaUrl', 'https://example.com/a.png']), priced(20_000)],
    ['one MMS with several media', twilioPost('Messages.json', [['To', US], FROM, ['MediaUrl', 'https://x/a.png'], ['MediaUrl', 'https://x/b.png']]), priced(20_000)],
    ['an MMS abroad at the default MMS price', sms(UK, 'hi', ['MediaUrl', 'https://example.com/a.png']), priced(250_000)],
    ['lower-case parameter names', twilioPost('Messages.json', [['to', US], ['body', 'hi']]), priced(8_300)],
    ['a Messages resource without .json', twilioPost('Messages', [['To', US], ['Body', 'hi']]), priced(8_300)],
  ])('%s', (_name, request, expected) => {
    check(request, expected);
  });

  it.each<[string, PricedRequest, Expected]>([
    ['a body over 1,600 chars', sms(US, 'a'.repeat(1601)), malformed],
    ['no To', twilioPost('Messages.json', [FROM, ['Body', 'hi']]), malformed],
    ['an empty To', sms('', 'hi'), malformed],
    ['To without +', sms('14155550100', 'hi'), malformed],
    ['To with spaces', sms('+1 415 555 0100', 'hi'), malformed],
    ['To starting with +0', sms('+04155550100', 'hi'), malformed],
    ['To with 16 digits', sms('+1234567890123456', 'hi'), malformed],
    ['a repeated To', sms(US, 'hi', ['To', UK]), malformed],
    ['To and to', sms(US, 'hi', ['to', UK]), malformed],
    ['a repeated Body', sms(US, 'hi', ['Body', 'a'.repeat(1000)]), malformed],
    ['neither Body nor media', twilioPost('Messages.json', [['To', US], FROM]), malformed],
    ['an empty Body and no media', sms(US, ''), malformed],
    ['an empty MediaUrl', sms(US, 'hi', ['MediaUrl', '']), malformed],
    ['a WhatsApp address (not modelled)', sms('whatsapp:+14155550100', 'hi'), unknown],
    ['a ContentSid template', twilioPost('Messages.json', [['To', US], ['ContentSid', 'HX1']]), unknown],
  ])('refuses %s', (_name, request, expected) => {
    check(request, expected);
  });

  it('prices channel addresses and templates by the per-call estimate when the key has one', () => {
    check(sms('whatsapp:+14155550100', 'hi'), priced(25_000_000), ALLOWANCE);
    check(twilioPost('Messages.json', [['To', US], ['ContentSid', 'HX1']]), priced(25_000_000), ALLOWANCE);
  });

  it('counts the query too', () => {
    const request = { ...sms(US, 'hi'), query: 'To=%2B447700900123' };
    check(request, malformed);
  });

  it('names the segments in the detail', () => {
    const estimate = check(sms(US, 'a'.repeat(161)), priced(16_600));
    expect(estimate.kind === 'priced' && estimate.detail).toBe('SMS to +1: 2 GSM-7 segments × 8300');
  });
});

describe('Twilio calls', () => {
  const call = (to: string, ...more: Params) => twilioPost('Calls.json', [['To', to], FROM, ['Url', 'https://example.com/twiml'], ...more]);

  it.each<[string, PricedRequest, Expected]>([
    ['TimeLimit 60 s: 1 minute', call(US, ['TimeLimit', '60']), priced(14_000)],
    ['TimeLimit 61 s: 2 minutes', call(US, ['TimeLimit', '61']), priced(28_000)],
    ['TimeLimit 1 s: 1 minute', call(US, ['TimeLimit', '1']), priced(14_000)],
    ['TimeLimit 4 h', call(US, ['TimeLimit', '14400']), priced(240 * 14_000)],
    ['TimeLimit 24 h, the most Twilio takes', call(US, ['TimeLimit', '86400']), priced(1440 * 14_000)],
    ["no TimeLimit: the tables' default (600 s)", call(US), priced(10 * 14_000)],
    ['the UK price', call(UK, ['TimeLimit', '120']), priced(80_000)],
    ['an unlisted country at the default', call('+4915112345678', ['TimeLimit', '120']), priced(1_000_000)],
    ['a SIP leg at the default price', call('sip:bob@example.com', ['TimeLimit', '60']), priced(500_000)],
    ['a client leg at the default price', call('client:alice', ['TimeLimit', '60']), priced(500_000)],
    ['a conference participant dials a call', twilioPost('Conferences/CF1/Participants.json', [['To', US], FROM, ['TimeLimit', '120']]), priced(28_000)],
  ])('%s', (_name, request, expected) => {
    check(request, expected);
  });

  it.each<[string, PricedRequest]>([
    ['TimeLimit 0', call(US, ['TimeLimit', '0'])],
    ['TimeLimit over 24 h', call(US, ['TimeLimit', '86401'])],
    ['a negative TimeLimit', call(US, ['TimeLimit', '-5'])],
    ['a decimal TimeLimit', call(US, ['TimeLimit', '60.5'])],
    ['an empty TimeLimit', call(US, ['TimeLimit', ''])],
    ['a repeated TimeLimit', call(US, ['TimeLimit', '60'], ['TimeLimit', '86400'])],
    ['no To', twilioPost('Calls.json', [FROM, ['TimeLimit', '60']])],
    ['a To that is not a number', call('4155550100', ['TimeLimit', '60'])],
  ])('refuses %s', (_name, request) => {
    check(request, malformed);
  });
});

describe('Twilio: everything else', () => {
  it.each<[string, PricedRequest]>([
    ['GET a message list', { ...twilioPost('Messages.json', []), method: 'GET', body: null }],
    ['update a message (redact)', twilioPost('Messages/SM1.json', [['Body', '']])],
    ['update a call', twilioPost('Calls/CA1.json', [['Status', 'completed']])],
    ['update a phone number', twilioPost('IncomingPhoneNumbers/PN1.json', [['FriendlyName', 'x']])],
    ['a path outside the Accounts tree', { ...twilioPost('Messages.json', [['To', US], ['Body', 'hi']]), segments: ['2010-04-01', 'Messages.json'] }],
    ['DELETE a message', { ...twilioPost('Messages/SM1.json', []), method: 'DELETE' }],
  ])('%s is free', (_name, request) => {
    check(request, { kind: 'free' });
  });

  it.each(['IncomingPhoneNumbers.json', 'IncomingPhoneNumbers/Local.json', 'IncomingPhoneNumbers/TollFree.json', 'IncomingPhoneNumbers/Mobile.json'])(
    'buying a number (%s) is priced by the per-call estimate',
    (resource) => {
      check(twilioPost(resource, [['PhoneNumber', US]]), unknown);
      check(twilioPost(resource, [['PhoneNumber', US]]), priced(25_000_000), ALLOWANCE);
    },
  );
});

describe('settleCost (Twilio)', () => {
  const request = sms(US, 'a'.repeat(161));
  const estimate = estimateCost(request, NO_ALLOWANCE, TABLES);
  const created = { sid: 'SM0123', account_sid: TWILIO_ACCOUNT, status: 'queued', num_segments: '2', price: null, price_unit: 'USD' };

  it('keeps the estimate on success (Twilio prices later) and reports the sid', () => {
    expect(settleCost(request, estimate, response(201, created), TABLES)).toEqual({
      micros: 16_600,
      objectId: 'SM0123',
      stripeChargeId: null,
      replayed: false,
      amount: null,
      currency: null,
    });
  });

  it('costs nothing when Twilio refuses the call', () => {
    const error = { code: 21211, message: "The 'To' number is not a valid phone number.", more_info: 'https://www.twilio.com/docs/errors/21211', status: 400 };
    expect(settleCost(request, estimate, response(400, error), TABLES)).toMatchObject({ micros: 0, objectId: null });
    expect(settleCost(request, estimate, response(429, { code: 20429, status: 429 }), TABLES).micros).toBe(0);
  });

  it('keeps the reservation when the outcome is unknown (5xx)', () => {
    expect(settleCost(request, estimate, response(503, { code: 20503, status: 503 }), TABLES).micros).toBe(16_600);
  });

  it('keeps the estimate when a success answer is not JSON', () => {
    expect(settleCost(request, estimate, response(201, '<xml/>'), TABLES)).toMatchObject({ micros: 16_600, objectId: null });
  });

  it('costs nothing for a free call', () => {
    const read = { ...request, method: 'GET', body: null };
    expect(settleCost(read, estimateCost(read, NO_ALLOWANCE, TABLES), response(200, { messages: [] }), TABLES).micros).toBe(0);
  });
});
