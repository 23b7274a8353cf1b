/**
 * A simulated api.resend.com (emails) for integration tests: resend-node reaches it with
 * `new Resend(key, { baseUrl: sim.url })`.
 *
 * Faithful where the proxy depends on it: Bearer auth with the documented 401 missing_api_key /
 * 403 invalid_api_key errors, `{statusCode, message, name}` error bodies, single and batch sends
 * (up to 100, `x-batch-validation: strict | permissive`), and Idempotency-Key on both (replay of
 * the same payload, 409 invalid_idempotent_request for another, 409
 * concurrent_idempotent_requests while the first is in flight).
 */
import { IdempotencyStore, canonicalJson } from './idempotency-store.js';
import { resendId } from './random-ids.js';
import { jsonResponse, startHttpSimulator } from './simulator.js';
import type { HandlerResult, RequestContext, SimResponse, Simulator } from './simulator.js';
import { headerValue } from './wiretap.js';
import type { TappedRequest } from './wiretap.js';

export interface ResendSimulatorOptions {
  /** The only key accepted, as `Authorization: Bearer <key>`. */
  apiKey: string;
}

export interface ResendEmail {
  object: 'email';
  id: string;
  to: string[];
  from: string;
  created_at: string;
  subject: string;
  html: string | null;
  text: string | null;
  bcc: string[] | null;
  cc: string[] | null;
  reply_to: string[] | null;
  last_event: 'sent' | 'scheduled';
  scheduled_at: string | null;
  tags: unknown;
}

export interface ResendSimulator extends Simulator {
  readonly apiKey: string;
  /** Emails accepted so far, by id. */
  readonly objects: Map<string, ResendEmail>;
  reset(): void;
}

export const RESEND_MAX_BATCH = 100;
export const RESEND_MAX_RECIPIENTS = 50;
const MAX_IDEMPOTENCY_KEY_LENGTH = 256;

class ResendError extends Error {
  constructor(
    readonly statusCode: number,
    readonly errorName: string,
    message: string,
  ) {
    super(message);
  }
}

function commonHeaders(): Record<string, string> {
  return {
    'content-type': 'application/json; charset=utf-8',
    'ratelimit-limit': '2',
    'ratelimit-policy': '2;w=1',
    'ratelimit-remaining': '1',
    'ratelimit-reset': '1',
  };
}

function errorResponse(error: ResendError, headers: Record<string, string> = commonHeaders()): SimResponse {
  return jsonResponse(error.statusCode, { statusCode: error.statusCode, message: error.message, name: error.errorName }, headers);
}

function injectedFailure(status: number): SimResponse {
  if (status === 429) {
    const error = new ResendError(429, 'rate_limit_exceeded', 'Too many requests. You can only make 2 requests per second. See rate limit response headers for more information. Or contact support to increase rate limit.');
    return errorResponse(error, { ...commonHeaders(), 'ratelimit-remaining': '0', 'retry-after': '1' });
  }
  if (status >= 500) return errorResponse(new ResendError(status, 'internal_server_error', 'An unexpected error occurred.'));
  return errorResponse(new ResendError(status, 'application_error', `Simulated failure (HTTP ${status}).`));
}

