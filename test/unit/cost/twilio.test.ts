import twilio from 'twilio';
import { describe, expect, it } from 'vitest';

import { DEFAULT_PRICE_TABLES, estimateCost, settleCost, type CostEstimate, type KeyPricing, type PricedRequest } from '../../../core/cost/index.js';
import type { PriceTables } from '../../../core/cost/price-tables.js';
import { ALLOWANCE, NO_ALLOWANCE, response, TABLES, twilioPost, TWILIO_ACCOUNT } from './helpers.js';

type Params = ReadonlyArray<readonly [string, string]>;
type Expected = Partial<Record<'kind' | 'micros' | 'code', unknown>>;

const priced = (micros: number): Expected => ({ kind: 'priced', micros });
const FREE: Expected = { kind: 'free' };
const malformed: Expected = { kind: 'refused', code: 'request_malformed' };
const unknown: Expected = { kind: 'refused', code: 'amount_unknown' };
const US = '+14155550100';
const UK = '+447700900123';
const IRIDIUM = '+881631234567';
const NANP_PREMIUM = '+19005550100';
const FROM: readonly [string, string] = ['From', '+15005550006'];
/** A key whose per-call estimate is smaller than what some calls visibly cost. */
const SMALL_ALLOWANCE: KeyPricing = { perCallEstimateMicros: 10_000 };

function check(request: PricedRequest, expected: Expected, key: KeyPricing = NO_ALLOWANCE, tables: PriceTables = TABLES): CostEstimate {
  const estimate = estimateCost(request, key, tables);
  expect(estimate).toMatchObject(expected);
  if (estimate.kind === 'priced') expect(estimate).toMatchObject({ amount: null, currency: null });
  return estimate;
}

function message(estimate: CostEstimate): string {
  return estimate.kind === 'refused' ? estimate.message : estimate.kind === 'priced' ? estimate.detail : '';
}

const sms = (to: string, body: string, ...more: Params): PricedRequest => twilioPost('Messages.json', [['To', to], FROM, ['Body', body], ...more]);
const MEDIA: readonly [string, string] = ['MediaUrl', 'https://example.com/a.png'];

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
    ['lower-case parameter names', twilioPost('Messages.json', [['to', US], ['body', 'hi']]), priced(8_300)],
    ['a Messages resource without .json', twilioPost('Messages', [['To', US], ['Body', 'hi']]), priced(8_300)],
    ['inert parameters (callbacks, validity, MaxPrice, SmartEncoded, ShortenUrls=false)', sms(US, 'hi', ['StatusCallback', 'https://x/cb'], ['ValidityPeriod', '60'], ['MaxPrice', '0.01'], ['SmartEncoded', 'true'], ['ShortenUrls', 'false']), priced(8_300)],
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
    ['SendAsMms with neither Body nor media', twilioPost('Messages.json', [['To', US], FROM, ['SendAsMms', 'true']]), malformed],
    ['an empty MediaUrl', sms(US, 'hi', ['MediaUrl', '']), malformed],
    ['11 media (Twilio takes 10)', sms(US, 'hi', ...Array.from({ length: 11 }, () => MEDIA)), malformed],
    ['a WhatsApp address (not modelled)', sms('whatsapp:+14155550100', 'hi'), unknown],
    ['a WhatsApp sender (not modelled)', twilioPost('Messages.json', [['To', US], ['From', 'whatsapp:+15005550006'], ['Body', 'hi']]), unknown],
    ['a ContentSid template', twilioPost('Messages.json', [['To', US], ['ContentSid', 'HX1']]), unknown],
    ['link shortening (fees not modelled)', sms(US, 'hi', ['ShortenUrls', 'true']), unknown],
    ['a scheduled message (fees not modelled)', sms(US, 'hi', ['ScheduleType', 'fixed'], ['SendAt', '2030-01-01T00:00:00Z']), unknown],
    ['a parameter the model does not know', sms(US, 'hi', ['NewPaidFeature', 'on']), unknown],
  ])('refuses %s', (_name, request, expected) => {
    check(request, expected);
  });

  it('prices what it cannot model by the per-call estimate, never below what the message visibly costs', () => {
    check(sms('whatsapp:+14155550100', 'hi'), priced(25_000_000), ALLOWANCE);
    check(twilioPost('Messages.json', [['To', US], ['ContentSid', 'HX1']]), priced(25_000_000), ALLOWANCE);
    check(sms(US, 'hi', ['ShortenUrls', 'true']), priced(25_000_000), ALLOWANCE);
    check(sms(US, 'a'.repeat(1600), ['ShortenUrls', 'true']), priced(11 * 8_300), SMALL_ALLOWANCE);
  });

  it('counts the query too', () => {
    const request = { ...sms(US, 'hi'), query: 'To=%2B447700900123' };
    check(request, malformed);
  });

  it('names the segments in the detail', () => {
    const estimate = check(sms(US, 'a'.repeat(161)), priced(16_600));
    expect(message(estimate)).toBe('SMS to +1: 2 GSM-7 segments × 8300');
  });
});

