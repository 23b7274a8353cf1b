/**
 * A simulated api.twilio.com (2010-04-01 REST API: Messages and Calls) for integration tests.
 * twilio-node reaches it through a RequestClient subclass that rewrites the fixed
 * https://api.twilio.com base (see `SimulatorRequestClient` in the simulator tests).
 *
 * Faithful where the proxy depends on it: Basic auth with AccountSid:AuthToken (or an API key
 * SID:secret) that must match the account in the path, Twilio's `{code, message, more_info,
 * status}` errors, form-encoded parameters with repeated keys (MediaUrl), 201 on create, and
 * `num_segments` as a string counted with the GSM-7 / UCS-2 rules.
 */
import { randomHex, twilioSid } from './random-ids.js';
import { jsonResponse, startHttpSimulator } from './simulator.js';
import type { HandlerResult, RequestContext, SimResponse, Simulator } from './simulator.js';
import { countSegments } from './sms-segments.js';
import { headerValue } from './wiretap.js';
import type { TappedRequest } from './wiretap.js';

export interface TwilioSimulatorOptions {
  /** `AC` + 32 hex digits: twilio-node refuses anything else. */
  accountSid: string;
  authToken: string;
  /** Also accept this API key (Basic `SK…:secret`) for the account. */
  apiKey?: { sid: string; secret: string };
}

export type TwilioResource = Record<string, unknown> & { sid: string };

export interface TwilioSimulator extends Simulator {
  readonly accountSid: string;
  readonly authToken: string;
  /** Messages (`SM…`) and calls (`CA…`) created so far, by SID, as returned to the client. */
  readonly objects: Map<string, TwilioResource>;
  reset(): void;
}

export const TWILIO_API_VERSION = '2010-04-01';
/** Twilio refuses longer message bodies with error 21617. */
export const TWILIO_MAX_BODY_CHARS = 1600;

class TwilioError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function twilioErrorResponse(error: TwilioError, headers: Record<string, string>): SimResponse {
  const body = { code: error.code, message: error.message, more_info: `https://www.twilio.com/docs/errors/${error.code}`, status: error.status };
  const extra: Record<string, string> = error.status === 401 ? { 'www-authenticate': 'Basic realm="Twilio API"' } : {};
  return jsonResponse(error.status, body, { ...headers, ...extra });
}

function commonHeaders(): Record<string, string> {
  return {
    'content-type': 'application/json; charset=utf-8',
    'twilio-request-id': `RQ${randomHex(32)}`,
    'twilio-request-duration': '0.042',
    'twilio-concurrent-requests': '1',
    'x-api-domain': 'api.twilio.com',
    'x-home-region': 'us1',
    'x-powered-by': 'AT-5000',
    'x-shenanigans': 'none',
  };
}

