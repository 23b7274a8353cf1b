/**
 * Twilio's cost model (the 2010-04-01 REST API, the only Twilio path space the proxy serves).
 * Messages cost segments × the destination's per-segment price, or one MMS; calls cost the
 * minutes of their TimeLimit × the destination's per-minute price. Twilio prices a message or a
 * call only after it happened (asynchronously), so the estimate is what settles.
 */
import { ceilDiv } from './currency.js';
import { readFormPairs, singleParam, type FormPair } from './form-body.js';
import { MAX_CALL_TIME_LIMIT_SECONDS, priceForDestination, type CountryPrices, type PriceTables } from './price-tables.js';
import { FREE, malformed, perCallEstimate } from './refusal.js';
import { responseJson, settleFromEstimate, stringField } from './settlement.js';
import { countSegments } from './sms-segments.js';
import type { CostEstimate, KeyPricing, PricedRequest, Settlement, VendorResponse } from './types.js';
import { quote } from '../quote.js';

export const MAX_BODY_CHARACTERS = 1_600;
const E164 = /^\+([1-9]\d{1,14})$/;
/** `whatsapp:+1…`, `messenger:…`, `client:alice`, `sip:bob@example.com`: not a phone number. */
const CHANNEL_ADDRESS = /^([A-Za-z][A-Za-z0-9+.-]*):./;
const SECONDS = /^\d{1,6}$/;

type Destination = { readonly kind: 'phone'; readonly digits: string } | { readonly kind: 'channel'; readonly channel: string };

function parseDestination(to: string | undefined): Destination {
  if (to === undefined || to === '') throw malformed('To is required');
  const phone = E164.exec(to);
  if (phone !== null) return { kind: 'phone', digits: phone[1] ?? '' };
  const channel = CHANNEL_ADDRESS.exec(to);
  if (channel !== null) return { kind: 'channel', channel: (channel[1] ?? '').toLowerCase() };
  throw malformed(`To must be an E.164 number such as +14155550100, got ${quote(to)}`);
}

function destinationPrice(prices: CountryPrices, digits: string): { micros: number; where: string } {
  const { micros, prefix } = priceForDestination(prices, digits);
  return { micros, where: prefix === null ? `+${digits} (default price)` : `+${prefix}` };
}

function priced(micros: bigint, detail: string): CostEstimate {
  if (micros > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed('the price is out of range');
  return { kind: 'priced', micros: Number(micros), amount: null, currency: null, detail };
}

function priceMessage(pairs: readonly FormPair[], key: KeyPricing, tables: PriceTables): CostEstimate {
  const destination = parseDestination(singleParam(pairs, 'To'));
  const body = singleParam(pairs, 'Body');
  const contentSid = singleParam(pairs, 'ContentSid');
  const mediaUrls = pairs.filter((pair) => pair.key.toLowerCase() === 'mediaurl');
  if (body !== undefined && [...body].length > MAX_BODY_CHARACTERS) throw malformed(`Body is longer than Twilio's ${MAX_BODY_CHARACTERS} characters`);
  if (mediaUrls.some((pair) => pair.value === '')) throw malformed('MediaUrl must not be empty');
  if (destination.kind === 'channel') {
    return perCallEstimate(key, `messages to ${destination.channel}: addresses are billed by that channel's rules, which are not modelled`);
  }
  if (contentSid !== undefined && contentSid !== '') return perCallEstimate(key, "a ContentSid message's length is the template's, which the request does not state");
  if (mediaUrls.length > 0) {
    // Twilio bills an MMS per message, whatever the text and however many media.
    const { micros, where } = destinationPrice(tables.twilio.mmsMicros, destination.digits);
    return priced(BigInt(micros), `MMS to ${where}: 1 × ${micros}`);
  }
  if (body === undefined || body === '') throw malformed('a message needs Body, MediaUrl or ContentSid');
  const { segments, encoding } = countSegments(body);
  const { micros, where } = destinationPrice(tables.twilio.smsSegmentMicros, destination.digits);
  return priced(BigInt(segments) * BigInt(micros), `SMS to ${where}: ${segments} ${encoding} segment${segments === 1 ? '' : 's'} × ${micros}`);
}

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

/** A call (or a conference participant, which dials one): every started minute of TimeLimit is billed. */
function priceCall(pairs: readonly FormPair[], tables: PriceTables): CostEstimate {
  const destination = parseDestination(singleParam(pairs, 'To'));
  const seconds = timeLimitSeconds(pairs, tables);
  const minutes = ceilDiv(BigInt(seconds), 60n);
  const prices = tables.twilio.callMinuteMicros;
  // SIP and client legs are cheaper than any phone destination: the unknown-country default bounds them.
  const { micros, where } =
    destination.kind === 'phone' ? destinationPrice(prices, destination.digits) : { micros: prices.default, where: `${destination.channel}: (default price)` };
  return priced(minutes * BigInt(micros), `call to ${where}: ${minutes} min (TimeLimit ${seconds} s) × ${micros}`);
}

type TwilioResource = 'message' | 'call' | 'number' | null;

/** Which money-moving resource a POST creates; null for anything else (free). */
function resourceOf(segments: readonly string[]): TwilioResource {
  const [version, accounts, , resource, ...rest] = segments;
  if (version !== '2010-04-01' || accounts !== 'Accounts' || resource === undefined) return null;
  const name = resource.replace(/\.[A-Za-z]+$/, '');
  if (rest.length === 0 && name === 'Messages') return 'message';
  if (rest.length === 0 && name === 'Calls') return 'call';
  // Buying a phone number: IncomingPhoneNumbers, or its Local/Mobile/TollFree lists.
  if (name === 'IncomingPhoneNumbers' && (rest.length === 0 || (rest.length === 1 && /^(?:Local|Mobile|TollFree)(?:\.[A-Za-z]+)?$/.test(rest[0] ?? '')))) return 'number';
  // Adding a participant to a conference dials a new outbound leg.
  if (name === 'Conferences' && rest.length === 2 && (rest[1] ?? '').replace(/\.[A-Za-z]+$/, '') === 'Participants') return 'call';
  return null;
}

export function estimateTwilio(request: PricedRequest, key: KeyPricing, tables: PriceTables): CostEstimate {
  if (request.method !== 'POST') return FREE;
  const resource = resourceOf(request.segments);
  if (resource === null) return FREE;
  if (resource === 'number') return perCallEstimate(key, 'buying a phone number costs its monthly rental, which is not modelled');
  const pairs = readFormPairs(request);
  return resource === 'message' ? priceMessage(pairs, key, tables) : priceCall(pairs, tables);
}

export function settleTwilio(_request: PricedRequest, estimate: CostEstimate, response: VendorResponse): Settlement {
  return settleFromEstimate(estimate, response, stringField(responseJson(response.body), 'sid'));
}