describe('Twilio MMS: the larger of one MMS and the SMS Twilio may convert it to', () => {
  it.each<[string, PricedRequest, Expected]>([
    // 'hi' + one link fits one segment (8,300): one MMS (20,000) is more.
    ['a short MMS to the US: one MMS', sms(US, 'hi', MEDIA), priced(20_000)],
    ['media and no text: one MMS', twilioPost('Messages.json', [['To', US], FROM, MEDIA, ['MediaUrl', 'https://x/b.png']]), priced(20_000)],
    // 500 chars + a 64-char link = 564 GSM-7 chars = 4 segments × 8,300 = 33,200 > 20,000.
    ['a long MMS to the US: its SMS segments', sms(US, 'a'.repeat(500), MEDIA), priced(4 * 8_300)],
    // 96 + 64 = 160 chars: 1 segment; 97 + 64 = 161: 2 segments.
    ['text and link filling one segment', sms(UK, 'a'.repeat(96), MEDIA), priced(250_000)],
    ['each media adds a link', sms(UK, 'a'.repeat(1000), MEDIA, MEDIA, MEDIA), priced(Math.ceil((1000 + 3 * 64) / 153) * 52_400)],
    ['a short MMS to the UK at the MMS price', sms(UK, 'hi', MEDIA), priced(250_000)],
    ['a long MMS to the UK: 1,600 GSM-7 chars and a link = 11 segments', sms(UK, 'a'.repeat(1600), MEDIA), priced(11 * 52_400)],
    // A link appended to a UCS-2 body counts one UTF-16 unit per character: 1,600 + 64 = 1,664 units = 25 segments.
    ['a long UCS-2 MMS to the UK: 25 segments', sms(UK, 'ж'.repeat(1600), MEDIA), priced(25 * 52_400)],
    ['SendAsMms makes a text message one MMS', sms(US, 'hi', ['SendAsMms', 'true']), priced(20_000)],
    ['SendAsMms=false changes nothing', sms(US, 'hi', ['SendAsMms', 'false']), priced(8_300)],
  ])('%s', (_name, request, expected) => {
    check(request, expected);
  });

  it('prices a long MMS to the UK with the default tables at what Twilio bills when it converts it ($1.31, not $0.30)', () => {
    const estimate = check(sms(UK, 'ж'.repeat(1600), MEDIA), priced(25 * 52_400), NO_ALLOWANCE, DEFAULT_PRICE_TABLES);
    expect(message(estimate)).toContain('25 UCS-2 segments (text and 1 media link) × 52400');
  });
});

