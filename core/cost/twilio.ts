/**
 * Twilio's cost model (the 2010-04-01 REST API, the only Twilio path space the proxy serves).
 * Which routes cost what is an explicit list (twilio-routes.ts): a POST or DELETE the list does
 * not know is priced by the key's per-call estimate, never free. Messages cost segments × the
 * destination's per-segment price (an MMS the larger of its MMS price and the SMS Twilio may
 * convert it to); calls cost every leg they open — the call itself and each leg its inline
 * TwiML dials — × the minutes of TimeLimit × the leg's per-minute price. A call whose TwiML comes
 * from a URL can dial anything: per-call estimate. Destinations the price tables refuse
 * (satellite, premium rate) are refused. Twilio prices a message or a call only after it
 * happened (asynchronously), so the estimate is what settles.
 */
import { ceilDiv } from './currency.js';
import { readFormPairs, singleParam, type FormPair } from './form-body.js';
import { MAX_CALL_TIME_LIMIT_SECONDS, priceForDestination, type CountryPrices, type PriceTables } from './price-tables.js';
import { CostRefusal, FREE, malformed, perCallEstimate } from './refusal.js';
import { responseJson, settleFromEstimate, stringField } from './settlement.js';
import { countSegments } from './sms-segments.js';
import { planTwiml, type TwimlLeg } from './twiml.js';
import { matchTwilioRoute, type TwilioRule } from './twilio-routes.js';
import type { CostEstimate, KeyPricing, PricedRequest, Settlement, VendorResponse } from './types.js';
import { quote } from '../quote.js';

export const MAX_BODY_CHARACTERS = 1_600;
/** Twilio takes at most 10 media per message. */
export const MAX_MEDIA_PER_MESSAGE = 10;
/**
 * What Twilio's MMS Converter adds to the text per media when it sends an MMS as SMS: a
 * separator and a short link to the media (twil.io links run to about 30 characters). 64 is
 * twice that: a longer domain, token or separator still fits, and each extra character only
 * makes the bound higher.
 */
export const MMS_LINK_CHARACTERS = 64;
const E164 = /^\+([1-9]\d{1,14})$/;
/** `whatsapp:+1…`, `messenger:…`, `client:alice`, `sip:bob@example.com`: not a phone number. */
const CHANNEL_ADDRESS = /^([A-Za-z][A-Za-z0-9+.-]*):./;
const SECONDS = /^\d{1,6}$/;

type Destination = { readonly kind: 'phone'; readonly digits: string } | { readonly kind: 'channel'; readonly channel: string };

function parseDestination(value: string | undefined, name = 'To'): Destination {
  if (value === undefined || value === '') throw malformed(`${name} is required`);
  const phone = E164.exec(value);
  if (phone !== null) return { kind: 'phone', digits: phone[1] ?? '' };
  const channel = CHANNEL_ADDRESS.exec(value);
  if (channel !== null) return { kind: 'channel', channel: (channel[1] ?? '').toLowerCase() };
  throw malformed(`${name} must be an E.164 number such as +14155550100, got ${quote(value)}`);
}

/** The unit price for a number, or the refusal of a destination the tables do not price. */
function destinationPrice(prices: CountryPrices, field: string, digits: string): { micros: bigint; where: string } {
  const price = priceForDestination(prices, digits);
  if (price.kind === 'refused') {
    // Not the caller's mistake: the operator has not priced the destination (satellite,
    // premium rate), and no default bounds it.
    throw new CostRefusal(
      'request_malformed',
      `+${price.prefix} is a destination the price tables refuse (${field}.refusedPrefixes): satellite and premium-rate numbers cost more than any default; an operator can price it in ${field}.byCountryCode`,
    );
  }
  return { micros: BigInt(price.micros), where: price.prefix === null ? `+${digits} (default price)` : `+${price.prefix}` };
}

