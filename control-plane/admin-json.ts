/**
 * The HTTP admin API's JSON shapes, translated to and from the proto messages. Pure.
 * JSON field names are the contract's snake_case; dollars arrive as decimal numbers or
 * strings and are turned into integer micro-USD here, once.
 */
import { parseDurationSeconds } from '../core/duration.js';
import { describeType, formatMicrosAsUsd, parseUsdToMicros } from '../core/money.js';
import { OperatorError, invalidField } from '../core/operator-error.js';
import { parseVendor } from '../core/vendors.js';
import { MAX_TTL_SECONDS } from './key-spec.js';
import { KeyStatus, TokenRole, type AuditEntry, type KeySpec, type ListKeysRequest, type OperatorToken, type QueryAuditRequest, type VaultKey } from '../gen/keybrake/v1/operator.js';
import { quote } from '../core/quote.js';
import { StrictJsonError, parseStrictJsonText } from '../core/cost/strict-json.js';
import { EARLIEST_TIME_MS, LATEST_TIME_MS, TIME_RANGE_TEXT, fieldName } from './request-bounds.js';

type JsonObject = Record<string, unknown>;

const KEY_SPEC_FIELDS = [
  'vendor', 'label', 'agent_run_label', 'allowed_endpoints', 'daily_usd_cap', 'budget_usd',
  'daily_cap_micros', 'budget_micros', 'expires_in', 'expires_in_seconds', 'per_call_estimate_usd', 'per_call_estimate_micros',
] as const;

/** The query parameters each admin route takes; any other, or one given twice, is refused. */
export const LIST_KEYS_PARAMETERS = ['label', 'label_prefix', 'vendor', 'status', 'limit', 'cursor'] as const;
export const AUDIT_PARAMETERS = ['label', 'key_id', 'idempotency_key', 'vendor', 'vendor_object_id', 'decision', 'since', 'until', 'limit', 'cursor'] as const;

/**
 * A request body: one JSON object, read by the strict parser (core/cost/strict-json.ts). A
 * member given twice is refused rather than the last one winning as with JSON.parse
 * (`{"budget_usd": 1, "budget_usd": 1e9}` is two readings of one request); objects have no
 * prototype, so `__proto__` is just an unknown field; nesting is bounded.
 */