describe('Twilio calls', () => {
  const call = (to: string, ...more: Params) => twilioPost('Calls.json', [['To', to], FROM, ...more]);
  const withTwiml = (to: string, twiml: string, ...more: Params) => call(to, ['Twiml', twiml], ...more);
  const dialNumbers = (numbers: readonly string[], attributes = '') =>
    `<?xml version="1.0" encoding="UTF-8"?><Response><Dial${attributes}>${numbers.map((n) => `<Number>${n}</Number>`).join('')}</Dial></Response>`;
  const TEN_US_NUMBERS = Array.from({ length: 10 }, (_, i) => `+1415555010${i}`);

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
    ['inert parameters (callbacks, Timeout, SendDigits, Record=false)', call(US, ['TimeLimit', '60'], ['StatusCallback', 'https://x/cb'], ['StatusCallbackEvent', 'initiated'], ['StatusCallbackEvent', 'answered'], ['Timeout', '30'], ['SendDigits', '1234'], ['Record', 'false']), priced(14_000)],
    ['Twiml that dials nothing: the call alone', withTwiml(US, '<Response><Say>Your code is 1 2 3</Say><Pause length="1"/><Hangup/></Response>', ['TimeLimit', '60']), priced(14_000)],
    // The attack: one leg reserved, eleven billed.
    ['a Twiml <Dial> of ten numbers: the call and ten legs', withTwiml(US, dialNumbers(TEN_US_NUMBERS), ['TimeLimit', '60']), priced(11 * 14_000)],
    ['ten legs for the whole TimeLimit each', withTwiml(US, dialNumbers(TEN_US_NUMBERS), ['TimeLimit', '600']), priced(11 * 10 * 14_000)],
    ['a leg priced at its own destination', withTwiml(US, dialNumbers([UK]), ['TimeLimit', '120']), priced(2 * 14_000 + 2 * 40_000)],
    ['a number as the text of <Dial>', withTwiml(US, `<Response><Dial>${UK}</Dial></Response>`, ['TimeLimit', '60']), priced(14_000 + 40_000)],
    ['two <Dial> verbs', withTwiml(US, `<Response><Dial>${UK}</Dial><Dial><Number>${US}</Number></Dial></Response>`, ['TimeLimit', '60']), priced(14_000 + 40_000 + 14_000)],
    ['<Dial timeLimit> shorter than TimeLimit bounds its legs', withTwiml(US, dialNumbers([UK, UK], ' timeLimit="60"'), ['TimeLimit', '600']), priced(10 * 14_000 + 2 * 40_000)],
    ['<Dial timeLimit> longer than TimeLimit does not extend the call', withTwiml(US, dialNumbers([UK], ' timeLimit="14400"'), ['TimeLimit', '60']), priced(14_000 + 40_000)],
    [
      'SIP, client, conference and queue legs at the default price',
      withTwiml(US, '<Response><Dial><Sip>sip:bob@example.com</Sip><Client>alice</Client></Dial><Dial><Conference>room</Conference></Dial><Dial><Queue>support</Queue></Dial></Response>', ['TimeLimit', '60']),
      priced(14_000 + 4 * 500_000),
    ],
    ['<Client> with <Identity> and <Parameter>', withTwiml(US, '<Response><Dial><Client><Identity>alice</Identity><Parameter name="a" value="b"/></Client></Dial></Response>', ['TimeLimit', '60']), priced(14_000 + 500_000)],
    ['inert <Dial> and <Number> attributes', withTwiml(US, `<Response><Dial callerId="+15005550006" timeout="20" answerOnBridge="true" record="do-not-record"><Number sendDigits="1" statusCallback="https://x/cb">${UK}</Number></Dial></Response>`, ['TimeLimit', '60']), priced(14_000 + 40_000)],
    ['a conference without recording', withTwiml(US, '<Response><Dial><Conference record="do-not-record" waitUrl="" beep="false">room</Conference></Dial></Response>', ['TimeLimit', '60']), priced(14_000 + 500_000)],
    ['the default TimeLimit bounds the legs too', withTwiml(US, dialNumbers([UK])), priced(10 * 14_000 + 10 * 40_000)],
  ])('%s', (_name, request, expected) => {
    check(request, expected);
  });

  it('prices the TwiML twilio-node writes', () => {
    const response = new twilio.twiml.VoiceResponse();
    response.say({ voice: 'Polly.Joanna' }, 'Connecting you & your team <now>');
    const dial = response.dial({ timeLimit: 120, callerId: '+15005550006' });
    for (const number of TEN_US_NUMBERS) dial.number(number);
    dial.sip('sip:bob@example.com');
    check(withTwiml(US, response.toString(), ['TimeLimit', '600']), priced(10 * 14_000 + 10 * 2 * 14_000 + 2 * 500_000));
  });

  it('names the legs in the detail', () => {
    const estimate = check(withTwiml(US, dialNumbers(TEN_US_NUMBERS), ['TimeLimit', '60']), priced(11 * 14_000));
    expect(message(estimate)).toBe('call to +1: 1 min (TimeLimit 60 s) × 14000; 10 dialled legs: 140000');
  });

  describe('TwiML the proxy cannot see or bound: per-call estimate, never below the visible legs', () => {
    it.each<[string, PricedRequest]>([
      ['a Url (its TwiML can dial anything)', call(US, ['Url', 'https://example.com/twiml'], ['TimeLimit', '60'])],
      ['an ApplicationSid', call(US, ['ApplicationSid', 'AP0123'], ['TimeLimit', '60'])],
      ['a Url and Twiml (Twilio ignores the Twiml)', call(US, ['Url', 'https://example.com/twiml'], ['Twiml', '<Response/>'])],
      ['<Redirect>', withTwiml(US, '<Response><Redirect>https://example.com/more</Redirect></Response>')],
      ['<Gather>', withTwiml(US, '<Response><Gather><Say>Press 1</Say></Gather></Response>')],
      ['<Record>', withTwiml(US, '<Response><Record/></Response>')],
      ['<Pay>', withTwiml(US, '<Response><Pay chargeAmount="10.00"/></Response>')],
      ['<Connect>', withTwiml(US, '<Response><Connect><Stream url="wss://x"/></Connect></Response>')],
      ['<Start>', withTwiml(US, '<Response><Start><Stream url="wss://x"/></Start></Response>')],
      ['<Enqueue>', withTwiml(US, '<Response><Enqueue>support</Enqueue></Response>')],
      ['a lower-case <dial> (Twilio verbs are case-sensitive; not ours to guess)', withTwiml(US, `<Response><dial>${UK}</dial></Response>`)],
      ['<Dial action> (fetches TwiML when the dial ends)', withTwiml(US, dialNumbers([UK], ' action="https://x/next"'))],
      ['<Dial record>', withTwiml(US, dialNumbers([UK], ' record="record-from-answer"'))],
      ['<Number url> (whisper TwiML)', withTwiml(US, `<Response><Dial><Number url="https://x/whisper">${UK}</Number></Dial></Response>`)],
      ['<Number machineDetection>', withTwiml(US, `<Response><Dial><Number machineDetection="Enable">${UK}</Number></Dial></Response>`)],
      ['<Dial><Application>', withTwiml(US, '<Response><Dial><Application>AP0123</Application></Dial></Response>')],
      ['<Conference waitUrl>', withTwiml(US, '<Response><Dial><Conference waitUrl="https://x/hold">room</Conference></Dial></Response>')],
      ['<Queue url>', withTwiml(US, '<Response><Dial><Queue url="https://x/about">support</Queue></Dial></Response>')],
      ['an attribute the model does not know', withTwiml(US, dialNumbers([UK], ' newThing="1"'))],
      ['a non-SSML element inside <Say>', withTwiml(US, `<Response><Say>hi<Dial>${UK}</Dial></Say></Response>`)],
      ['Record=true', call(US, ['Record', 'true'])],
      ['MachineDetection', call(US, ['MachineDetection', 'Enable'])],
      ['CallReason (Branded Calling)', call(US, ['CallReason', 'Your order'])],
      ['FallbackUrl', withTwiml(US, '<Response/>', ['FallbackUrl', 'https://x/fallback'])],
      ['a parameter the model does not know', call(US, ['NewPaidFeature', 'on'])],
      ['a WhatsApp address', call('whatsapp:+14155550100')],
    ])('%s', (_name, request) => {
      check(request, unknown);
      check(request, priced(25_000_000), ALLOWANCE);
    });

    it('reserves the visible legs when they exceed the per-call estimate', () => {
      // The call itself (10 min × 14,000) is visible even though its Url is not.
      check(call(US, ['Url', 'https://example.com/twiml']), priced(10 * 14_000), SMALL_ALLOWANCE);
      // Eleven legs before a <Redirect> are visible too.
      check(withTwiml(US, `${dialNumbers(TEN_US_NUMBERS).replace('</Response>', '')}<Redirect>https://x</Redirect></Response>`, ['TimeLimit', '60']), priced(11 * 14_000), SMALL_ALLOWANCE);
    });

    it('says why in the refusal', () => {
      expect(message(check(call(US, ['Url', 'https://example.com/twiml']), unknown))).toBe(
        'the call runs TwiML fetched from its Url or ApplicationSid, which can dial anything; this vault key has no per-call estimate to price it with',
      );
      expect(message(check(withTwiml(US, dialNumbers([UK], ' action="https://x/next"')), unknown))).toBe(
        'in its Twiml, <Dial> attribute "action": more TwiML is fetched when it ends, which can dial anything; this vault key has no per-call estimate to price it with',
      );
    });
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
    ['an empty Twiml', withTwiml(US, '')],
    ['a repeated Twiml', withTwiml(US, '<Response/>', ['Twiml', dialNumbers(TEN_US_NUMBERS)])],
    ['Twiml that is not XML', withTwiml(US, 'dial +14155550100')],
    ['Twiml whose root is not <Response>', withTwiml(US, `<Dial>${UK}</Dial>`)],
    ['a dialled number not in E.164', withTwiml(US, '<Response><Dial>415-555-0100</Dial></Response>')],
    ['a number split by a comment', withTwiml(US, '<Response><Dial><Number>+1415<!-- -->5550100</Number></Dial></Response>')],
    ['an empty <Dial>', withTwiml(US, '<Response><Dial/></Response>')],
    ['a <Dial> mixing text and nouns', withTwiml(US, `<Response><Dial>${US}<Number>${UK}</Number></Dial></Response>`)],
    ['a bad <Dial timeLimit>', withTwiml(US, dialNumbers([UK], ' timeLimit="1e3"'))],
    ['a duplicated attribute', withTwiml(US, dialNumbers([UK], ' timeLimit="60" timelimit="86400"'))],
    ['a DOCTYPE with entities', withTwiml(US, '<!DOCTYPE r [<!ENTITY n "+14155550100">]><Response><Dial>&n;</Dial></Response>')],
    ['CDATA', withTwiml(US, '<Response><Dial><![CDATA[+14155550100]]></Dial></Response>')],
    ['Twiml over 4,000 characters', withTwiml(US, `<Response><Say>${'a'.repeat(4000)}</Say></Response>`)],
  ])('refuses %s', (_name, request) => {
    check(request, malformed);
  });

  describe('refused destinations', () => {
    it.each<[string, PricedRequest]>([
      ['a call to an Iridium phone (+881 6)', call(IRIDIUM, ['TimeLimit', '60'])],
      ['a call to a NANP premium number (+1 900)', call(NANP_PREMIUM, ['TimeLimit', '60'])],
      ['a call to a UK premium number (+44 9)', call('+449098790123', ['TimeLimit', '60'])],
      ['a Twiml leg to Inmarsat (+870)', withTwiml(US, dialNumbers(['+870772001234']), ['TimeLimit', '60'])],
      ['a Twiml leg to a premium number', withTwiml(US, dialNumbers([US, NANP_PREMIUM]), ['TimeLimit', '60'])],
      ['an SMS to an Iridium phone', sms(IRIDIUM, 'hi')],
      ['an MMS to a Thuraya phone (+882 16)', sms('+88216123456', 'hi', MEDIA)],
      ['a template message to a premium number', twilioPost('Messages.json', [['To', NANP_PREMIUM], ['ContentSid', 'HX1']])],
      ['a message with an unmodelled parameter to a premium number', sms(NANP_PREMIUM, 'hi', ['ShortenUrls', 'true'])],
      ['a conference participant at a premium number', twilioPost('Conferences/CF1/Participants.json', [['To', NANP_PREMIUM], FROM])],
    ])('refuses %s, even with a per-call estimate', (_name, request) => {
      check(request, malformed, ALLOWANCE);
      check(request, malformed, ALLOWANCE, DEFAULT_PRICE_TABLES);
    });

    it('names the prefix and how to price it', () => {
      expect(message(check(call(IRIDIUM, ['TimeLimit', '60']), malformed))).toBe(
        '+881 is a destination the price tables refuse (twilio.callMinuteMicros.refusedPrefixes): satellite and premium-rate numbers cost more than any default; an operator can price it in twilio.callMinuteMicros.byCountryCode',
      );
      expect(message(check(sms(NANP_PREMIUM, 'hi'), malformed))).toContain('+1900 is a destination the price tables refuse (twilio.smsSegmentMicros.refusedPrefixes)');
    });
  });
});

