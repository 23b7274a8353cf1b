/**
 * Stripe's v1 error shape and the parameter readers that produce it. Stripe receives every
 * parameter as a string; these readers apply the same checks and messages the API does for the
 * few types the simulator needs.
 */
import type { FormObject, FormValue } from './stripe-form.js';

export interface StripeErrorBody {
  type: 'invalid_request_error' | 'idempotency_error' | 'card_error' | 'api_error';
  message: string;
  code?: string;
  param?: string;
  decline_code?: string;
  [extra: string]: unknown;
}

/** Thrown by the object model; the simulator renders it as `{"error": {...}}` with this status. */
export class StripeError extends Error {
  constructor(
    readonly status: number,
    readonly body: StripeErrorBody,
  ) {
    super(body.message);
  }
}

export function invalidRequest(message: string, extra: Partial<StripeErrorBody> = {}, status = 400): StripeError {
  return new StripeError(status, { type: 'invalid_request_error', message, ...extra });
}

export function parameterMissing(param: string): StripeError {
  return invalidRequest(`Missing required param: ${param}.`, { code: 'parameter_missing', param });
}

/** `status` is 404 for the object named in the path, 400 for one named in a parameter. */
export function resourceMissing(kind: string, id: string, param: string, status: 400 | 404): StripeError {
  return invalidRequest(`No such ${kind}: '${id}'`, { code: 'resource_missing', param }, status);
}

export function unexpectedState(message: string): StripeError {
  return invalidRequest(message, { code: 'payment_intent_unexpected_state' });
}

function describe(value: FormValue): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function optionalString(params: FormObject, name: string): string | undefined {
  const value = params[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalidRequest(`Invalid string: ${describe(value)}`, { param: name });
  return value;
}

export function requiredString(params: FormObject, name: string): string {
  const value = optionalString(params, name);
  if (value === undefined || value === '') throw parameterMissing(name);
  return value;
}

export function optionalInteger(params: FormObject, name: string): number | undefined {
  const value = params[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^-?\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw invalidRequest(`Invalid integer: ${describe(value)}`, { code: 'parameter_invalid_integer', param: name });
  }
  return Number(value);
}

/** Amounts are integers in the currency's minor unit and at least 1. */
export function optionalAmount(params: FormObject, name: string): number | undefined {
  const value = optionalInteger(params, name);
  if (value !== undefined && value < 1) {
    throw invalidRequest('This value must be greater than or equal to 1.', { code: 'parameter_invalid_integer', param: name });
  }
  return value;
}

export function requiredAmount(params: FormObject, name = 'amount'): number {
  const value = optionalAmount(params, name);
  if (value === undefined) throw parameterMissing(name);
  return value;
}

/** Stripe answers with the currency lower-cased whatever case was sent. */
export function optionalCurrency(params: FormObject): string | undefined {
  const value = optionalString(params, 'currency');
  if (value === undefined) return undefined;
  if (!/^[A-Za-z]{3}$/.test(value)) throw invalidRequest(`Invalid currency: ${value.toLowerCase()}.`, { param: 'currency' });
  return value.toLowerCase();
}

export function requiredCurrency(params: FormObject): string {
  const value = optionalCurrency(params);
  if (value === undefined) throw parameterMissing('currency');
  return value;
}

export function optionalBoolean(params: FormObject, name: string): boolean | undefined {
  const value = params[name];
  if (value === undefined) return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw invalidRequest(`Invalid boolean: ${describe(value)}`, { param: name });
}

export function optionalEnum<T extends string>(params: FormObject, name: string, allowed: readonly T[]): T | undefined {
  const value = optionalString(params, name);
  if (value === undefined) return undefined;
  const match = allowed.find((candidate) => candidate === value);
  if (match === undefined) throw invalidRequest(`Invalid ${name}: must be one of ${allowed.join(', ')}`, { param: name });
  return match;
}

export function optionalStringList(params: FormObject, name: string): string[] | undefined {
  const value = params[name];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string')) {
    throw invalidRequest(`Invalid array`, { param: name });
  }
  return value;
}

/** Merges `metadata[...]` into `existing`: an empty value deletes a key, `metadata=` clears all. */
export function mergeMetadata(params: FormObject, existing: Record<string, string> = {}): Record<string, string> {
  const value = params.metadata;
  if (value === undefined) return existing;
  if (value === '') return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidRequest('Invalid object', { param: 'metadata' });
  const merged = { ...existing };
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw invalidRequest('Invalid metadata value: must be a string', { param: `metadata[${key}]` });
    if (item === '') delete merged[key];
    else merged[key] = item;
  }
  return merged;
}