/** The code Twilio uses for an HTTP status it sends itself (429 → 20429, 503 → 20503). */
function injectedFailure(status: number): TwilioError {
  const messages: Record<number, string> = { 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable' };
  return new TwilioError(status, 20_000 + status, messages[status] ?? `Simulated failure (HTTP ${status})`);
}

/** Twilio dates are RFC 2822 in GMT: `Thu, 24 Aug 2023 05:01:45 +0000`. */
export function rfc2822(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

/** North American numbers come back formatted as `(415) 555-0100`; others unchanged. */
function formatNumber(number: string): string {
  const match = /^\+1(\d{3})(\d{3})(\d{4})$/.exec(number);
  return match ? `(${match[1]}) ${match[2]}-${match[3]}` : number;
}

function basicCredentials(request: TappedRequest): { user: string; password: string } | undefined {
  const authorization = headerValue(request, 'authorization') ?? '';
  const match = /^Basic\s+(\S+)$/i.exec(authorization.trim());
  if (!match) return undefined;
  const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

interface FormParams {
  one(name: string): string | undefined;
  all(name: string): string[];
}

function formParams(request: TappedRequest): FormParams {
  const params = new URLSearchParams(request.body.toString('utf8'));
  return { one: (name) => params.get(name) ?? undefined, all: (name) => params.getAll(name) };
}

const ACCOUNT_PATH = /^\/2010-04-01\/Accounts\/([^/]+?)(\.json|\/.*)?$/;

export async function startTwilioSimulator(options: TwilioSimulatorOptions): Promise<TwilioSimulator> {
  const { accountSid, authToken } = options;
  const objects = new Map<string, TwilioResource>();
  const accountUri = `/${TWILIO_API_VERSION}/Accounts/${accountSid}`;

  function isAuthorised(request: TappedRequest, pathSid: string | undefined): boolean {
    const credentials = basicCredentials(request);
    if (!credentials || pathSid !== accountSid) return false;
    if (credentials.user === accountSid && credentials.password === authToken) return true;
    return options.apiKey !== undefined && credentials.user === options.apiKey.sid && credentials.password === options.apiKey.secret;
  }

  function createMessage(params: FormParams): TwilioResource {
    const to = params.one('To');
    if (!to) throw new TwilioError(400, 21604, "A 'To' phone number is required.");
    const from = params.one('From') || null;
    const messagingServiceSid = params.one('MessagingServiceSid') || null;
    if (!from && !messagingServiceSid) throw new TwilioError(400, 21603, "A 'From' phone number is required.");
    const body = params.one('Body') ?? '';
    const media = params.all('MediaUrl');
    if (body === '' && media.length === 0 && !params.one('ContentSid')) throw new TwilioError(400, 21602, 'Message body is required.');
    if ([...body].length > TWILIO_MAX_BODY_CHARS) {
      throw new TwilioError(400, 21617, `The concatenated message body exceeds the ${TWILIO_MAX_BODY_CHARS} character limit.`);
    }
    const sid = twilioSid('SM');
    const created = rfc2822(new Date());
    const uri = `${accountUri}/Messages/${sid}.json`;
    return {
      account_sid: accountSid,
      api_version: TWILIO_API_VERSION,
      body,
      date_created: created,
      date_sent: null,
      date_updated: created,
      direction: 'outbound-api',
      error_code: null,
      error_message: null,
      from,
      messaging_service_sid: messagingServiceSid,
      num_media: String(media.length),
      num_segments: String(countSegments(body).segments),
      price: null,
      price_unit: 'USD',
      sid,
      // A Messaging Service picks the sender later, so such messages start as "accepted".
      status: from ? 'queued' : 'accepted',
      subresource_uris: { media: `${accountUri}/Messages/${sid}/Media.json` },
      to,
      uri,
    };
  }

  function createCall(params: FormParams): TwilioResource {
    const to = params.one('To');
    if (!to) throw new TwilioError(400, 21201, "No 'To' number is specified");
    const from = params.one('From');
    if (!from) throw new TwilioError(400, 21213, "No 'From' number is specified");
    if (!params.one('Url') && !params.one('Twiml') && !params.one('ApplicationSid')) throw new TwilioError(400, 21205, 'Url parameter is required.');
    const sid = twilioSid('CA');
    const created = rfc2822(new Date());
    const uri = `${accountUri}/Calls/${sid}.json`;
    const sub = (name: string): string => `${accountUri}/Calls/${sid}/${name}.json`;
    return {
      account_sid: accountSid,
      annotation: null,
      answered_by: null,
      api_version: TWILIO_API_VERSION,
      caller_name: null,
      date_created: created,
      date_updated: created,
      direction: 'outbound-api',
      duration: null,
      end_time: null,
      forwarded_from: null,
      from,
      from_formatted: formatNumber(from),
      group_sid: null,
      parent_call_sid: null,
      phone_number_sid: twilioSid('PN'),
      price: null,
      price_unit: 'USD',
      queue_time: '0',
      sid,
      start_time: null,
      status: 'queued',
      subresource_uris: {
        feedback: sub('Feedback'),
        notifications: sub('Notifications'),
        recordings: sub('Recordings'),
        streams: sub('Streams'),
        payments: sub('Payments'),
        events: sub('Events'),
        siprec: sub('Siprec'),
        transcriptions: sub('Transcriptions'),
        user_defined_message_subscriptions: sub('UserDefinedMessageSubscriptions'),
        user_defined_messages: sub('UserDefinedMessages'),
      },
      to,
      to_formatted: formatNumber(to),
      trunk_sid: null,
      uri,
    };
  }

  function account(): TwilioResource {
    return {
      auth_token: authToken,
      date_created: rfc2822(new Date(0)),
      date_updated: rfc2822(new Date(0)),
      friendly_name: 'Keybrake simulator',
      owner_account_sid: accountSid,
      sid: accountSid,
      status: 'active',
      subresource_uris: { messages: `${accountUri}/Messages.json`, calls: `${accountUri}/Calls.json` },
      type: 'Full',
      uri: `${accountUri}.json`,
    };
  }

  function fetchStored(request: TappedRequest, sid: string): TwilioResource {
    const found = objects.get(sid);
    if (!found) throw new TwilioError(404, 20404, `The requested resource ${request.path} was not found`);
    return found;
  }

  function store(resource: TwilioResource): TwilioResource {
    objects.set(resource.sid, resource);
    return resource;
  }

  /** Routes below /2010-04-01/Accounts/{sid}; `rest` is what follows the sid. */
  function route(request: TappedRequest, rest: string): { status: number; body: unknown } {
    const { method } = request;
    if (method === 'GET' && rest === '.json') return { status: 200, body: account() };
    if (method === 'POST' && rest === '/Messages.json') return { status: 201, body: store(createMessage(formParams(request))) };
    if (method === 'POST' && rest === '/Calls.json') return { status: 201, body: store(createCall(formParams(request))) };
    const fetch = /^\/(Messages|Calls)\/((?:SM|MM|CA)[0-9a-f]{32})\.json$/.exec(rest);
    if (method === 'GET' && fetch) return { status: 200, body: fetchStored(request, fetch[2] ?? '') };
    throw new TwilioError(404, 20404, `The requested resource ${request.path} was not found`);
  }

  async function handle(request: TappedRequest, context: RequestContext): Promise<HandlerResult> {
    const interrupted = await context.interrupt();
    if (interrupted) return interrupted;
    const headers = commonHeaders();
    const match = ACCOUNT_PATH.exec(request.path);
    try {
      if (!match) throw new TwilioError(404, 20404, `The requested resource ${request.path} was not found`);
      if (!isAuthorised(request, match[1])) throw new TwilioError(401, 20003, 'Authenticate');
      const { status, body } = route(request, match[2] ?? '');
      return jsonResponse(status, body, headers);
    } catch (error) {
      if (error instanceof TwilioError) return twilioErrorResponse(error, headers);
      throw error;
    }
  }

  const base = await startHttpSimulator({ handle, failureResponse: (status) => twilioErrorResponse(injectedFailure(status), commonHeaders()) });
  return {
    ...base,
    accountSid,
    authToken,
    objects,
    reset() {
      objects.clear();
      base.wiretap.clear();
    },
  };
}