describe('Twilio: updating a live call', () => {
  const update = (...params: Params) => twilioPost('Calls/CA0123.json', params);
  const THREE = `<Response><Dial><Number>${US}</Number><Number>${US}</Number><Number>${UK}</Number></Dial></Response>`;

  it.each<[string, PricedRequest, Expected]>([
    ['hanging up (Status=completed)', update(['Status', 'completed']), FREE],
    ['canceling (Status=canceled)', update(['Status', 'canceled']), FREE],
    ['hanging up with a status callback', update(['Status', 'completed'], ['StatusCallback', 'https://x/cb'], ['StatusCallbackMethod', 'POST']), FREE],
    // The attack: redirecting a live call into TwiML that dials more was free.
    ['redirecting to Twiml that dials three numbers: three legs for the default time limit', update(['Twiml', THREE]), priced(10 * (14_000 + 14_000 + 40_000))],
    ['Status=completed does not make a redirect free', update(['Status', 'completed'], ['Twiml', THREE]), priced(10 * (14_000 + 14_000 + 40_000))],
    ['<Dial timeLimit> bounds the legs', update(['Twiml', THREE.replace('<Dial>', '<Dial timeLimit="60">')]), priced(14_000 + 14_000 + 40_000)],
    ['Twiml that dials nothing adds nothing', update(['Twiml', '<Response><Say>Goodbye</Say><Hangup/></Response>']), FREE],
  ])('%s', (_name, request, expected) => {
    check(request, expected);
  });

  it.each<[string, PricedRequest]>([
    ['redirecting to a Url', update(['Url', 'https://example.com/twiml'], ['Method', 'POST'])],
    ['a new TimeLimit (extends the call)', update(['TimeLimit', '86400'])],
    ['a status callback alone (only a hang-up is known to be free)', update(['StatusCallback', 'https://x/cb'])],
    ['a Status Twilio does not hang up on', update(['Status', 'in-progress'])],
    ['a hang-up spelt otherwise', update(['Status', 'Completed'])],
    ['a FallbackUrl', update(['Twiml', '<Response/>'], ['FallbackUrl', 'https://x/fb'])],
    ['a parameter the model does not know', update(['Status', 'completed'], ['NewThing', '1'])],
    ['no parameters', update()],
    ['Twiml with a <Redirect>', update(['Twiml', '<Response><Redirect>https://x</Redirect></Response>'])],
  ])('prices %s by the per-call estimate', (_name, request) => {
    check(request, unknown);
    check(request, priced(25_000_000), ALLOWANCE);
  });

  it('reserves the visible legs of Twiml with a new TimeLimit when they exceed the estimate', () => {
    check(update(['Twiml', THREE], ['TimeLimit', '120']), priced(2 * (14_000 + 14_000 + 40_000)), SMALL_ALLOWANCE);
  });

  it.each<[string, PricedRequest]>([
    ['a repeated Status', update(['Status', 'completed'], ['Status', 'in-progress'])],
    ['unreadable Twiml', update(['Twiml', '<Response><Dial>'])],
    ['a leg to a refused destination', update(['Twiml', `<Response><Dial>${IRIDIUM}</Dial></Response>`])],
  ])('refuses %s', (_name, request) => {
    check(request, malformed, ALLOWANCE);
  });
});

