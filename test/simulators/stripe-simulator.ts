/**
 * A simulated api.stripe.com (v1) for integration tests: the official stripe-node SDK can talk to
 * it unchanged (`host`, `port`, `protocol: 'http'`), and the wiretap shows what it sent.
 *
 * Faithful where the proxy depends on it: authentication and its error, Request-Id,
 * Stripe-Version echo, form-encoded bracket parameters, idempotency (replay with
 * Idempotent-Replayed, idempotency_error on different parameters, 409 while in flight), error
 * shapes and statuses per error type. Lenient where it would only get in the way: a PaymentIntent
 * confirmed without a payment method uses a test card, and unknown parameters are ignored.
 */
import { IdempotencyStore, canonicalJson } from './idempotency-store.js';
import type { StoredResponse } from './idempotency-store.js';
import { stripeRequestId } from './random-ids.js';
import { jsonResponse, startHttpSimulator } from './simulator.js';
import type { HandlerResult, RequestContext, SimResponse, Simulator } from './simulator.js';
import { parseStripeForm } from './stripe-form.js';
import type { FormObject } from './stripe-form.js';
import { StripeAccount } from './stripe-objects.js';
import type { StripeObject } from './stripe-objects.js';
import { StripeError, invalidRequest } from './stripe-params.js';
import { headerValue } from './wiretap.js';
import type { TappedRequest } from './wiretap.js';

export interface StripeSimulatorOptions {
  /** The only key accepted, as `Authorization: Bearer <key>` or Basic with the key as user. */
  secretKey: string;
}

export interface StripeSimulator extends Simulator {
  readonly secretKey: string;
  /** Every object created so far, by id (`cus_…`, `pi_…`, `ch_…`, `re_…`, `tr_…`, `po_…`). */
  readonly objects: Map<string, StripeObject>;
  /** Forgets objects, stored idempotent responses and the wiretap. */
  reset(): void;
}

/** Not a Stripe endpoint: answers 400 with every received header in the error, like a vendor leaking credentials. */
export const STRIPE_ECHO_HEADERS_PATH = '/v1/test_helpers/echo_headers';

const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

type RouteRun = (account: StripeAccount, params: FormObject, id: string) => unknown;
interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  pattern: RegExp;
  run: RouteRun;
}

const ROUTES: readonly Route[] = [
  { method: 'POST', pattern: /^\/v1\/customers$/, run: (a, p) => a.createCustomer(p) },
  { method: 'GET', pattern: /^\/v1\/customers\/([^/]+)$/, run: (a, _p, id) => a.find('customer', id, 'id') },
  { method: 'POST', pattern: /^\/v1\/customers\/([^/]+)$/, run: (a, p, id) => a.updateCustomer(id, p) },
  { method: 'DELETE', pattern: /^\/v1\/customers\/([^/]+)$/, run: (a, _p, id) => a.deleteCustomer(id) },
  { method: 'POST', pattern: /^\/v1\/payment_intents$/, run: (a, p) => a.createPaymentIntent(p) },
  { method: 'GET', pattern: /^\/v1\/payment_intents\/([^/]+)$/, run: (a, _p, id) => a.find('payment_intent', id, 'intent') },
  { method: 'POST', pattern: /^\/v1\/payment_intents\/([^/]+)$/, run: (a, p, id) => a.updatePaymentIntent(id, p) },
  { method: 'POST', pattern: /^\/v1\/payment_intents\/([^/]+)\/confirm$/, run: (a, p, id) => a.confirmPaymentIntent(id, p) },
  { method: 'POST', pattern: /^\/v1\/payment_intents\/([^/]+)\/capture$/, run: (a, p, id) => a.capturePaymentIntent(id, p) },
  { method: 'POST', pattern: /^\/v1\/payment_intents\/([^/]+)\/cancel$/, run: (a, p, id) => a.cancelPaymentIntent(id, p) },
  {
    method: 'POST',
    pattern: /^\/v1\/payment_intents\/([^/]+)\/increment_authorization$/,
    run: (a, p, id) => a.incrementAuthorization(id, p),
  },
  { method: 'POST', pattern: /^\/v1\/charges$/, run: (a, p) => a.createCharge(p) },
  { method: 'GET', pattern: /^\/v1\/charges\/([^/]+)$/, run: (a, _p, id) => a.find('charge', id, 'id') },
  { method: 'POST', pattern: /^\/v1\/charges\/([^/]+)\/capture$/, run: (a, p, id) => a.captureCharge(id, p) },
  { method: 'POST', pattern: /^\/v1\/refunds$/, run: (a, p) => a.createRefund(p) },
  { method: 'GET', pattern: /^\/v1\/refunds\/([^/]+)$/, run: (a, _p, id) => a.find('refund', id, 'id') },
  { method: 'POST', pattern: /^\/v1\/transfers$/, run: (a, p) => a.createTransfer(p) },
  { method: 'GET', pattern: /^\/v1\/transfers\/([^/]+)$/, run: (a, _p, id) => a.find('transfer', id, 'id') },
  { method: 'POST', pattern: /^\/v1\/payouts$/, run: (a, p) => a.createPayout(p) },
  { method: 'GET', pattern: /^\/v1\/payouts\/([^/]+)$/, run: (a, _p, id) => a.find('payout', id, 'id') },
];

