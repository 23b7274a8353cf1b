/**
 * Validation of what an issuer asks for. Pure: every rule about a new key's policy is here,
 * and the first broken rule is reported with the field it concerns.
 */
import { parseEndpointPattern, formatEndpointPattern } from '../core/endpoint-pattern.js';
import { invalidField } from '../core/operator-error.js';
import { parseVendor, type Vendor } from '../core/vendors.js';
import type { KeySpec } from '../gen/keybrake/v1/operator.js';
import { checkText } from './request-bounds.js';

export const DEFAULT_TTL_SECONDS = 24 * 3600;
export const MAX_TTL_SECONDS = 90 * 24 * 3600;
export const MAX_LABEL_LENGTH = 200;
export const MAX_ALLOWED_ENDPOINTS = 100;

export interface CompiledKeySpec {
  readonly vendor: Vendor;
  readonly label: string;
  readonly allowedEndpoints: readonly string[];
  readonly dailyCapMicros: number;
  readonly budgetMicros: number;
  readonly perCallEstimateMicros: number;
  readonly ttlSeconds: number;
}

/** Checks a spec; `fieldPrefix` names its place in a batch ("specs[3].") so errors point at it. */
export function compileKeySpec(spec: KeySpec, fieldPrefix = ''): CompiledKeySpec {
  const field = (name: string) => `${fieldPrefix}${name}`;
  const vendor = parseVendor(spec.vendor, field('vendor'));

  // The label is an audit filter later: text PostgreSQL stores as it is, as request-bounds checks filters.
  checkText(spec.label, field('label'), MAX_LABEL_LENGTH, { controls: false });

  if (spec.allowedEndpoints.length === 0) throw invalidField(field('allowed_endpoints'), 'at least one endpoint is required, e.g. "POST /v1/payment_intents"');
  if (spec.allowedEndpoints.length > MAX_ALLOWED_ENDPOINTS) throw invalidField(field('allowed_endpoints'), `at most ${MAX_ALLOWED_ENDPOINTS} entries`);
  const allowedEndpoints = [
    ...new Set(spec.allowedEndpoints.map((text, i) => formatEndpointPattern(parseEndpointPattern(text, vendor, field(`allowed_endpoints[${i}]`))))),
  ];

  checkMicros(spec.dailyCapMicros, field('daily_cap_micros'));
  checkMicros(spec.budgetMicros, field('budget_micros'));
  checkMicros(spec.perCallEstimateMicros, field('per_call_estimate_micros'));
  if (spec.dailyCapMicros === 0 && spec.budgetMicros === 0) {
    throw invalidField(field('daily_usd_cap'), 'a cap is required: set daily_usd_cap, budget_usd or both');
  }

  const ttlSeconds = spec.expiresInSeconds === 0 ? DEFAULT_TTL_SECONDS : spec.expiresInSeconds;
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 0) throw invalidField(field('expires_in_seconds'), 'must be a positive whole number of seconds');
  if (ttlSeconds > MAX_TTL_SECONDS) throw invalidField(field('expires_in_seconds'), `at most ${MAX_TTL_SECONDS} (90 days), got ${ttlSeconds}`);

  return { vendor, label: spec.label, allowedEndpoints, dailyCapMicros: spec.dailyCapMicros, budgetMicros: spec.budgetMicros, perCallEstimateMicros: spec.perCallEstimateMicros, ttlSeconds };
}

function checkMicros(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw invalidField(field, `must be a non-negative whole number of micro-USD, got ${value}`);
}