describe('Twilio: conference participants and caller-id verification', () => {
  const participant = (...params: Params) => twilioPost('Conferences/CF1/Participants.json', [FROM, ...params]);

  it.each<[string, PricedRequest, Expected]>([
    ['a participant dials one leg', participant(['To', US], ['TimeLimit', '120']), priced(28_000)],
    ['without TimeLimit: the default', participant(['To', UK]), priced(10 * 40_000)],
    ['inert participant parameters', participant(['To', US], ['TimeLimit', '60'], ['Muted', 'true'], ['Label', 'agent'], ['ConferenceRecord', 'do-not-record'], ['WaitUrl', '']), priced(14_000)],
    ['verifying a caller id calls the number for the default time limit', twilioPost('OutgoingCallerIds.json', [['PhoneNumber', UK], ['FriendlyName', 'desk']]), priced(10 * 40_000)],
  ])('%s', (_name, request, expected) => {
    check(request, expected);
  });

  it.each<[string, PricedRequest]>([
    ['a recorded participant', participant(['To', US], ['Record', 'true'])],
    ['a recorded conference', participant(['To', US], ['ConferenceRecord', 'record-from-start'])],
    ['a participant waiting on TwiML from a URL', participant(['To', US], ['WaitUrl', 'https://x/hold'])],
    ['a participant parameter the model does not know', participant(['To', US], ['NewThing', '1'])],
  ])('prices %s by the per-call estimate', (_name, request) => {
    check(request, unknown);
    check(request, priced(25_000_000), ALLOWANCE);
  });

  it('refuses a caller id to verify at a refused destination, or one that is not a number', () => {
    check(twilioPost('OutgoingCallerIds.json', [['PhoneNumber', NANP_PREMIUM]]), malformed, ALLOWANCE);
    check(twilioPost('OutgoingCallerIds.json', [['PhoneNumber', 'client:alice']]), malformed, ALLOWANCE);
    check(twilioPost('OutgoingCallerIds.json', []), malformed, ALLOWANCE);
  });
});