function safe(micros: bigint): number {
  if (micros > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed('the price is out of range');
  return Number(micros);
}

function priced(micros: bigint, detail: string): CostEstimate {
  return { kind: 'priced', micros: safe(micros), amount: null, currency: null, detail };
}

/** The names of the parameters, lower-case (Twilio's parser may match names either way). */
function names(pairs: readonly FormPair[]): Set<string> {
  return new Set(pairs.map((pair) => pair.key.toLowerCase()));
}

/**
 * The first parameter that is neither handled nor known to be inert, as a reason for a per-call
 * estimate; null when there is none. `costly` names parameters that switch on a paid feature
 * unless given one of their harmless values.
 */
function unmodelledParameter(
  pairs: readonly FormPair[],
  known: ReadonlySet<string>,
  costly: Readonly<Record<string, { readonly harmless: readonly string[]; readonly reason: string }>>,
): string | null {
  for (const { key, value } of pairs) {
    const name = key.toLowerCase();
    const rule = costly[name];
    if (rule !== undefined) {
      if (!rule.harmless.includes(value.toLowerCase())) return `${key} ${rule.reason}`;
      continue;
    }
    if (!known.has(name)) return `parameter ${quote(key)} is not modelled`;
  }
  return null;
}

const lower = (list: readonly string[]): ReadonlySet<string> => new Set(list.map((name) => name.toLowerCase()));

// ---- Messages ------------------------------------------------------------------------------

/** Parameters of a message that change neither what is sent nor what it costs. */
const MESSAGE_PARAMETERS = lower([
  'To', 'From', 'MessagingServiceSid', 'Body', 'MediaUrl', 'ContentSid', 'ContentVariables', 'SendAsMms', 'StatusCallback', 'ApplicationSid',
  'MaxPrice', 'ProvideFeedback', 'Attempt', 'ValidityPeriod', 'ForceDelivery', 'ContentRetention', 'AddressRetention', 'SmartEncoded',
  'PersistentAction', 'TrafficType', 'MessageIntent', 'RiskCheck',
]);
const COSTLY_MESSAGE_PARAMETERS = {
  shortenurls: { harmless: ['false'], reason: 'turns on link shortening, whose fees are not modelled' },
  scheduletype: { harmless: [], reason: 'schedules the message (Engagement Suite), whose fees are not modelled' },
  sendat: { harmless: [], reason: 'schedules the message (Engagement Suite), whose fees are not modelled' },
  fallbackfrom: { harmless: [], reason: 'may send the message twice, from a second sender' },
};

function priceMessage(pairs: readonly FormPair[], key: KeyPricing, tables: PriceTables): CostEstimate {
  const destination = parseDestination(singleParam(pairs, 'To'));
  const from = singleParam(pairs, 'From');
  const body = singleParam(pairs, 'Body');
  const contentSid = singleParam(pairs, 'ContentSid');
  const sendAsMms = singleParam(pairs, 'SendAsMms');
  const mediaUrls = pairs.filter((pair) => pair.key.toLowerCase() === 'mediaurl');
  if (body !== undefined && [...body].length > MAX_BODY_CHARACTERS) throw malformed(`Body is longer than Twilio's ${MAX_BODY_CHARACTERS} characters`);
  if (mediaUrls.some((pair) => pair.value === '')) throw malformed('MediaUrl must not be empty');
  if (mediaUrls.length > MAX_MEDIA_PER_MESSAGE) throw malformed(`a message takes at most ${MAX_MEDIA_PER_MESSAGE} MediaUrl, got ${mediaUrls.length}`);
  if (destination.kind === 'channel') {
    return perCallEstimate(key, `messages to ${quote(destination.channel)} addresses are billed by that channel's rules, which are not modelled`);
  }
  const template = contentSid !== undefined && contentSid !== '';
  if ((body === undefined || body === '') && mediaUrls.length === 0 && !template) throw malformed('a message needs Body, MediaUrl or ContentSid');
  // SendAsMms sends even a text-only message as one MMS.
  const asMms = mediaUrls.length > 0 || (sendAsMms !== undefined && sendAsMms.toLowerCase() !== 'false');
  // Priced first, whatever else the message does: a destination the tables refuse is refused,
  // and what the request shows is the least a per-call estimate reserves.
  const estimate = asMms ? priceMms(body ?? '', mediaUrls.length, destination.digits, tables) : priceSms(body ?? '', destination.digits, tables);
  const fromChannel = from === undefined ? null : CHANNEL_ADDRESS.exec(from);
  const unmodelled =
    fromChannel !== null
      ? `messages from ${quote((fromChannel[1] ?? '').toLowerCase())} senders are billed by that channel's rules, which are not modelled`
      : template
        ? "a ContentSid message's length is the template's, which the request does not state"
        : unmodelledParameter(pairs, MESSAGE_PARAMETERS, COSTLY_MESSAGE_PARAMETERS);
  return unmodelled === null ? priced(estimate.micros, estimate.detail) : perCallEstimate(key, unmodelled, safe(estimate.micros));
}

function priceSms(body: string, digits: string, tables: PriceTables): { micros: bigint; detail: string } {
  const { segments, encoding } = countSegments(body);
  const { micros, where } = destinationPrice(tables.twilio.smsSegmentMicros, 'twilio.smsSegmentMicros', digits);
  return { micros: BigInt(segments) * micros, detail: `SMS to ${where}: ${segments} ${encoding} segment${segments === 1 ? '' : 's'} × ${micros}` };
}

/**
 * An MMS costs one MMS where it is delivered as one; where Twilio's MMS Converter sends it as SMS
 * instead (every destination outside the US and Canada, and carriers there without MMS), it
 * costs the SMS segments of its text plus a link per media. Which happens is Twilio's choice at
 * delivery: the larger of the two bounds both.
 */
function priceMms(body: string, media: number, digits: string, tables: PriceTables): { micros: bigint; detail: string } {
  const mms = destinationPrice(tables.twilio.mmsMicros, 'twilio.mmsMicros', digits);
  // Links are plain ASCII: appended to a UCS-2 body they count one unit each, as in the real SMS.
  const links = media === 0 ? '' : `\n${'x'.repeat(MMS_LINK_CHARACTERS - 1)}`.repeat(media);
  const { segments, encoding } = countSegments(body + links);
  const sms = destinationPrice(tables.twilio.smsSegmentMicros, 'twilio.smsSegmentMicros', digits);
  const asSms = BigInt(segments) * sms.micros;
  const detail = `MMS to ${mms.where}: the larger of 1 MMS × ${mms.micros} and, sent as SMS, ${segments} ${encoding} segment${segments === 1 ? '' : 's'} (text and ${media} media link${media === 1 ? '' : 's'}) × ${sms.micros}`;
  return { micros: asSms > mms.micros ? asSms : mms.micros, detail };
}

// ---- Calls ---------------------------------------------------------------------------------

/** TimeLimit in seconds: Twilio hangs up then. Without it, the tables' default (Twilio's own is 4 h). */
function timeLimitSeconds(pairs: readonly FormPair[], tables: PriceTables): number {
  const text = singleParam(pairs, 'TimeLimit');
  if (text === undefined) return tables.twilio.defaultCallTimeLimitSeconds;
  const seconds = SECONDS.test(text) ? Number(text) : Number.NaN;
  if (!(seconds >= 1 && seconds <= MAX_CALL_TIME_LIMIT_SECONDS)) {
    throw malformed(`TimeLimit must be a whole number of seconds from 1 to ${MAX_CALL_TIME_LIMIT_SECONDS}, got ${quote(text)}`);
  }
  return seconds;
}

/** A leg's per-minute price. SIP, client, conference and queue legs cost less than any phone destination: the unknown-country default bounds them. */
function legMinutePrice(leg: TwimlLeg | { readonly kind: 'phone'; readonly digits: string }, tables: PriceTables): { micros: bigint; where: string } {
  const prices = tables.twilio.callMinuteMicros;
  if (leg.kind === 'phone') return destinationPrice(prices, 'twilio.callMinuteMicros', leg.digits);
  return { micros: BigInt(prices.default), where: `${leg.kind} (default price)` };
}

interface Legs {
  readonly micros: bigint;
  readonly detail: string;
}

/** Every leg of a TwiML plan for at most `callSeconds` (or its <Dial timeLimit>, when shorter), each started minute billed. */
function priceLegs(legs: readonly TwimlLeg[], callSeconds: number, tables: PriceTables): Legs {
  let micros = 0n;
  for (const leg of legs) {
    const seconds = leg.seconds === null ? callSeconds : Math.min(leg.seconds, callSeconds);
    micros += ceilDiv(BigInt(seconds), 60n) * legMinutePrice(leg, tables).micros;
  }
  return { micros, detail: legs.length === 0 ? '' : `; ${legs.length} dialled leg${legs.length === 1 ? '' : 's'}: ${micros}` };
}

/** A call's own leg: phone numbers by destination, SIP and client addresses at the default; other channels are not modelled. */
function firstLeg(destination: Destination, seconds: number, tables: PriceTables): (Legs & { readonly unmodelled: null }) | { readonly unmodelled: string } {
  if (destination.kind === 'channel' && destination.channel !== 'sip' && destination.channel !== 'client') {
    return { unmodelled: `calls to ${quote(destination.channel)} addresses are billed by that channel's rules, which are not modelled` };
  }
  const minutes = ceilDiv(BigInt(seconds), 60n);
  const { micros, where } = destination.kind === 'phone' ? legMinutePrice(destination, tables) : legMinutePrice({ kind: destination.channel === 'sip' ? 'sip' : 'client', seconds: null }, tables);
  return { micros: minutes * micros, detail: `call to ${where}: ${minutes} min (TimeLimit ${seconds} s) × ${micros}`, unmodelled: null };
}

/** Parameters that change neither what a call dials nor what it costs, or that only matter with a costly one. */
const CALL_PARAMETERS = lower([
  'To', 'From', 'CallerId', 'Method', 'FallbackMethod', 'StatusCallback', 'StatusCallbackEvent', 'StatusCallbackMethod', 'SendDigits', 'Timeout',
  'TimeLimit', 'SipAuthUsername', 'SipAuthPassword', 'Byoc', 'CallToken', 'ClientNotificationUrl', 'Trim', 'RecordingChannels',
  'RecordingStatusCallback', 'RecordingStatusCallbackEvent', 'RecordingStatusCallbackMethod', 'RecordingTrack', 'MachineDetectionTimeout',
  'MachineDetectionSpeechThreshold', 'MachineDetectionSpeechEndThreshold', 'MachineDetectionSilenceTimeout', 'AsyncAmd',
  'AsyncAmdStatusCallback', 'AsyncAmdStatusCallbackMethod', 'Url', 'Twiml', 'ApplicationSid',
]);
const COSTLY_CALL_PARAMETERS = {
  record: { harmless: ['false'], reason: 'turns on recording, billed per minute' },
  machinedetection: { harmless: [], reason: 'turns on answering machine detection, billed per call' },
  callreason: { harmless: [], reason: 'is for Branded Calling, billed per call' },
  fallbackurl: { harmless: [], reason: 'runs TwiML from a URL when the call fails, which can dial anything' },
};
const PARTICIPANT_PARAMETERS = lower([
  'To', 'From', 'CallerId', 'CallerDisplayName', 'Label', 'Timeout', 'TimeLimit', 'StatusCallback', 'StatusCallbackEvent', 'StatusCallbackMethod',
  'Muted', 'Beep', 'BeepOnExit', 'StartConferenceOnEnter', 'EndConferenceOnExit', 'EarlyMedia', 'MaxParticipants', 'Coaching', 'CallSidToCoach',
  'JitterBufferSize', 'ConferenceStatusCallback', 'ConferenceStatusCallbackEvent', 'ConferenceStatusCallbackMethod', 'ConferenceTrim', 'Region',
  'SipAuthUsername', 'SipAuthPassword', 'Byoc', 'CallToken', 'ClientNotificationUrl', 'Trim', 'RecordingChannels', 'RecordingStatusCallback',
  'RecordingStatusCallbackEvent', 'RecordingStatusCallbackMethod', 'RecordingTrack', 'ConferenceRecordingStatusCallback',
  'ConferenceRecordingStatusCallbackEvent', 'ConferenceRecordingStatusCallbackMethod', 'MachineDetectionTimeout', 'MachineDetectionSpeechThreshold',
  'MachineDetectionSpeechEndThreshold', 'MachineDetectionSilenceTimeout', 'AmdStatusCallback', 'AmdStatusCallbackMethod', 'WaitMethod',
]);
const COSTLY_PARTICIPANT_PARAMETERS = {
  record: { harmless: ['false'], reason: 'turns on recording, billed per minute' },
  conferencerecord: { harmless: ['false', 'do-not-record'], reason: 'turns on conference recording, billed per minute' },
  machinedetection: { harmless: [], reason: 'turns on answering machine detection, billed per call' },
  callreason: { harmless: [], reason: 'is for Branded Calling, billed per call' },
  waiturl: { harmless: [''], reason: 'plays TwiML from a URL while waiting' },
};

/** What runs on a call, from the parameters that choose its TwiML. */
function callProgram(pairs: readonly FormPair[], seconds: number, tables: PriceTables): Legs & { readonly unbounded: string | null } {
  const present = names(pairs);
  if (present.has('url') || present.has('applicationsid')) {
    // Twilio ignores Twiml when Url is given; an application's TwiML comes from its URL too.
    return { micros: 0n, detail: '', unbounded: 'the call runs TwiML fetched from its Url or ApplicationSid, which can dial anything' };
  }
  const twiml = singleParam(pairs, 'Twiml');
  if (twiml === undefined) return { micros: 0n, detail: '', unbounded: null };
  const plan = planTwiml(twiml);
  const legs = priceLegs(plan.legs, seconds, tables);
  return { ...legs, unbounded: plan.unbounded === null ? null : `in its Twiml, ${plan.unbounded}` };
}

function combine(key: KeyPricing, micros: bigint, detail: string, unbounded: string | null): CostEstimate {
  return unbounded === null ? priced(micros, detail) : perCallEstimate(key, unbounded, safe(micros));
}

/** A new call: its own leg and every leg its inline TwiML dials, each for TimeLimit. */
function priceCall(pairs: readonly FormPair[], key: KeyPricing, tables: PriceTables): CostEstimate {
  const destination = parseDestination(singleParam(pairs, 'To'));
  const seconds = timeLimitSeconds(pairs, tables);
  const first = firstLeg(destination, seconds, tables);
  const program = callProgram(pairs, seconds, tables);
  if (first.unmodelled !== null) return perCallEstimate(key, first.unmodelled, safe(program.micros));
  const unbounded = program.unbounded ?? unmodelledParameter(pairs, CALL_PARAMETERS, COSTLY_CALL_PARAMETERS);
  return combine(key, first.micros + program.micros, first.detail + program.detail, unbounded);
}

/** A conference participant: Twilio dials one new leg. */
function priceParticipant(pairs: readonly FormPair[], key: KeyPricing, tables: PriceTables): CostEstimate {
  const destination = parseDestination(singleParam(pairs, 'To'));
  const seconds = timeLimitSeconds(pairs, tables);
  const first = firstLeg(destination, seconds, tables);
  if (first.unmodelled !== null) return perCallEstimate(key, first.unmodelled);
  return combine(key, first.micros, first.detail, unmodelledParameter(pairs, PARTICIPANT_PARAMETERS, COSTLY_PARTICIPANT_PARAMETERS));
}

const HANG_UP_STATUSES = ['completed', 'canceled'];
/** What a pure hang-up may say besides Status: where to report it. */
const HANG_UP_PARAMETERS = lower(['Status', 'StatusCallback', 'StatusCallbackMethod']);
const CALL_UPDATE_PARAMETERS = lower(['Url', 'Method', 'Status', 'FallbackUrl', 'FallbackMethod', 'StatusCallback', 'StatusCallbackMethod', 'Twiml', 'TimeLimit']);

/**
 * Updating a live call. Hanging it up only ends costs; redirecting it to new TwiML opens whatever
 * that TwiML dials (priced like a new call's, for the default time limit: the request does not
 * say how long the call has left); a Url can dial anything; a new TimeLimit extends a call to a
 * destination the request does not name.
 */
function priceCallUpdate(pairs: readonly FormPair[], key: KeyPricing, tables: PriceTables): CostEstimate {
  const status = singleParam(pairs, 'Status');
  const present = names(pairs);
  if (status !== undefined && HANG_UP_STATUSES.includes(status) && [...present].every((name) => HANG_UP_PARAMETERS.has(name))) return FREE;
  const unknown = pairs.find((pair) => !CALL_UPDATE_PARAMETERS.has(pair.key.toLowerCase()));
  const seconds = timeLimitSeconds(pairs, tables);
  const program = callProgram(pairs, seconds, tables);
  const unbounded =
    program.unbounded ??
    (unknown !== undefined ? `parameter ${quote(unknown.key)} is not modelled` : null) ??
    (present.has('timelimit') ? "a new TimeLimit extends a live call to a destination the request does not name" : null) ??
    (present.has('fallbackurl') ? 'FallbackUrl runs TwiML from a URL when the update fails, which can dial anything' : null) ??
    (present.has('twiml') ? null : 'only hanging a call up (Status=completed or canceled) is known to be free');
  // Twiml that dials nothing (<Say>, <Hangup>) adds nothing to the call.
  if (unbounded === null && program.micros === 0n) return FREE;
  return combine(key, program.micros, `live call redirected to Twiml for up to ${seconds} s${program.detail}`, unbounded);
}

const CALLER_ID_PARAMETERS = lower(['PhoneNumber', 'FriendlyName', 'CallDelay', 'Extension', 'StatusCallback', 'StatusCallbackMethod']);

/** Validating a caller id: Twilio calls PhoneNumber to read out a code, for as long as the call lasts. */
function priceCallerIdVerification(pairs: readonly FormPair[], key: KeyPricing, tables: PriceTables): CostEstimate {
  const destination = parseDestination(singleParam(pairs, 'PhoneNumber'), 'PhoneNumber');
  if (destination.kind !== 'phone') throw malformed('PhoneNumber must be an E.164 number such as +14155550100');
  const seconds = tables.twilio.defaultCallTimeLimitSeconds;
  const minutes = ceilDiv(BigInt(seconds), 60n);
  const { micros, where } = legMinutePrice(destination, tables);
  return combine(key, minutes * micros, `verification call to ${where}: ${minutes} min (default time limit ${seconds} s) × ${micros}`, unmodelledParameter(pairs, CALLER_ID_PARAMETERS, {}));
}

// ---- Routes --------------------------------------------------------------------------------

/** Free when every parameter is one the rule lists, with one of its values. */
function priceFreeIf(rule: Extract<TwilioRule, { kind: 'free-if' }>, pairs: readonly FormPair[], key: KeyPricing): CostEstimate {
  const allowed = new Map(Object.entries(rule.params).map(([name, values]) => [name.toLowerCase(), values]));
  const seen = new Set<string>();
  let free = true;
  for (const { key: name, value } of pairs) {
    const lowerName = name.toLowerCase();
    // A repeated parameter has two readings (Status=stopped&Status=in-progress): refuse it rather than pick one.
    if (seen.has(lowerName)) throw malformed(`parameter ${quote(name)} is given more than once; it must be given once`);
    seen.add(lowerName);
    const values = allowed.get(lowerName);
    if (values === undefined || (values !== null && !values.includes(value))) free = false;
  }
  return free ? FREE : perCallEstimate(key, rule.otherwise);
}

function priceRoute(rule: TwilioRule, request: PricedRequest, key: KeyPricing, tables: PriceTables): CostEstimate {
  switch (rule.kind) {
    case 'free':
      return FREE;
    case 'per-call-estimate':
      return perCallEstimate(key, rule.reason);
    case 'free-if':
      return priceFreeIf(rule, readFormPairs(request), key);
    case 'message':
      return priceMessage(readFormPairs(request), key, tables);
    case 'call':
      return priceCall(readFormPairs(request), key, tables);
    case 'call-update':
      return priceCallUpdate(readFormPairs(request), key, tables);
    case 'participant':
      return priceParticipant(readFormPairs(request), key, tables);
    case 'caller-id-verification':
      return priceCallerIdVerification(readFormPairs(request), key, tables);
  }
}

/** Reads never move money; POST and DELETE follow the route list; Twilio's API has no other methods. */
export function estimateTwilio(request: PricedRequest, key: KeyPricing, tables: PriceTables): CostEstimate {
  if (request.method === 'GET' || request.method === 'HEAD') return FREE;
  if (request.method !== 'POST' && request.method !== 'DELETE') {
    return perCallEstimate(key, `Twilio's 2010-04-01 API has no ${quote(request.method)} routes the proxy knows`);
  }
  const route = matchTwilioRoute(request.method, request.segments);
  if (route === null) return perCallEstimate(key, `${request.method} on this path is not a Twilio route the proxy knows to be free or can price`);
  return priceRoute(route.rule, request, key, tables);
}

export function settleTwilio(_request: PricedRequest, estimate: CostEstimate, response: VendorResponse): Settlement {
  return settleFromEstimate(estimate, response, stringField(responseJson(response.body), 'sid'));
}
