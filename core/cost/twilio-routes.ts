/**
 * Every POST and DELETE route of Twilio's 2010-04-01 API (read off twilio-node 6's
 * lib/rest/api/v2010), each with how the proxy prices it. Fail closed: a route missing from this
 * list is priced by the key's per-call estimate, never free, so an endpoint Twilio adds tomorrow
 * does not pass for a free one. docs/pricing.md (Twilio) shows the same table; a unit test holds
 * the two together. Pure data and a matcher.
 */
import { RouteTable } from './route-table.js';


/**
 * - `message`, `call`, `call-update`, `participant`, `caller-id-verification`: priced from the
 *   request by twilio.ts.
 * - `free`: known to move no money.
 * - `free-if`: free when every parameter is one of `params` (with one of its listed values; null:
 *   any value), else the per-call estimate for `otherwise`. A stop or a hang-up is free; anything
 *   else the same route does may not be.
 * - `per-call-estimate`: the request does not show what the call will cost (or enables spending
 *   the proxy never sees): the key's per-call estimate, refused without one.
 */
export type TwilioRule =
  | { readonly kind: 'message' | 'call' | 'call-update' | 'participant' | 'caller-id-verification' | 'free' }
  | { readonly kind: 'free-if'; readonly params: Readonly<Record<string, readonly string[] | null>>; readonly otherwise: string }
  | { readonly kind: 'per-call-estimate'; readonly reason: string };

export interface TwilioRoute {
  readonly method: 'POST' | 'DELETE';
  /** Under /2010-04-01, `*` for one path segment; a trailing `.json` may be left off. */
  readonly path: string;
  readonly rule: TwilioRule;
}

const FREE: TwilioRule = { kind: 'free' };
const perCall = (reason: string): TwilioRule => ({ kind: 'per-call-estimate', reason });
const freeIf = (params: Record<string, readonly string[] | null>, otherwise: string): TwilioRule => ({ kind: 'free-if', params, otherwise });

const STOPPED = { Status: ['stopped'] };
const REROUTES_INBOUND = 'changes where inbound calls and messages go (TwiML URLs): what they then cost is never seen by the proxy';
const GRANTS_SIP_CALLING = 'lets a SIP endpoint place calls through a domain, outside any vault key';