describe('Twilio: everything else (fail closed)', () => {
  const raw = (method: string, segments: readonly string[]): PricedRequest => ({ ...twilioPost('x', []), method, segments, body: null, contentType: undefined });

  it.each<[string, PricedRequest]>([
    ['GET a message list', { ...twilioPost('Messages.json', []), method: 'GET', body: null }],
    ['redacting a message (Body empty)', twilioPost('Messages/SM1.json', [['Body', '']])],
    ['canceling a scheduled message', twilioPost('Messages/SM1.json', [['Status', 'canceled']])],
    ['renaming a phone number', twilioPost('IncomingPhoneNumbers/PN1.json', [['FriendlyName', 'x']])],
    ['DELETE a message', twilioPost('Messages/SM1.json', [], 'DELETE')],
    ['DELETE a phone number (releases it)', twilioPost('IncomingPhoneNumbers/PN1.json', [], 'DELETE')],
    ['stopping a recording', twilioPost('Calls/CA1/Recordings/RE1.json', [['Status', 'stopped']])],
    ['stopping a media stream', twilioPost('Calls/CA1/Streams/MZ1.json', [['Status', 'stopped']])],
    ['ending a conference', twilioPost('Conferences/CF1.json', [['Status', 'completed']])],
    ['muting a participant', twilioPost('Conferences/CF1/Participants/CA1.json', [['Muted', 'true']])],
    ['renaming the account', raw('POST', ['2010-04-01', 'Accounts', `${TWILIO_ACCOUNT}.json`])],
    ['creating an address', twilioPost('Addresses.json', [['CustomerName', 'x']])],
    ['creating an application', twilioPost('Applications.json', [['FriendlyName', 'x']])],
    ['creating a queue', twilioPost('Queues.json', [['FriendlyName', 'x']])],
    ['renaming an API key', twilioPost('Keys/SK1.json', [['FriendlyName', 'x']])],
    ['a usage trigger', twilioPost('Usage/Triggers.json', [['CallbackUrl', 'https://x'], ['TriggerValue', '10'], ['UsageCategory', 'sms']])],
  ])('%s is free', (_name, request) => {
    check(request, FREE);
  });

  it.each<[string, PricedRequest]>([
    // The attack: an unknown POST was free.
    ['a POST the route list does not know', twilioPost('Brand/NewPaidThing.json', [['To', US]])],
    ['a path outside the Accounts tree', { ...twilioPost('Messages.json', [['To', US], ['Body', 'hi']]), segments: ['2010-04-01', 'Messages.json'] }],
    ['a resource spelt in lower case', twilioPost('messages.json', [['To', US], ['Body', 'hi']])],
    ['a DELETE the route list does not know', twilioPost('Brand/X.json', [], 'DELETE')],
    ['a PUT', twilioPost('Messages/SM1.json', [['Body', '']], 'PUT')],
    ['redacting a message to a new text', twilioPost('Messages/SM1.json', [['Body', 'new text']])],
    ['rerouting a phone number (VoiceUrl)', twilioPost('IncomingPhoneNumbers/PN1.json', [['VoiceUrl', 'https://x/dial-premium']])],
    ['rerouting an application', twilioPost('Applications/AP1.json', [['VoiceUrl', 'https://x']])],
    ['creating an API key (its secret spends outside any cap)', twilioPost('Keys.json', [['FriendlyName', 'x']])],
    ['creating a subaccount', raw('POST', ['2010-04-01', 'Accounts.json'])],
    ['starting a recording', twilioPost('Calls/CA1/Recordings.json', [])],
    ['resuming a recording', twilioPost('Calls/CA1/Recordings/RE1.json', [['Status', 'in-progress']])],
    ['starting a media stream', twilioPost('Calls/CA1/Streams.json', [['Url', 'wss://x']])],
    ['starting SIPREC', twilioPost('Calls/CA1/Siprec.json', [])],
    ['starting a real-time transcription', twilioPost('Calls/CA1/Transcriptions.json', [])],
    ['a <Pay> session', twilioPost('Calls/CA1/Payments.json', [['IdempotencyKey', 'x'], ['StatusCallback', 'https://x']])],
    ['dequeuing a caller into a Url', twilioPost('Queues/QU1/Members/Front.json', [['Url', 'https://x']])],
    ['announcing into a conference', twilioPost('Conferences/CF1.json', [['AnnounceUrl', 'https://x']])],
    ['holding a participant on TwiML from a URL', twilioPost('Conferences/CF1/Participants/CA1.json', [['Hold', 'true'], ['HoldUrl', 'https://x']])],
    ['buying a number', twilioPost('IncomingPhoneNumbers/Local.json', [['PhoneNumber', US]])],
    ['a SIP credential', twilioPost('SIP/CredentialLists/CL1/Credentials.json', [['Username', 'u'], ['Password', 'p']])],
    ['TURN tokens', twilioPost('Tokens.json', [])],
  ])('%s is priced by the per-call estimate', (_name, request) => {
    check(request, unknown);
    check(request, priced(25_000_000), ALLOWANCE);
  });

  it.each(['IncomingPhoneNumbers.json', 'IncomingPhoneNumbers/Local.json', 'IncomingPhoneNumbers/TollFree.json', 'IncomingPhoneNumbers/Mobile.json'])(
    'buying a number (%s) is priced by the per-call estimate',
    (resource) => {
      check(twilioPost(resource, [['PhoneNumber', US]]), unknown);
      check(twilioPost(resource, [['PhoneNumber', US]]), priced(25_000_000), ALLOWANCE);
    },
  );

  it('refuses a free-if route given the same parameter twice', () => {
    check(twilioPost('Calls/CA1/Streams/MZ1.json', [['Status', 'stopped'], ['status', 'in-progress']]), malformed, ALLOWANCE);
  });

  it('says which request it does not know', () => {
    expect(message(check(twilioPost('Brand/NewPaidThing.json', []), unknown))).toBe(
      'POST on this path is not a Twilio route the proxy knows to be free or can price; this vault key has no per-call estimate to price it with',
    );
  });
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
