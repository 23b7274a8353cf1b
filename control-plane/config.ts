import { parseDurationSeconds } from '../core/duration.js';
import { ConfigError, parseListenAddress, parseUrlList, readOptional, readRequired, readSecretToken, type Env } from '../core/config.js';

export interface ControlPlaneConfig {
  readonly etcdEndpoints: readonly string[];
  /** Namespace for every etcd key (default "/keybrake/"); lets several stacks share one etcd. */
  readonly etcdPrefix: string;
  readonly databaseUrl: string;
  readonly grpcAddress: { host: string; port: number };
  readonly adminAddress: { host: string; port: number };
  readonly adminToken: string;
  readonly masterKey: Buffer;
  readonly dataplaneToken: string;
  readonly logLevel: string;
  /** How often a quiet data-plane stream gets a heartbeat (KEYBRAKE_HEARTBEAT_INTERVAL, default 2s or a third of a shorter lease TTL). */
  readonly heartbeatIntervalMs: number;
  /** Spend lease TTL (KEYBRAKE_LEASE_TTL, default 30s): how long a silent data plane may spend what it holds. */
  readonly leaseTtlMs: number;
  /** Days of audit kept (KEYBRAKE_AUDIT_RETENTION_DAYS, default 400): older day partitions are dropped. */
  readonly auditRetentionDays: number;
  /** How long etcd keeps a key's record and budget accounts after it expired or was revoked (KEYBRAKE_KEY_RETENTION, default 30d). */
  readonly keyRetentionMs: number;
}

const MIN_TOKEN_LENGTH = 24;

export function compileControlPlaneConfig(env: Env): ControlPlaneConfig {
  const masterKeyText = readRequired(env, 'KEYBRAKE_MASTER_KEY', 'base64 of 32 random bytes, e.g. `openssl rand -base64 32`');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(masterKeyText)) throw new ConfigError('KEYBRAKE_MASTER_KEY', 'must be base64');
  const masterKey = Buffer.from(masterKeyText, 'base64');
  if (masterKey.length !== 32) throw new ConfigError('KEYBRAKE_MASTER_KEY', `must decode to 32 bytes, got ${masterKey.length}`);

  const databaseUrl = readRequired(env, 'KEYBRAKE_DATABASE_URL', 'postgres://user:password@host:5432/keybrake');
  if (!/^postgres(ql)?:\/\//.test(databaseUrl)) throw new ConfigError('KEYBRAKE_DATABASE_URL', 'must start with postgres:// or postgresql://');

  const etcdPrefix = readOptional(env, 'KEYBRAKE_ETCD_PREFIX') ?? '/keybrake/';
  if (!etcdPrefix.startsWith('/') || !etcdPrefix.endsWith('/')) throw new ConfigError('KEYBRAKE_ETCD_PREFIX', 'must start and end with "/"');

  const logLevel = readOptional(env, 'KEYBRAKE_LOG_LEVEL') ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError('KEYBRAKE_LOG_LEVEL', 'must be one of fatal, error, warn, info, debug, trace, silent');
  }

  const leaseText = readOptional(env, 'KEYBRAKE_LEASE_TTL') ?? '30s';
  let leaseSeconds: number;
  try {
    leaseSeconds = parseDurationSeconds(leaseText, 'KEYBRAKE_LEASE_TTL');
  } catch {
    throw new ConfigError('KEYBRAKE_LEASE_TTL', `cannot parse duration ${JSON.stringify(leaseText)} (e.g. "30s")`);
  }
  if (leaseSeconds < 1) throw new ConfigError('KEYBRAKE_LEASE_TTL', 'must be at least 1s');
  // Quiet streams must hear a heartbeat well within a lease TTL, or data planes fail closed.
  // The default follows the TTL (2s, or a third of a shorter TTL); an explicit value is checked.
  const heartbeatText = readOptional(env, 'KEYBRAKE_HEARTBEAT_INTERVAL');
  let heartbeatSeconds = Math.max(1, Math.min(2, Math.floor(leaseSeconds / 3)));
  if (heartbeatText !== undefined) {
    try {
      heartbeatSeconds = parseDurationSeconds(heartbeatText, 'KEYBRAKE_HEARTBEAT_INTERVAL');
    } catch {
      throw new ConfigError('KEYBRAKE_HEARTBEAT_INTERVAL', `cannot parse duration ${JSON.stringify(heartbeatText)} (e.g. "2s")`);
    }
    if (heartbeatSeconds < 1) throw new ConfigError('KEYBRAKE_HEARTBEAT_INTERVAL', 'must be at least 1s');
    if (heartbeatSeconds * 2 > leaseSeconds) {
      throw new ConfigError('KEYBRAKE_HEARTBEAT_INTERVAL', `must be at most half of KEYBRAKE_LEASE_TTL (${leaseSeconds}s), got ${heartbeatSeconds}s`);
    }
  }

  const retentionText = readOptional(env, 'KEYBRAKE_AUDIT_RETENTION_DAYS') ?? '400';
  if (!/^\d+$/.test(retentionText) || Number(retentionText) < 1) throw new ConfigError('KEYBRAKE_AUDIT_RETENTION_DAYS', `must be a whole number of days, at least 1; got ${JSON.stringify(retentionText)}`);

  const keyRetentionText = readOptional(env, 'KEYBRAKE_KEY_RETENTION') ?? '30d';
  let keyRetentionSeconds: number;
  try {
    keyRetentionSeconds = parseDurationSeconds(keyRetentionText, 'KEYBRAKE_KEY_RETENTION');
  } catch {
    throw new ConfigError('KEYBRAKE_KEY_RETENTION', `cannot parse duration ${JSON.stringify(keyRetentionText)} (e.g. "30d")`);
  }
  if (keyRetentionSeconds < 1) throw new ConfigError('KEYBRAKE_KEY_RETENTION', 'must be at least 1s');

  return {
    auditRetentionDays: Number(retentionText),
    keyRetentionMs: keyRetentionSeconds * 1000,
    heartbeatIntervalMs: heartbeatSeconds * 1000,
    leaseTtlMs: leaseSeconds * 1000,
    etcdEndpoints: parseUrlList(env, 'KEYBRAKE_ETCD_ENDPOINTS', 'http://127.0.0.1:2379'),
    etcdPrefix,
    databaseUrl,
    grpcAddress: parseListenAddress(env, 'KEYBRAKE_GRPC_ADDR', '127.0.0.1:7070'),
    adminAddress: parseListenAddress(env, 'KEYBRAKE_ADMIN_ADDR', '127.0.0.1:7080'),
    adminToken: readSecretToken(env, 'KEYBRAKE_ADMIN_TOKEN', MIN_TOKEN_LENGTH),
    masterKey,
    dataplaneToken: readSecretToken(env, 'KEYBRAKE_DATAPLANE_TOKEN', MIN_TOKEN_LENGTH),
    logLevel,
  };
}