export const TWILIO_ROUTES: readonly TwilioRoute[] = [
  // Accounts. A subaccount's credentials come back in the answer and spend outside any cap.
  { method: 'POST', path: 'Accounts.json', rule: perCall('creates a subaccount whose credentials spend outside any vault key') },
  { method: 'POST', path: 'Accounts/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/Addresses.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/Addresses/*.json', rule: FREE },
  { method: 'DELETE', path: 'Accounts/*/Addresses/*.json', rule: FREE },
  // A new application routes nothing until a number or a call uses it (both priced here).
  { method: 'POST', path: 'Accounts/*/Applications.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/Applications/*.json', rule: freeIf({ FriendlyName: null }, REROUTES_INBOUND) },
  { method: 'DELETE', path: 'Accounts/*/Applications/*.json', rule: FREE },

  // Calls and what runs on them.
  { method: 'POST', path: 'Accounts/*/Calls.json', rule: { kind: 'call' } },
  { method: 'POST', path: 'Accounts/*/Calls/*.json', rule: { kind: 'call-update' } },
  { method: 'DELETE', path: 'Accounts/*/Calls/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/Calls/*/Payments.json', rule: perCall('a <Pay> session charges a card through a payment connector, which is not modelled') },
  { method: 'POST', path: 'Accounts/*/Calls/*/Payments/*.json', rule: perCall('completing a <Pay> session charges a card through a payment connector, which is not modelled') },
  { method: 'POST', path: 'Accounts/*/Calls/*/Recordings.json', rule: perCall('recording is billed per minute until the call ends, which the request does not say') },
  { method: 'POST', path: 'Accounts/*/Calls/*/Recordings/*.json', rule: freeIf({ Status: ['stopped', 'paused'], PauseBehavior: null }, 'resuming a recording is billed per minute') },
  { method: 'DELETE', path: 'Accounts/*/Calls/*/Recordings/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/Calls/*/Siprec.json', rule: perCall('SIPREC is billed per minute until the call ends') },
  { method: 'POST', path: 'Accounts/*/Calls/*/Siprec/*.json', rule: freeIf(STOPPED, 'only stopping SIPREC is known to be free') },
  { method: 'POST', path: 'Accounts/*/Calls/*/Streams.json', rule: perCall('Media Streams are billed per minute until the call ends') },
  { method: 'POST', path: 'Accounts/*/Calls/*/Streams/*.json', rule: freeIf(STOPPED, 'only stopping a stream is known to be free') },
  { method: 'POST', path: 'Accounts/*/Calls/*/Transcriptions.json', rule: perCall('real-time transcription is billed per minute until the call ends') },
  { method: 'POST', path: 'Accounts/*/Calls/*/Transcriptions/*.json', rule: freeIf(STOPPED, 'only stopping a transcription is known to be free') },
  { method: 'POST', path: 'Accounts/*/Calls/*/UserDefinedMessageSubscriptions.json', rule: perCall('Voice SDK user-defined messages are not known to be free') },
  { method: 'DELETE', path: 'Accounts/*/Calls/*/UserDefinedMessageSubscriptions/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/Calls/*/UserDefinedMessages.json', rule: perCall('Voice SDK user-defined messages are not known to be free') },

  // Conferences.
  { method: 'POST', path: 'Accounts/*/Conferences/*.json', rule: freeIf({ Status: ['completed'] }, 'only ending a conference is known to be free; announcements run TwiML from a URL') },
  { method: 'POST', path: 'Accounts/*/Conferences/*/Participants.json', rule: { kind: 'participant' } },
  {
    method: 'POST',
    path: 'Accounts/*/Conferences/*/Participants/*.json',
    rule: freeIf(
      { Muted: null, Hold: null, BeepOnExit: null, EndConferenceOnExit: null, Coaching: null, CallSidToCoach: null },
      'hold, wait and announcement URLs run TwiML the proxy cannot see',
    ),
  },
  { method: 'DELETE', path: 'Accounts/*/Conferences/*/Participants/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/Conferences/*/Recordings/*.json', rule: freeIf({ Status: ['stopped', 'paused'], PauseBehavior: null }, 'resuming a recording is billed per minute') },
  { method: 'DELETE', path: 'Accounts/*/Conferences/*/Recordings/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/ConnectApps/*.json', rule: FREE },
  { method: 'DELETE', path: 'Accounts/*/ConnectApps/*.json', rule: FREE },

  // Phone numbers. Buying one costs its monthly rental; reconfiguring one reroutes inbound traffic.
  { method: 'POST', path: 'Accounts/*/IncomingPhoneNumbers.json', rule: perCall('buying a phone number costs its monthly rental, which is not modelled') },
  { method: 'POST', path: 'Accounts/*/IncomingPhoneNumbers/Local.json', rule: perCall('buying a phone number costs its monthly rental, which is not modelled') },
  { method: 'POST', path: 'Accounts/*/IncomingPhoneNumbers/Mobile.json', rule: perCall('buying a phone number costs its monthly rental, which is not modelled') },
  { method: 'POST', path: 'Accounts/*/IncomingPhoneNumbers/TollFree.json', rule: perCall('buying a phone number costs its monthly rental, which is not modelled') },
  { method: 'POST', path: 'Accounts/*/IncomingPhoneNumbers/*.json', rule: freeIf({ FriendlyName: null }, REROUTES_INBOUND) },
  { method: 'DELETE', path: 'Accounts/*/IncomingPhoneNumbers/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/IncomingPhoneNumbers/*/AssignedAddOns.json', rule: perCall('Marketplace add-ons are billed per use') },
  { method: 'DELETE', path: 'Accounts/*/IncomingPhoneNumbers/*/AssignedAddOns/*.json', rule: FREE },

  // API keys: a new key's secret comes back in the answer and spends outside any cap.
  { method: 'POST', path: 'Accounts/*/Keys.json', rule: perCall('creates an API key whose secret spends outside any vault key') },
  { method: 'POST', path: 'Accounts/*/Keys/*.json', rule: FREE },
  { method: 'DELETE', path: 'Accounts/*/Keys/*.json', rule: FREE },

  // Messages.
  { method: 'POST', path: 'Accounts/*/Messages.json', rule: { kind: 'message' } },
  // Redacting a message (Body='') or canceling a scheduled one; Twilio accepts nothing else here.
  { method: 'POST', path: 'Accounts/*/Messages/*.json', rule: freeIf({ Body: [''], Status: ['canceled'] }, 'only redacting (Body empty) or canceling a message is known to be free') },
  { method: 'DELETE', path: 'Accounts/*/Messages/*.json', rule: FREE },
  { method: 'DELETE', path: 'Accounts/*/Messages/*/Media/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/Messages/*/Feedback.json', rule: FREE },

  // Verifying a caller id: Twilio calls the number and reads out a code.
  { method: 'POST', path: 'Accounts/*/OutgoingCallerIds.json', rule: { kind: 'caller-id-verification' } },
  { method: 'POST', path: 'Accounts/*/OutgoingCallerIds/*.json', rule: FREE },
  { method: 'DELETE', path: 'Accounts/*/OutgoingCallerIds/*.json', rule: FREE },

  // Queues. Dequeuing a member sends its call into TwiML from a URL.
  { method: 'POST', path: 'Accounts/*/Queues.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/Queues/*.json', rule: FREE },
  { method: 'DELETE', path: 'Accounts/*/Queues/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/Queues/*/Members/*.json', rule: perCall('dequeuing a caller runs TwiML from a URL, which can dial anything') },

  // Recordings and transcriptions: deleting only ever ends storage costs.
  { method: 'DELETE', path: 'Accounts/*/Recordings/*.json', rule: FREE },
  { method: 'DELETE', path: 'Accounts/*/Recordings/*/AddOnResults/*.json', rule: FREE },
  { method: 'DELETE', path: 'Accounts/*/Recordings/*/AddOnResults/*/Payloads/*.json', rule: FREE },
  { method: 'DELETE', path: 'Accounts/*/Recordings/*/Transcriptions/*.json', rule: FREE },
  { method: 'DELETE', path: 'Accounts/*/Transcriptions/*.json', rule: FREE },

  // SIP. Named lists are free; what grants calling rights (credentials, addresses, mappings to a
  // domain) or routes SIP calls into TwiML (a domain's URLs) spends outside any vault key.
  { method: 'POST', path: 'Accounts/*/SIP/CredentialLists.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/SIP/CredentialLists/*.json', rule: FREE },
  { method: 'DELETE', path: 'Accounts/*/SIP/CredentialLists/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/SIP/CredentialLists/*/Credentials.json', rule: perCall(GRANTS_SIP_CALLING) },
  { method: 'POST', path: 'Accounts/*/SIP/CredentialLists/*/Credentials/*.json', rule: perCall(GRANTS_SIP_CALLING) },
  { method: 'DELETE', path: 'Accounts/*/SIP/CredentialLists/*/Credentials/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/SIP/Domains.json', rule: perCall('a SIP domain runs TwiML from its URLs for calls the proxy never sees') },
  { method: 'POST', path: 'Accounts/*/SIP/Domains/*.json', rule: freeIf({ FriendlyName: null }, 'a SIP domain runs TwiML from its URLs for calls the proxy never sees') },
  { method: 'DELETE', path: 'Accounts/*/SIP/Domains/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/SIP/Domains/*/Auth/Calls/CredentialListMappings.json', rule: perCall(GRANTS_SIP_CALLING) },
  { method: 'DELETE', path: 'Accounts/*/SIP/Domains/*/Auth/Calls/CredentialListMappings/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/SIP/Domains/*/Auth/Calls/IpAccessControlListMappings.json', rule: perCall(GRANTS_SIP_CALLING) },
  { method: 'DELETE', path: 'Accounts/*/SIP/Domains/*/Auth/Calls/IpAccessControlListMappings/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/SIP/Domains/*/Auth/Registrations/CredentialListMappings.json', rule: perCall(GRANTS_SIP_CALLING) },
  { method: 'DELETE', path: 'Accounts/*/SIP/Domains/*/Auth/Registrations/CredentialListMappings/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/SIP/Domains/*/CredentialListMappings.json', rule: perCall(GRANTS_SIP_CALLING) },
  { method: 'DELETE', path: 'Accounts/*/SIP/Domains/*/CredentialListMappings/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/SIP/Domains/*/IpAccessControlListMappings.json', rule: perCall(GRANTS_SIP_CALLING) },
  { method: 'DELETE', path: 'Accounts/*/SIP/Domains/*/IpAccessControlListMappings/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/SIP/IpAccessControlLists.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/SIP/IpAccessControlLists/*.json', rule: FREE },
  { method: 'DELETE', path: 'Accounts/*/SIP/IpAccessControlLists/*.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/SIP/IpAccessControlLists/*/IpAddresses.json', rule: perCall(GRANTS_SIP_CALLING) },
  { method: 'POST', path: 'Accounts/*/SIP/IpAccessControlLists/*/IpAddresses/*.json', rule: perCall(GRANTS_SIP_CALLING) },
  { method: 'DELETE', path: 'Accounts/*/SIP/IpAccessControlLists/*/IpAddresses/*.json', rule: FREE },

  // Short codes: their SmsUrl routes inbound messages into TwiML that can reply (billed).
  { method: 'POST', path: 'Accounts/*/SMS/ShortCodes/*.json', rule: freeIf({ FriendlyName: null }, REROUTES_INBOUND) },

  // Signing keys sign access tokens for Voice/Video SDK clients, which call outside any cap.
  { method: 'POST', path: 'Accounts/*/SigningKeys.json', rule: perCall('creates a signing key whose secret spends outside any vault key') },
  { method: 'POST', path: 'Accounts/*/SigningKeys/*.json', rule: FREE },
  { method: 'DELETE', path: 'Accounts/*/SigningKeys/*.json', rule: FREE },

  // Network Traversal Service: TURN relay is billed per GB for as long as the token lives.
  { method: 'POST', path: 'Accounts/*/Tokens.json', rule: perCall('TURN relay through these tokens is billed per GB, which the request does not bound') },

  // Usage triggers only call a webhook.
  { method: 'POST', path: 'Accounts/*/Usage/Triggers.json', rule: FREE },
  { method: 'POST', path: 'Accounts/*/Usage/Triggers/*.json', rule: FREE },
  { method: 'DELETE', path: 'Accounts/*/Usage/Triggers/*.json', rule: FREE },
];