export function parseJsonObject(body: string): JsonObject {
  let value: unknown;
  try {
    value = parseStrictJsonText(body, 'body');
  } catch (error) {
    if (!(error instanceof StrictJsonError)) throw error;
    if (error.repeatedKey !== undefined) throw new OperatorError('malformed_request', `body: the member ${quote(error.repeatedKey)} is given more than once`);
    throw new OperatorError('malformed_request', `body: not valid JSON (${error.syntax ?? error.problem})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new OperatorError('malformed_request', `body: must be a JSON object, got ${describeType(value)}`);
  }
  return value as JsonObject;
}

/** Refuses a body member not in `allowed`, naming it (quoted and cut when it is not a plain name). */
export function refuseUnknownFields(body: JsonObject, allowed: readonly string[]): void {
  for (const field of Object.keys(body)) {
    if (!allowed.includes(field)) throw invalidField(fieldName(field), `unknown field (expected ${allowed.join(', ')})`);
  }
}

/**
 * A query string's parameters by name. A parameter the route does not take is refused, not
 * ignored: a misspelt filter (`?lable=…`) would otherwise widen the answer to everything. A
 * parameter given twice is refused, not read as its first value. An empty value means unset.
 */
export function readQuery(query: URLSearchParams, allowed: readonly string[]): Map<string, string> {
  const values = new Map<string, string>();
  for (const [name, value] of query) {
    if (!allowed.includes(name)) {
      throw invalidField(fieldName(name), allowed.length === 0 ? 'unknown parameter (this route takes none)' : `unknown parameter (expected ${allowed.join(', ')})`);
    }
    if (values.has(name)) throw invalidField(name, 'given more than once');
    values.set(name, value);
  }
  return values;
}

/** `POST /vault/keys` and `POST /admin/vault_keys` bodies → KeySpec. */
export function parseKeySpecJson(body: JsonObject): KeySpec {
  refuseUnknownFields(body, KEY_SPEC_FIELDS);
  if (body['vendor'] === undefined) throw invalidField('vendor', 'is required');
  const vendor = parseVendor(requireString(body['vendor'], 'vendor'));
  const label = pickOne(body, 'agent_run_label', 'label');
  const dailyCap = pickOne(body, 'daily_usd_cap', 'daily_cap_micros');
  const budget = pickOne(body, 'budget_usd', 'budget_micros');
  const expiry = pickOne(body, 'expires_in', 'expires_in_seconds');
  const perCall = pickOne(body, 'per_call_estimate_usd', 'per_call_estimate_micros');
  const endpoints = body['allowed_endpoints'];
  if (endpoints === undefined) throw invalidField('allowed_endpoints', 'is required, e.g. ["POST /v1/payment_intents"]');
  if (!Array.isArray(endpoints) || !endpoints.every((e) => typeof e === 'string')) {
    throw invalidField('allowed_endpoints', 'must be an array of strings such as "POST /v1/payment_intents"');
  }
  return {
    vendor,
    label: label === null ? '' : requireString(label.value, label.field),
    allowedEndpoints: endpoints,
    dailyCapMicros: dailyCap === null ? 0 : moneyField(dailyCap),
    budgetMicros: budget === null ? 0 : moneyField(budget),
    expiresInSeconds: expiry === null ? 0 : expirySeconds(expiry),
    perCallEstimateMicros: perCall === null ? 0 : moneyField(perCall),
  };
}

/** `PUT /vendors/{vendor}/credential` body: `{secret, account_sid?}`. */
export function parseVendorCredentialJson(body: JsonObject): { secret: string; accountSid: string } {
  refuseUnknownFields(body, ['secret', 'account_sid']);
  return {
    secret: body['secret'] === undefined ? '' : requireString(body['secret'], 'secret'),
    accountSid: body['account_sid'] === undefined ? '' : requireString(body['account_sid'], 'account_sid'),
  };
}

/** `POST /tokens` body: `{role, name?}`. */
export function parseCreateTokenJson(body: JsonObject): { role: TokenRole; name: string } {
  refuseUnknownFields(body, ['role', 'name']);
  return { role: parseTokenRole(body['role']), name: body['name'] === undefined ? '' : requireString(body['name'], 'name') };
}

/** `GET /vault/keys?label=&label_prefix=&vendor=&status=&limit=&cursor=`; the text filters are checked by OperatorService. */
export function parseListKeysQuery(search: URLSearchParams): ListKeysRequest {
  const query = readQuery(search, LIST_KEYS_PARAMETERS);
  const status = query.get('status') ?? '';
  const statuses: Record<string, KeyStatus> = {
    '': KeyStatus.KEY_STATUS_UNSPECIFIED,
    active: KeyStatus.KEY_STATUS_ACTIVE,
    expired: KeyStatus.KEY_STATUS_EXPIRED,
    revoked: KeyStatus.KEY_STATUS_REVOKED,
  };
  const statusValue = statuses[status];
  if (statusValue === undefined) throw invalidField('status', `must be active, expired or revoked, got ${quote(status)}`);
  return {
    label: query.get('label') ?? '',
    labelPrefix: query.get('label_prefix') ?? '',
    vendor: query.get('vendor') ?? '',
    status: statusValue,
    pageSize: parseLimit(query.get('limit')),
    pageToken: query.get('cursor') ?? '',
  };
}

/** `limit=`: 1 to 1000 (0 would mean "the default" to the service: unset means that here). */
function parseLimit(text: string | undefined): number {
  if (text === undefined || text === '') return 0;
  if (!/^\d{1,4}$/.test(text) || Number(text) < 1 || Number(text) > 1000) throw invalidField('limit', `must be a whole number from 1 to 1000, got ${quote(text)}`);
  return Number(text);
}

export function parseTokenRole(value: unknown): TokenRole {
  const roles: Record<string, TokenRole> = { admin: TokenRole.TOKEN_ROLE_ADMIN, issuer: TokenRole.TOKEN_ROLE_ISSUER, auditor: TokenRole.TOKEN_ROLE_AUDITOR };
  const role = typeof value === 'string' ? roles[value] : undefined;
  if (role === undefined) throw invalidField('role', `must be admin, issuer or auditor, got ${describeType(value)}`);
  return role;
}

export function tokenRoleName(role: TokenRole): string {
  return { [TokenRole.TOKEN_ROLE_ADMIN]: 'admin', [TokenRole.TOKEN_ROLE_ISSUER]: 'issuer', [TokenRole.TOKEN_ROLE_AUDITOR]: 'auditor' }[role as number] ?? 'unknown';
}

/** An operator token as the admin API and the CLI show it: never its secret. */
export function operatorTokenToJson(token: OperatorToken): Record<string, unknown> {
  return { id: token.id, name: token.name, role: tokenRoleName(token.role), created_at: token.createdAt?.toISOString() ?? null };
}

export function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw invalidField(field, `must be a string, got ${describeType(value)}`);
  return value;
}

const STATUS_NAMES: Record<number, string> = {
  [KeyStatus.KEY_STATUS_ACTIVE]: 'active',
  [KeyStatus.KEY_STATUS_EXPIRED]: 'expired',
  [KeyStatus.KEY_STATUS_REVOKED]: 'revoked',
};

export interface VaultKeyJson {
  id: string;
  vendor: string;
  label: string;
  agent_run_label: string;
  status: string;
  allowed_endpoints: string[];
  daily_usd_cap: string | null;
  budget_usd: string | null;
  daily_cap_micros: number;
  budget_micros: number;
  per_call_estimate_micros: number;
  cap_micros: number;
  spent_micros: number;
  leased_micros: number;
  at_risk_micros: number;
  remaining_micros: number;
  cap_usd: string;
  spent_usd: string;
  leased_usd: string;
  at_risk_usd: string;
  remaining_usd: string;
  created_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
}

/** A key as the HTTP API shows it: money as integer micros and as USD decimal strings. */
export function vaultKeyToJson(key: VaultKey): VaultKeyJson {
  const spend = key.spend ?? { capMicros: 0, spentMicros: 0, leasedMicros: 0, atRiskMicros: 0, remainingMicros: 0 };
  return {
    id: key.id,
    vendor: key.vendor,
    label: key.label,
    agent_run_label: key.label,
    status: STATUS_NAMES[key.status] ?? 'unknown',
    allowed_endpoints: key.allowedEndpoints,
    daily_usd_cap: key.dailyCapMicros === 0 ? null : formatMicrosAsUsd(key.dailyCapMicros),
    budget_usd: key.budgetMicros === 0 ? null : formatMicrosAsUsd(key.budgetMicros),
    daily_cap_micros: key.dailyCapMicros,
    budget_micros: key.budgetMicros,
    per_call_estimate_micros: key.perCallEstimateMicros,
    cap_micros: spend.capMicros,
    spent_micros: spend.spentMicros,
    leased_micros: spend.leasedMicros,
    at_risk_micros: spend.atRiskMicros,
    remaining_micros: spend.remainingMicros,
    cap_usd: formatMicrosAsUsd(spend.capMicros),
    spent_usd: formatMicrosAsUsd(spend.spentMicros),
    leased_usd: formatMicrosAsUsd(spend.leasedMicros),
    at_risk_usd: formatMicrosAsUsd(spend.atRiskMicros),
    remaining_usd: formatMicrosAsUsd(spend.remainingMicros),
    created_at: key.createdAt?.toISOString() ?? null,
    expires_at: key.expiresAt?.toISOString() ?? null,
    revoked_at: key.revokedAt?.toISOString() ?? null,
  };
}

interface Picked {
  readonly field: string;
  readonly value: unknown;
}

/** Reads one of two alternative spellings of a field; giving both is ambiguous. */
function pickOne(body: JsonObject, a: string, b: string): Picked | null {
  const hasA = body[a] !== undefined && body[a] !== null;
  const hasB = body[b] !== undefined && body[b] !== null;
  if (hasA && hasB) throw invalidField(a, `give either ${a} or ${b}, not both`);
  if (hasA) return { field: a, value: body[a] };
  if (hasB) return { field: b, value: body[b] };
  return null;
}

function moneyField({ field, value }: Picked): number {
  let micros: number;
  if (field.endsWith('_micros')) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalidField(field, `must be a whole number of micro-USD, got ${describeType(value)}`);
    micros = value;
  } else {
    micros = parseUsdToMicros(value, field);
  }
  if (micros <= 0) throw invalidField(field, `must be greater than 0, got ${quote(value)}`);
  return micros;
}

function expirySeconds({ field, value }: Picked): number {
  if (field === 'expires_in') {
    const seconds = positive(parseDurationSeconds(requireString(value, field), field), field);
    if (seconds > MAX_TTL_SECONDS) throw invalidField(field, `at most 90 days ("90d"), got ${quote(value)}`);
    return seconds;
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalidField(field, `must be a whole number of seconds, got ${describeType(value)}`);
  return positive(value, field);
}

function positive(seconds: number, field: string): number {
  if (seconds <= 0) throw invalidField(field, 'must be greater than 0');
  return seconds;
}

/**
 * `GET /audit?idempotency_key=&label=&key_id=&vendor=&vendor_object_id=&decision=&since=&until=&limit=&cursor=`;
 * the text filters and the cursor are checked by OperatorService (for gRPC too).
 */
export function parseAuditQuery(search: URLSearchParams): QueryAuditRequest {
  const query = readQuery(search, AUDIT_PARAMETERS);
  return {
    idempotencyKey: query.get('idempotency_key') ?? '',
    label: query.get('label') ?? '',
    keyId: query.get('key_id') ?? '',
    vendor: query.get('vendor') ?? '',
    vendorObjectId: query.get('vendor_object_id') ?? '',
    decision: parseDecision(query.get('decision')),
    since: parseInstant(query.get('since'), 'since'),
    until: parseInstant(query.get('until'), 'until'),
    limit: parseLimit(query.get('limit')),
    cursor: query.get('cursor') ?? '',
  };
}

function parseDecision(text: string | undefined): string {
  if (text === undefined || text === '') return '';
  if (text !== 'allowed' && text !== 'denied') throw invalidField('decision', `must be allowed or denied, got ${quote(text)}`);
  return text;
}

/** `2026-11-23`, `2026-11-23T10:00`, `…T10:00:00.123Z`, `…T10:00:00+01:00` (with T, t or a space). */
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:[Zz]|([+-])(\d{2}):?(\d{2}))?)?$/;

/**
 * An ISO 8601 time or unix seconds, from 1970 to 9999. A time without an offset is UTC (not the
 * control plane's local time). Calendar fields are checked: Date.parse would read 2026-02-31 as
 * March 3rd, and "foo 2020" as a date.
 */
export function parseInstant(text: string | undefined, field: string): Date | undefined {
  if (text === undefined || text === '') return undefined;
  let ms: number;
  if (/^\d+$/.test(text)) {
    ms = text.length > 16 ? Infinity : Number(text) * 1000;
  } else {
    const match = ISO_TIME.exec(text);
    if (match === null) throw invalidField(field, `must be an ISO 8601 time (e.g. 2026-11-23T10:00:00Z) or unix seconds, got ${quote(text)}`);
    const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = [1, 2, 3, 4, 5, 6, 9, 10].map((i) => Number(match[i] ?? '0')) as [number, number, number, number, number, number, number, number];
    const fraction = Number((match[7] ?? '').padEnd(3, '0').slice(0, 3));
    const monthDays = [31, year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if (month < 1 || month > 12 || day < 1 || day > monthDays[month - 1]! || hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) {
      throw invalidField(field, `is not a valid time: ${quote(text)}`);
    }
    const utc = new Date(0);
    utc.setUTCFullYear(year, month - 1, day);
    utc.setUTCHours(hour, minute, second, fraction);
    ms = utc.getTime() - (match[8] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  }
  if (!Number.isFinite(ms) || ms < EARLIEST_TIME_MS || ms > LATEST_TIME_MS) throw invalidField(field, `must be a time ${TIME_RANGE_TEXT}, got ${quote(text)}`);
  return new Date(ms);
}

/** An audit entry as the HTTP API shows it (the contract's shape): absent values are null. */
export function auditEntryToJson(entry: AuditEntry): Record<string, unknown> {
  const text = (value: string) => (value === '' ? null : value);
  return {
    id: entry.id,
    ts: entry.ts?.toISOString() ?? null,
    key_id: text(entry.keyId),
    label: text(entry.label),
    vendor: entry.vendor,
    method: entry.method,
    path: entry.path,
    status: entry.status,
    decision: entry.decision,
    reason: text(entry.reason),
    amount: entry.amount < 0 ? null : entry.amount,
    currency: text(entry.currency),
    usd_micros: entry.usdMicros,
    usd: formatMicrosAsUsd(entry.usdMicros),
    estimated_usd_micros: entry.estimatedUsdMicros,
    idempotency_key: text(entry.idempotencyKey),
    vendor_request_id: text(entry.vendorRequestId),
    vendor_object_id: text(entry.vendorObjectId),
    stripe_charge_id: text(entry.stripeChargeId),
    replayed: entry.replayed,
    dataplane_id: entry.dataplaneId,
    latency_ms: entry.latencyMs,
    call_count: entry.callCount === 0 ? 1 : entry.callCount,
    flag: text(entry.flag),
  };
}