/** Resend's timestamps: `2023-04-03 22:13:42.674981+00`. */
function resendTimestamp(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', '+00');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `to`/`cc`/`bcc`/`reply_to`: a string or an array of strings; normalised to an array. */
function addressList(email: Record<string, unknown>, field: string): string[] | null {
  const value = email[field];
  if (value === undefined || value === null) return null;
  const list = Array.isArray(value) ? value : [value];
  if (!list.every((item): item is string => typeof item === 'string')) {
    throw new ResendError(422, 'validation_error', `Invalid \`${field}\` field. It must be a string or an array of strings.`);
  }
  return list;
}

function requiredString(email: Record<string, unknown>, field: string): string {
  const value = email[field];
  if (value === undefined || value === null || value === '') throw new ResendError(422, 'missing_required_field', `Missing \`${field}\` field.`);
  if (typeof value !== 'string') throw new ResendError(422, 'validation_error', `Invalid \`${field}\` field. It must be a string.`);
  return value;
}

function optionalString(email: Record<string, unknown>, field: string): string | null {
  const value = email[field];
  return typeof value === 'string' ? value : null;
}

const ADDRESS = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;
const NAMED_ADDRESS = /^[^<>]*<([^\s@<>]+@[^\s@<>]+\.[^\s@<>]+)>$/;

/** Checks one email of a send or batch and returns what GET /emails/:id will show. */
function acceptEmail(value: unknown, inBatch: boolean): ResendEmail {
  if (!isRecord(value)) throw new ResendError(422, 'validation_error', 'Invalid email: expected an object.');
  const from = requiredString(value, 'from');
  if (!ADDRESS.test(from) && !NAMED_ADDRESS.test(from)) {
    throw new ResendError(422, 'validation_error', 'Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.');
  }
  if (value.to === undefined || value.to === null || value.to === '') throw new ResendError(422, 'missing_required_field', 'Missing `to` field.');
  const to = addressList(value, 'to') ?? [];
  if (to.length > RESEND_MAX_RECIPIENTS) {
    throw new ResendError(422, 'validation_error', `Too many recipients in the \`to\` field. The maximum is ${RESEND_MAX_RECIPIENTS}.`);
  }
  const subject = requiredString(value, 'subject');
  const html = optionalString(value, 'html');
  const text = optionalString(value, 'text');
  if (html === null && text === null && value.template === undefined) throw new ResendError(422, 'missing_required_field', 'Missing `html` or `text` field.');
  if (inBatch && (value.attachments !== undefined || value.scheduled_at !== undefined)) {
    throw new ResendError(422, 'validation_error', 'The `attachments` and `scheduled_at` fields are not supported for batch emails.');
  }
  const scheduledAt = optionalString(value, 'scheduled_at');
  return {
    object: 'email',
    id: resendId(),
    to,
    from,
    created_at: resendTimestamp(new Date()),
    subject,
    html,
    text,
    bcc: addressList(value, 'bcc'),
    cc: addressList(value, 'cc'),
    reply_to: addressList(value, 'reply_to'),
    last_event: scheduledAt === null ? 'sent' : 'scheduled',
    scheduled_at: scheduledAt,
    tags: value.tags ?? null,
  };
}

function parseJson(request: TappedRequest): unknown {
  try {
    return JSON.parse(request.body.toString('utf8'));
  } catch {
    throw new ResendError(400, 'validation_error', 'Invalid JSON in request body.');
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function startResendSimulator(options: ResendSimulatorOptions): Promise<ResendSimulator> {
  const objects = new Map<string, ResendEmail>();
  const idempotency = new IdempotencyStore();

  function store(email: ResendEmail): { id: string } {
    objects.set(email.id, email);
    return { id: email.id };
  }

  function sendOne(request: TappedRequest): unknown {
    return store(acceptEmail(parseJson(request), false));
  }

  /** strict: one bad email fails the batch; permissive: the good ones are sent, the bad listed. */
  function sendBatch(request: TappedRequest): unknown {
    const emails = parseJson(request);
    if (!Array.isArray(emails)) throw new ResendError(422, 'validation_error', 'The request body must be an array of emails.');
    if (emails.length === 0 || emails.length > RESEND_MAX_BATCH) {
      throw new ResendError(422, 'validation_error', `A batch must contain between 1 and ${RESEND_MAX_BATCH} emails.`);
    }
    const permissive = headerValue(request, 'x-batch-validation') === 'permissive';
    const accepted: ResendEmail[] = [];
    const errors: { index: number; message: string }[] = [];
    emails.forEach((email, index) => {
      try {
        accepted.push(acceptEmail(email, true));
      } catch (error) {
        if (!permissive || !(error instanceof ResendError)) throw error;
        errors.push({ index, message: error.message });
      }
    });
    const data = accepted.map(store);
    return permissive ? { data, errors } : { data };
  }

  function getEmail(id: string): ResendEmail {
    if (!UUID.test(id)) throw new ResendError(422, 'invalid_parameter', 'The `id` must be a valid UUID.');
    const email = objects.get(id);
    if (!email) throw new ResendError(404, 'not_found', 'Email not found');
    return email;
  }

  function route(request: TappedRequest): SimResponse {
    const { method, path } = request;
    const run = (): unknown => {
      if (path === '/emails' && method === 'POST') return sendOne(request);
      if (path === '/emails/batch' && method === 'POST') return sendBatch(request);
      const get = /^\/emails\/([^/]+)$/.exec(path);
      if (get && method === 'GET') return getEmail(get[1] ?? '');
      if (path === '/emails' || path === '/emails/batch' || get) throw new ResendError(405, 'method_not_allowed', 'Method not allowed');
      throw new ResendError(404, 'not_found', 'The requested endpoint does not exist.');
    };
    try {
      return jsonResponse(200, run(), commonHeaders());
    } catch (error) {
      if (error instanceof ResendError) return errorResponse(error);
      throw error;
    }
  }

  function authError(request: TappedRequest): ResendError | undefined {
    const match = /^Bearer\s+(\S+)$/i.exec((headerValue(request, 'authorization') ?? '').trim());
    if (!match) return new ResendError(401, 'missing_api_key', 'Missing API key in the authorization header. Include the following header in the request: Authorization: Bearer YOUR_API_KEY');
    if (match[1] !== options.apiKey) return new ResendError(403, 'invalid_api_key', 'API key is invalid');
    return undefined;
  }

  /** Replays or refuses a request under its Idempotency-Key; otherwise runs and stores it. */
  async function withIdempotency(request: TappedRequest, context: RequestContext, key: string): Promise<HandlerResult> {
    if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) return errorResponse(new ResendError(400, 'invalid_idempotency_key', 'The key must be between 1-256 chars.'));
    let payload: string;
    try {
      payload = canonicalJson(JSON.parse(request.body.toString('utf8')));
    } catch {
      payload = request.body.toString('base64');
    }
    const lookup = idempotency.begin(key, `${request.path} ${payload}`);
    if (lookup.kind === 'replay') return lookup.stored.response;
    if (lookup.kind === 'mismatch') return errorResponse(new ResendError(409, 'invalid_idempotent_request', 'Same idempotency key used with a different request payload.'));
    if (lookup.kind === 'in-flight') {
      return errorResponse(new ResendError(409, 'concurrent_idempotent_requests', 'Same idempotency key used while original request is still in progress.'));
    }
    try {
      const interrupted = await context.interrupt();
      if (interrupted) return interrupted;
      const response = route(request);
      if (response.status < 400 || response.status >= 500) lookup.commit({ response, originalRequestId: undefined });
      return response;
    } finally {
      lookup.release();
    }
  }

  async function handle(request: TappedRequest, context: RequestContext): Promise<HandlerResult> {
    const unauthenticated = authError(request);
    if (unauthenticated) return (await context.interrupt()) ?? errorResponse(unauthenticated);
    const key = request.method === 'POST' ? headerValue(request, 'idempotency-key') : undefined;
    if (key !== undefined) return withIdempotency(request, context, key);
    return (await context.interrupt()) ?? route(request);
  }

  const base = await startHttpSimulator({ handle, failureResponse: (status) => injectedFailure(status) });
  return {
    ...base,
    apiKey: options.apiKey,
    objects,
    reset() {
      objects.clear();
      idempotency.clear();
      base.wiretap.clear();
    },
  };
}
