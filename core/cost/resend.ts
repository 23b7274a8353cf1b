/**
 * Resend's cost model. Resend counts every recipient of an email towards the quota (to, cc and
 * bcc alike), so an email costs one `emailMicros` per recipient: for a single `to` that is the
 * per-email price, and for many it is the conservative reading. It fails closed, as Stripe's and
 * Twilio's do: reads are free, and a write is free only when RESEND_ROUTES says so; sending a
 * broadcast to a segment, replying from an inbox, triggering automations or minting an API key
 * (which sends outside the proxy) are priced by the key's per-call estimate, and so is any
 * route not listed. The routes are resend-node's (node_modules/resend): docs/pricing.md.
 */
import type { PriceTables } from './price-tables.js';
import { RouteTable } from './route-table.js';
import { FREE, malformed, perCallEstimate } from './refusal.js';
import { isRecord, responseJson, settleFromEstimate, stringField } from './settlement.js';
import { isJsonArray, isJsonObject, parseStrictJson, type JsonValue } from './strict-json.js';
import type { CostEstimate, KeyPricing, PricedRequest, Settlement, VendorResponse } from './types.js';

export const MAX_BATCH_EMAILS = 100;
const RECIPIENT_FIELDS = ['to', 'cc', 'bcc'] as const;

/**
 * Recipients in one address string. Each address has one '@': counting them bounds a string
 * Resend might split ("a@x.com, b@y.com"), and over-counts only a display name with an '@'.
 */
function addressesIn(text: string): number {
  return Math.max(1, text.split('@').length - 1);
}

function recipientsOf(value: JsonValue | undefined, field: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'string') return value === '' ? 0 : addressesIn(value);
  if (isJsonArray(value)) {
    let count = 0;
    for (const [i, item] of value.entries()) {
      if (typeof item !== 'string' || item === '') throw malformed(`${field}[${i}] must be an email address`);
      count += addressesIn(item);
    }
    return count;
  }
  throw malformed(`${field} must be an email address or a list of them`);
}

function emailsIn(email: JsonValue | undefined, field: string): number {
  if (!isJsonObject(email)) throw malformed(`${field} must be a JSON object`);
  const [to = 0, cc = 0, bcc = 0] = RECIPIENT_FIELDS.map((name) => recipientsOf(email[name], `${field}.${name}`));
  if (to === 0) throw malformed(`${field}.to is required`);
  return to + cc + bcc;
}

function priced(emails: number, tables: PriceTables, what: string): CostEstimate {
  const micros = emails * tables.resend.emailMicros;
  if (!Number.isSafeInteger(micros)) throw malformed(`${what} is out of range`);
  return { kind: 'priced', micros, amount: null, currency: null, detail: `${what}: ${emails} recipient${emails === 1 ? '' : 's'} × ${tables.resend.emailMicros}` };
}

function jsonBody(request: PricedRequest): JsonValue {
  if (request.body === null || request.body.length === 0) throw malformed('the request has no JSON body');
  return parseStrictJson(request.body, 'the request body');
}

type ResendRule =
  | { readonly kind: 'email' | 'batch' | 'free' }
  | { readonly kind: 'free-unless'; readonly field: string; readonly reason: string }
  | { readonly kind: 'per-call-estimate'; readonly reason: string };

export interface ResendRoute {
  readonly method: 'POST' | 'PATCH' | 'DELETE';
  /** In Resend's path space; '*' is one id segment. */
  readonly path: string;
  readonly rule: ResendRule;
}

const free = { kind: 'free' } as const;
const SENDS = 'sends email to recipients the request does not list';
const OUTSIDE = 'sets up sending outside the proxy';

