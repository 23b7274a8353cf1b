import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

import { compilePriceTables, DEFAULT_PRICE_TABLES, PriceTableError, type PriceTables } from '../core/cost/index.js';
import { parseListenAddress, parseUrlList, readDurationMs, readLogLevel, readOptional, readRequired, readSecretToken, ConfigError, type Env } from '../core/config.js';
import { quote } from '../core/quote.js';
import { parseStrictJsonText, StrictJsonError } from '../core/cost/strict-json.js';

export interface DataPlaneConfig {
  /** gRPC host:port of control-plane replicas; any one will do. */
  readonly controlPlanes: readonly string[];
  readonly dataplaneToken: string;
  readonly proxyAddress: { host: string; port: number };
  readonly dataplaneId: string;
  readonly auditSpoolDir: string;
  readonly upstreams: { readonly stripe: string; readonly twilio: string; readonly resend: string };
  readonly logLevel: string;
  /** Longest silence from every control plane before failing closed (KEYBRAKE_LEASE_TTL, default 30s). */
  readonly leaseTtlMs: number;
  readonly maxBodyBytes: number;
  readonly upstreamTimeoutMs: number;
  /** Time a client has to send a whole request (KEYBRAKE_REQUEST_TIMEOUT, default 30s). */
  readonly requestTimeoutMs: number;
  /** Exchange rates and vendor prices (KEYBRAKE_PRICE_TABLES: a JSON file; defaults otherwise). */
  readonly priceTables: PriceTables;
  /** Unacknowledged audit the spool may hold before forwarding stops (KEYBRAKE_AUDIT_SPOOL_MAX_BYTES, default 256 MiB). */
  readonly auditSpoolMaxBytes: number;
}

function readPriceTables(env: Env): PriceTables {
  const path = readOptional(env, 'KEYBRAKE_PRICE_TABLES');
  if (path === undefined) return DEFAULT_PRICE_TABLES;
  let json: unknown;
  try {
    // Strict: a repeated member ("eur" twice) has two readings; refused rather than last-one-wins.
    json = parseStrictJsonText(readFileSync(path, 'utf8'), path);
  } catch (error) {
    const problem = error instanceof StrictJsonError ? error.problem : error instanceof Error ? error.message : String(error);
    throw new ConfigError('KEYBRAKE_PRICE_TABLES', `cannot read ${path} as JSON (${problem})`);
  }
  try {
    return compilePriceTables(json);
  } catch (error) {
    if (error instanceof PriceTableError) throw new ConfigError('KEYBRAKE_PRICE_TABLES', error.message);
    throw error;
  }
}

function readPositiveInteger(env: Env, variable: string, fallback: number): number {
  const text = readOptional(env, variable);
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new ConfigError(variable, `must be a positive whole number, got ${quote(text)}`);
  return Number(text);
}

export function compileDataPlaneConfig(env: Env): DataPlaneConfig {
  const controlPlanes = readRequired(env, 'KEYBRAKE_CONTROL_PLANE', 'gRPC host:port of a control plane, e.g. 127.0.0.1:7070')
    .split(',')
    .map((item) => item.trim());
  for (const item of controlPlanes) {
    if (!/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(item)) {
      throw new ConfigError('KEYBRAKE_CONTROL_PLANE', `${quote(item)} must be host:port (no scheme)`);
    }
  }
  const proxyAddress = parseListenAddress(env, 'KEYBRAKE_PROXY_ADDR', '127.0.0.1:8080');
  // Stable across restarts (host and port), so a restarted data plane finds its own spool and
  // the control plane recognises its records.
  const dataplaneId = readOptional(env, 'KEYBRAKE_DATAPLANE_ID') ?? `dp-${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 48)}-${proxyAddress.port}`;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(dataplaneId)) throw new ConfigError('KEYBRAKE_DATAPLANE_ID', 'must be 1-64 of A-Z a-z 0-9 . _ -');
  const single = (variable: string, fallback: string) => {
    const urls = parseUrlList(env, variable, fallback);
    if (urls.length !== 1) throw new ConfigError(variable, 'must be one URL');
    return urls[0]!;
  };
  return {
    controlPlanes,
    dataplaneToken: readSecretToken(env, 'KEYBRAKE_DATAPLANE_TOKEN', 24),
    proxyAddress,
    dataplaneId,
    auditSpoolDir: readOptional(env, 'KEYBRAKE_AUDIT_SPOOL_DIR') ?? `.keybrake/spool/${dataplaneId}`,
    upstreams: {
      stripe: single('KEYBRAKE_UPSTREAM_STRIPE', 'https://api.stripe.com'),
      twilio: single('KEYBRAKE_UPSTREAM_TWILIO', 'https://api.twilio.com'),
      resend: single('KEYBRAKE_UPSTREAM_RESEND', 'https://api.resend.com'),
    },
    logLevel: readLogLevel(env),
    leaseTtlMs: readDurationMs(env, 'KEYBRAKE_LEASE_TTL', '30s'),
    maxBodyBytes: readPositiveInteger(env, 'KEYBRAKE_MAX_BODY_BYTES', 1024 * 1024),
    upstreamTimeoutMs: readDurationMs(env, 'KEYBRAKE_UPSTREAM_TIMEOUT', '60s'),
    requestTimeoutMs: readDurationMs(env, 'KEYBRAKE_REQUEST_TIMEOUT', '30s'),
    priceTables: readPriceTables(env),
    auditSpoolMaxBytes: readPositiveInteger(env, 'KEYBRAKE_AUDIT_SPOOL_MAX_BYTES', 256 * 1024 * 1024),
  };
}
