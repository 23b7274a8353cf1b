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

type JsonObject = Record<string, unknown>;

const KEY_SPEC_FIELDS = new Set([
  'vendor', 'label', 'agent_run_label', 'allowed_endpoints', 'daily_usd_cap', 'budget_usd',
  'daily_cap_micros', 'budget_micros', 'expires_in', 'expires_in_seconds', 'per_call_estimate_usd', 'per_call_estimate_micros',
]);

export function parseJsonObject(body: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    throw new OperatorError('malformed_request', `body: not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new OperatorError('malformed_request', `body: must be a JSON object, got ${describeType(value)}`);
  }
  return value as JsonObject;
}

/** `POST /vault/keys` and `POST /admin/vault_keys` bodies → KeySpec. */
export function parseKeySpecJson(body: JsonObject): KeySpec {
  for (const field of Object.keys(body)) {
    if (!KEY_SPEC_FIELDS.has(field)) throw invalidField(field, 'unknown field');
  }
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

export function parseListKeysQuery(query: URLSearchParams): ListKeysRequest {
  const status = query.get('status') ?? '';
  const statuses: Record<string, KeyStatus> = {
    '': KeyStatus.KEY_STATUS_UNSPECIFIED,
    active: KeyStatus.KEY_STATUS_ACTIVE,
    expired: KeyStatus.KEY_STATUS_EXPIRED,
    revoked: KeyStatus.KEY_STATUS_REVOKED,
  };
  const statusValue = statuses[status];
  if (statusValue === undefined) throw invalidField('status', `must be active, expired or revoked, got ${quote(status)}`);
  const limit = query.get('limit');
  if (limit !== null && (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000)) throw invalidField('limit', `must be a whole number from 1 to 1000, got ${quote(limit)}`);
  return {
    label: query.get('label') ?? '',
    labelPrefix: query.get('label_prefix') ?? '',
    vendor: query.get('vendor') ?? '',
    status: statusValue,
    pageSize: limit === null ? 0 : Number(limit),
    pageToken: query.get('cursor') ?? '',
  };
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

/** `GET /audit?idempotency_key=&label=&key_id=&vendor=&vendor_object_id=&since=&until=&limit=&cursor=` */
export function parseAuditQuery(query: URLSearchParams): QueryAuditRequest {
  const limit = query.get('limit');
  if (limit !== null && !/^\d+$/.test(limit)) throw invalidField('limit', `must be a whole number, got ${quote(limit)}`);
  return {
    idempotencyKey: query.get('idempotency_key') ?? '',
    label: query.get('label') ?? '',
    keyId: query.get('key_id') ?? '',
    vendor: query.get('vendor') ?? '',
    vendorObjectId: query.get('vendor_object_id') ?? '',
    decision: parseDecision(query.get('decision')),
    since: parseInstant(query.get('since'), 'since'),
    until: parseInstant(query.get('until'), 'until'),
    limit: limit === null ? 0 : Number(limit),
    cursor: query.get('cursor') ?? '',
  };
}

function parseDecision(text: string | null): string {
  if (text === null || text === '') return '';
  if (text !== 'allowed' && text !== 'denied') throw invalidField('decision', `must be allowed or denied, got ${quote(text)}`);
  return text;
}

/** An ISO 8601 timestamp or unix seconds. */
function parseInstant(text: string | null, field: string): Date | undefined {
  if (text === null || text === '') return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text);
  if (!Number.isFinite(ms)) throw invalidField(field, `must be an ISO 8601 time or unix seconds, got ${quote(text)}`);
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