/** Every write resend-node makes, classified; DELETE is free throughout (it removes, it never sends). */
export const RESEND_ROUTES: readonly ResendRoute[] = [
  { method: 'POST', path: '/emails', rule: { kind: 'email' } },
  { method: 'POST', path: '/emails/batch', rule: { kind: 'batch' } },
  { method: 'POST', path: '/emails/*/cancel', rule: free },
  { method: 'POST', path: '/emails/*/share', rule: free },
  { method: 'PATCH', path: '/emails/*', rule: free },
  { method: 'POST', path: '/broadcasts', rule: { kind: 'free-unless', field: 'send', reason: `a broadcast created with "send" ${SENDS} (a whole segment)` } },
  { method: 'PATCH', path: '/broadcasts/*', rule: free },
  { method: 'POST', path: '/broadcasts/*/send', rule: { kind: 'per-call-estimate', reason: `sending a broadcast ${SENDS} (a whole segment)` } },
  { method: 'POST', path: '/broadcasts/*/cancel', rule: free },
  { method: 'POST', path: '/broadcasts/*/duplicate', rule: free },
  { method: 'POST', path: '/inboxes/*/drafts/*/send', rule: { kind: 'per-call-estimate', reason: `sending an inbox draft ${SENDS}` } },
  { method: 'POST', path: '/inboxes/*/threads/*/emails/*/reply', rule: { kind: 'per-call-estimate', reason: `replying from an inbox ${SENDS}` } },
  { method: 'POST', path: '/inboxes/*/threads/*/emails/*/forward', rule: { kind: 'per-call-estimate', reason: `forwarding from an inbox ${SENDS}` } },
  { method: 'POST', path: '/events/send', rule: { kind: 'per-call-estimate', reason: `an event triggers automations that ${SENDS}` } },
  { method: 'POST', path: '/automations', rule: { kind: 'per-call-estimate', reason: `an automation ${OUTSIDE}` } },
  { method: 'PATCH', path: '/automations/*', rule: { kind: 'per-call-estimate', reason: `changing an automation ${OUTSIDE}` } },
  { method: 'POST', path: '/automations/*/duplicate', rule: { kind: 'per-call-estimate', reason: `an automation ${OUTSIDE}` } },
  { method: 'POST', path: '/automations/*/stop', rule: free },
  { method: 'POST', path: '/api-keys', rule: { kind: 'per-call-estimate', reason: `a new API key ${OUTSIDE}, without a cap` } },
  { method: 'PATCH', path: '/api-keys/*', rule: { kind: 'per-call-estimate', reason: `changing an API key ${OUTSIDE}` } },
  { method: 'POST', path: '/inboxes', rule: free },
  { method: 'PATCH', path: '/inboxes/*', rule: free },
  { method: 'PATCH', path: '/inboxes/*/agent', rule: { kind: 'per-call-estimate', reason: `an inbox agent ${OUTSIDE} (it answers mail on its own)` } },
  { method: 'POST', path: '/inboxes/*/drafts', rule: free },
  { method: 'PATCH', path: '/inboxes/*/drafts/*', rule: free },
  { method: 'POST', path: '/inboxes/*/labels', rule: free },
  { method: 'PATCH', path: '/inboxes/*/labels/*', rule: free },
  { method: 'PATCH', path: '/inboxes/*/threads/*', rule: free },
  { method: 'POST', path: '/inboxes/*/threads/*/labels', rule: free },
  { method: 'POST', path: '/audiences/*/contacts', rule: free },
  { method: 'PATCH', path: '/audiences/*/contacts/*', rule: free },
  { method: 'POST', path: '/contacts', rule: free },
  { method: 'POST', path: '/contacts/imports', rule: free },
  { method: 'PATCH', path: '/contacts/*', rule: free },
  { method: 'PATCH', path: '/contacts/*/topics', rule: free },
  { method: 'POST', path: '/contacts/*/segments/*', rule: free },
  { method: 'POST', path: '/contact-properties', rule: free },
  { method: 'PATCH', path: '/contact-properties/*', rule: free },
  { method: 'POST', path: '/segments', rule: free },
  { method: 'PATCH', path: '/segments/*', rule: free },
  { method: 'POST', path: '/topics', rule: free },
  { method: 'PATCH', path: '/topics/*', rule: free },
  { method: 'POST', path: '/templates', rule: free },
  { method: 'PATCH', path: '/templates/*', rule: free },
  { method: 'POST', path: '/templates/*/duplicate', rule: free },
  { method: 'POST', path: '/templates/*/publish', rule: free },
  { method: 'POST', path: '/domains', rule: free },
  { method: 'PATCH', path: '/domains/*', rule: free },
  { method: 'POST', path: '/domains/*/verify', rule: free },
  { method: 'POST', path: '/domains/claim', rule: free },
  { method: 'POST', path: '/domains/*/claim/verify', rule: free },
  { method: 'POST', path: '/events', rule: free },
  { method: 'PATCH', path: '/events/*', rule: free },
  { method: 'POST', path: '/suppressions', rule: free },
  { method: 'POST', path: '/suppressions/batch/add', rule: free },
  { method: 'POST', path: '/suppressions/batch/remove', rule: free },
  { method: 'POST', path: '/webhooks', rule: free },
  { method: 'PATCH', path: '/webhooks/*', rule: free },
  { method: 'POST', path: '/webhooks/*/signing-secret/rotate', rule: free },
  { method: 'POST', path: '/webhooks/*/events/*/replay', rule: free },
];