/** What Stripe shows of a key in errors: its prefix and last four characters, never the rest. */
export function maskStripeKey(key: string): string {
  const prefix = /^(?:sk|rk|pk)_(?:test|live)_/.exec(key)?.[0] ?? '';
  const rest = key.slice(prefix.length);
  if (rest.length <= 4) return prefix + '*'.repeat(rest.length);
  return prefix + '*'.repeat(rest.length - 4) + rest.slice(-4);
}

/** The key from `Bearer <key>` or from Basic's user part; undefined when there is none. */
function presentedKey(request: TappedRequest): string | undefined {
  const authorization = headerValue(request, 'authorization');
  if (!authorization) return undefined;
  const [scheme = '', credentials = ''] = authorization.trim().split(/\s+/, 2);
  if (scheme.toLowerCase() === 'bearer') return credentials || undefined;
  if (scheme.toLowerCase() !== 'basic') return undefined;
  const decoded = Buffer.from(credentials, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return (colon === -1 ? decoded : decoded.slice(0, colon)) || undefined;
}

function authenticationError(request: TappedRequest, secretKey: string): StripeError | undefined {
  const key = presentedKey(request);
  if (key === secretKey) return undefined;
  const message =
    key === undefined
      ? "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/."
      : `Invalid API Key provided: ${maskStripeKey(key)}`;
  return invalidRequest(message, {}, 401);
}

/** Headers every Stripe response carries. */
function commonHeaders(request: TappedRequest, requestId: string): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'request-id': requestId,
    'cache-control': 'no-cache, no-store',
    'access-control-allow-origin': '*',
    server: 'nginx',
  };
  const version = headerValue(request, 'stripe-version');
  if (version) headers['stripe-version'] = version;
  const account = headerValue(request, 'stripe-account');
  if (account) headers['stripe-account'] = account;
  const idempotencyKey = headerValue(request, 'idempotency-key');
  if (idempotencyKey && request.method === 'POST') {
    headers['idempotency-key'] = idempotencyKey;
    headers['original-request'] = requestId;
  }
  return headers;
}

function renderError(error: StripeError, headers: Record<string, string>): SimResponse {
  const requestId = headers['request-id'] ?? '';
  const body = {
    ...error.body,
    ...(error.body.code ? { doc_url: `https://stripe.com/docs/error-codes/${error.body.code.replaceAll('_', '-')}` } : {}),
    request_log_url: `https://dashboard.stripe.com/test/logs/${requestId}?t=${Math.floor(Date.now() / 1000)}`,
  };
  const extra: Record<string, string> = error.status === 401 ? { 'www-authenticate': 'Basic realm="Stripe"' } : {};
  return jsonResponse(error.status, { error: body }, { ...headers, ...extra });
}

