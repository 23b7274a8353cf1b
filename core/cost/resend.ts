/**
 * Resend's cost model. Resend counts every recipient of an email towards the quota (to, cc and
 * bcc alike), so an email costs one `emailMicros` per recipient: for a single `to` that is the
 * per-email price, and for many it is the conservative reading. Only sending costs money;
 * everything else (reads, domains, audiences, cancelling a scheduled email) is free.
 */
import type { PriceTables } from './price-tables.js';
import { FREE, malformed } from './refusal.js';
import { isRecord, responseJson, settleFromEstimate, stringField } from './settlement.js';
import { isJsonArray, isJsonObject, parseStrictJson, type JsonValue } from './strict-json.js';
import type { CostEstimate, PricedRequest, Settlement, VendorResponse } from './types.js';

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

export function estimateResend(request: PricedRequest, tables: PriceTables): CostEstimate {
  if (request.method !== 'POST' || request.segments[0] !== 'emails') return FREE;
  if (request.segments.length === 1) return priced(emailsIn(jsonBody(request), 'email'), tables, 'email');
  if (request.segments.length !== 2 || request.segments[1] !== 'batch') return FREE;
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