/** Each route starts with a literal resource (`emails`, `broadcasts`, …). */
const TABLE = new RouteTable(RESEND_ROUTES.map((route) => ({ method: route.method, segments: route.path.slice(1).split('/'), value: route })), 1);

/** The route a call matches; a literal segment beats '*' (so /emails/batch is not /emails/{id}). */
export function findResendRoute(method: string, segments: readonly string[]): ResendRoute | undefined {
  return TABLE.find(method, segments);
}

/** How docs/pricing.md writes a rule, so a test can hold the two together. */
export function describeResendRule(rule: ResendRule): string {
  switch (rule.kind) {
    case 'email':
      return 'one email price per recipient (to + cc + bcc)';
    case 'batch':
      return 'the sum over its emails (1 to 100)';
    case 'free':
      return 'free';
    case 'free-unless':
      return `free; with \`${rule.field}\`: per-call estimate`;
    case 'per-call-estimate':
      return 'per-call estimate';
  }
}

export function estimateResend(request: PricedRequest, key: KeyPricing, tables: PriceTables): CostEstimate {
  if (request.method === 'GET' || request.method === 'HEAD' || request.method === 'DELETE') return FREE;
  const route = findResendRoute(request.method, request.segments);
  if (route === undefined) return perCallEstimate(key, `${request.method} /${request.segments.join('/')} is not a Resend call the cost model knows`);
  const rule = route.rule;
  switch (rule.kind) {
    case 'free':
      return FREE;
    case 'per-call-estimate':
      return perCallEstimate(key, rule.reason);
    case 'free-unless': {
      const body = jsonBody(request);
      if (!isJsonObject(body)) throw malformed('the request body must be a JSON object');
      const value = body[rule.field];
      return value === undefined || value === null || value === false ? FREE : perCallEstimate(key, rule.reason);
    }
    case 'email':
      return priced(emailsIn(jsonBody(request), 'email'), tables, 'email');
    case 'batch':
      break;
  }
  const batch = jsonBody(request);
  if (!isJsonArray(batch)) throw malformed('a batch must be a JSON array of emails');
  if (batch.length === 0 || batch.length > MAX_BATCH_EMAILS) throw malformed(`a batch holds 1 to ${MAX_BATCH_EMAILS} emails, got ${batch.length}`);
  const emails = batch.reduce<number>((sum, email, i) => sum + emailsIn(email, `batch[${i}]`), 0);
  return priced(emails, tables, `batch of ${batch.length}`);
}

/** `{id}` for one email; `{data: [{id}, …]}` for a batch, whose first id stands for it. */
function objectIdOf(body: unknown): string | null {
  const single = stringField(body, 'id');
  if (single !== null) return single;
  const data = isRecord(body) ? body.data : undefined;
  return Array.isArray(data) ? stringField(data[0], 'id') : null;
}

export function settleResend(_request: PricedRequest, estimate: CostEstimate, response: VendorResponse): Settlement {
  return settleFromEstimate(estimate, response, objectIdOf(responseJson(response.body)));
}