/** The answer for an injected failure, shaped like the error Stripe sends with that status. */
function injectedFailure(status: number): StripeError {
  if (status === 429) {
    return invalidRequest('Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.', { code: 'rate_limit' }, 429);
  }
  if (status === 402) {
    return new StripeError(402, { type: 'card_error', code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' });
  }
  if (status >= 500) {
    return new StripeError(status, {
      type: 'api_error',
      message: "Sorry, something went wrong. We've already been notified of the problem, but if you need any help, you can reach us at https://support.stripe.com/contact.",
    });
  }
  return invalidRequest(`Simulated failure (HTTP ${status}).`, {}, status);
}

function paramsOf(request: TappedRequest): FormObject {
  // GET/DELETE carry parameters in the query; a POST may too, and its body wins.
  const body = request.method === 'POST' ? request.body.toString('utf8') : '';
  return parseStripeForm([request.query, body].filter((part) => part !== '').join('&'));
}

function decodeId(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

function dispatch(account: StripeAccount, request: TappedRequest, params: FormObject, headers: Record<string, string>): SimResponse {
  for (const route of ROUTES) {
    if (route.method !== request.method) continue;
    const match = route.pattern.exec(request.path);
    if (!match) continue;
    try {
      return jsonResponse(200, route.run(account, params, decodeId(match[1] ?? '')), headers);
    } catch (error) {
      if (error instanceof StripeError) return renderError(error, headers);
      throw error;
    }
  }
  const message = `Unrecognized request URL (${request.method}: ${request.path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`;
  return renderError(invalidRequest(message, {}, 404), headers);
}

/** Stripe saves a result only once the endpoint ran: not for validation failures (400, 404). */
function isStored(status: number): boolean {
  return status < 400 || status === 402 || status >= 500;
}

function replay(stored: StoredResponse, requestId: string): SimResponse {
  const headers: Record<string, string> = { ...stored.response.headers, 'request-id': requestId, 'idempotent-replayed': 'true' };
  if (stored.originalRequestId) headers['original-request'] = stored.originalRequestId;
  return { ...stored.response, headers };
}

function echoHeaders(request: TappedRequest, headers: Record<string, string>): SimResponse {
  const authorization = headerValue(request, 'authorization') ?? '';
  const error = invalidRequest(`Echo for tests. Authorization: ${authorization}; headers: ${JSON.stringify(request.headers)}`, {
    received_headers: request.headers,
    received_body: request.body.toString('utf8'),
  });
  return renderError(error, { ...headers, 'x-echo-authorization': authorization });
}

export async function startStripeSimulator(options: StripeSimulatorOptions): Promise<StripeSimulator> {
  let account = new StripeAccount(options.secretKey.includes('_live_'));
  const idempotency = new IdempotencyStore();

  /** Runs the request under its Idempotency-Key: replays, refuses, or runs and stores it. */
  async function withIdempotency(request: TappedRequest, context: RequestContext, headers: Record<string, string>, run: () => SimResponse): Promise<HandlerResult> {
    const key = request.method === 'POST' ? headerValue(request, 'idempotency-key') : undefined;
    if (!key) return (await context.interrupt()) ?? run();
    if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
      return renderError(invalidRequest(`Invalid Idempotency-Key: keys must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters long.`), headers);
    }
    const fingerprint = `${request.method} ${request.path} ${canonicalJson(paramsOf(request))}`;
    const lookup = idempotency.begin(key, fingerprint);
    if (lookup.kind === 'replay') return replay(lookup.stored, headers['request-id'] ?? '');
    if (lookup.kind === 'mismatch') {
      const message = `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`;
      return renderError(new StripeError(400, { type: 'idempotency_error', message }), headers);
    }
    if (lookup.kind === 'in-flight') {
      const message = 'There is currently another in-progress request using this idempotent key. This often happens when you make two conflicting requests simultaneously. Retry the request later.';
      return renderError(invalidRequest(message, { code: 'idempotency_key_in_use' }, 409), headers);
    }
    try {
      // An injected outage happens in front of the API: nothing ran, so nothing is stored.
      const interrupted = await context.interrupt();
      if (interrupted) return interrupted;
      const response = run();
      if (isStored(response.status)) lookup.commit({ response, originalRequestId: headers['request-id'] });
      return response;
    } finally {
      lookup.release();
    }
  }

  async function handle(request: TappedRequest, context: RequestContext): Promise<HandlerResult> {
    const headers = commonHeaders(request, stripeRequestId());
    if (request.method === 'POST' && request.path === STRIPE_ECHO_HEADERS_PATH) {
      return (await context.interrupt()) ?? echoHeaders(request, headers);
    }
    const authError = authenticationError(request, options.secretKey);
    if (authError) return (await context.interrupt()) ?? renderError(authError, headers);
    return withIdempotency(request, context, headers, () => dispatch(account, request, paramsOf(request), headers));
  }

  const base = await startHttpSimulator({
    handle,
    failureResponse: (status, request) => renderError(injectedFailure(status), commonHeaders(request, stripeRequestId())),
  });
  return {
    ...base,
    secretKey: options.secretKey,
    get objects() {
      return account.objects;
    },
    reset() {
      account = new StripeAccount(options.secretKey.includes('_live_'));
      idempotency.clear();
      base.wiretap.clear();
    },
  };
}