/** A route's last segment without `.json` (Twilio answers the same resource in XML without it). */
function stem(segment: string): string {
  return segment.endsWith('.json') ? segment.slice(0, -'.json'.length) : segment;
}

/** Every route, its last segment stemmed; each starts with a literal resource (`Accounts`). */
const TABLE = new RouteTable(
  TWILIO_ROUTES.map((route) => ({ method: route.method, segments: stemmed(route.path.split('/')), value: route })),
  1,
);

function stemmed(segments: readonly string[]): string[] {
  return segments.map((segment, i) => (i === segments.length - 1 ? stem(segment) : segment));
}

/**
 * The route a request's canonical segments (['2010-04-01', 'Accounts', 'AC…', 'Calls.json'])
 * match, or null. Where a wildcard and a literal both match (`IncomingPhoneNumbers/Local.json`
 * and `IncomingPhoneNumbers/*.json`), the route with more literal segments wins.
 */
export function matchTwilioRoute(method: string, segments: readonly string[]): TwilioRoute | null {
  const [version, ...rest] = segments;
  if (version !== '2010-04-01' || rest.length === 0) return null;
  return TABLE.find(method, stemmed(rest)) ?? null;
}

/** How docs/pricing.md (Twilio) writes a rule, so a test can compare the two. */
export function describeTwilioRule(rule: TwilioRule): string {
  switch (rule.kind) {
    case 'message':
      return 'priced: message';
    case 'call':
      return 'priced: call';
    case 'call-update':
      return 'priced: live-call update';
    case 'participant':
      return 'priced: conference participant';
    case 'caller-id-verification':
      return 'priced: caller-id verification call';
    case 'free':
      return 'free';
    case 'free-if': {
      const params = Object.entries(rule.params).map(([name, values]) => (values === null ? name : `${name}=${values.map((v) => (v === '' ? "''" : v)).join('|')}`));
      return `free if only ${params.join(', ')}; else per-call estimate: ${rule.otherwise}`;
    }
    case 'per-call-estimate':
      return `per-call estimate: ${rule.reason}`;
  }
}
