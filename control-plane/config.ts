import { ConfigError, parseListenAddress, parseUrlList, readDurationMs, readLogLevel, readOptional, readRequired, readSecretToken, type Env } from '../core/config.js';
import { quote } from '../core/quote.js';
import { DEFAULT_ETCD_PAGE_SIZE } from './etcd-pages.js';

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
  /** Keys per etcd range request when walking keys, index entries, tokens or budget accounts (KEYBRAKE_ETCD_PAGE_SIZE, default 1000). */
  readonly etcdPageSize: number;
  /** How often one replica compacts etcd's history, keeping this much (KEYBRAKE_ETCD_COMPACTION_INTERVAL, default 5m); null: off. */
  readonly etcdCompactionIntervalMs: number | null;
}

const MIN_TOKEN_LENGTH = 24;
/** A page of 10,000 records of a few KB each is already tens of MB: above gRPC's 4 MB message limit. */
const MAX_ETCD_PAGE_SIZE = 10_000;

export function compileControlPlaneConfig(env: Env): ControlPlaneConfig {
  const masterKeyText = readRequired(env, 'KEYBRAKE_MASTER_KEY', 'base64 of 32 random bytes, e.g. `openssl rand -base64 32`');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(masterKeyText)) throw new ConfigError('KEYBRAKE_MASTER_KEY', 'must be base64');
  const masterKey = Buffer.from(masterKeyText, 'base64');
  if (masterKey.length !== 32) throw new ConfigError('KEYBRAKE_MASTER_KEY', `must decode to 32 bytes, got ${masterKey.length}`);

  const databaseUrl = readRequired(env, 'KEYBRAKE_DATABASE_URL', 'postgres://user:password@host:5432/keybrake');
  if (!/^postgres(ql)?:\/\//.test(databaseUrl)) throw new ConfigError('KEYBRAKE_DATABASE_URL', 'must start with postgres:// or postgresql://');

  const etcdPrefix = readOptional(env, 'KEYBRAKE_ETCD_PREFIX') ?? '/keybrake/';
  if (!etcdPrefix.startsWith('/') || !etcdPrefix.endsWith('/')) throw new ConfigError('KEYBRAKE_ETCD_PREFIX', 'must start and end with "/"');

  const leaseTtlMs = readDurationMs(env, 'KEYBRAKE_LEASE_TTL', '30s');
  // Quiet streams must hear a heartbeat well within a lease TTL, or data planes fail closed.
  // The default follows the TTL (2s, or a third of a shorter TTL); an explicit value is checked.
  let heartbeatIntervalMs = Math.max(1, Math.min(2, Math.floor(leaseTtlMs / 3000))) * 1000;
  if (readOptional(env, 'KEYBRAKE_HEARTBEAT_INTERVAL') !== undefined) {
    heartbeatIntervalMs = readDurationMs(env, 'KEYBRAKE_HEARTBEAT_INTERVAL', '2s');
    if (heartbeatIntervalMs * 2 > leaseTtlMs) {
      throw new ConfigError('KEYBRAKE_HEARTBEAT_INTERVAL', `must be at most half of KEYBRAKE_LEASE_TTL (${leaseTtlMs / 1000}s), got ${heartbeatIntervalMs / 1000}s`);
    }
  }

  const retentionText = readOptional(env, 'KEYBRAKE_AUDIT_RETENTION_DAYS') ?? '400';
  if (!/^\d+$/.test(retentionText) || Number(retentionText) < 1) throw new ConfigError('KEYBRAKE_AUDIT_RETENTION_DAYS', `must be a whole number of days, at least 1; got ${quote(retentionText)}`);

  const pageSizeText = readOptional(env, 'KEYBRAKE_ETCD_PAGE_SIZE') ?? String(DEFAULT_ETCD_PAGE_SIZE);
  if (!/^\d{1,6}$/.test(pageSizeText) || Number(pageSizeText) < 1 || Number(pageSizeText) > MAX_ETCD_PAGE_SIZE) {
    throw new ConfigError('KEYBRAKE_ETCD_PAGE_SIZE', `must be a whole number of keys from 1 to ${MAX_ETCD_PAGE_SIZE}; got ${quote(pageSizeText)}`);
  }

  return {
    etcdPageSize: Number(pageSizeText),
    auditRetentionDays: Number(retentionText),
    keyRetentionMs: readDurationMs(env, 'KEYBRAKE_KEY_RETENTION', '30d'),
    etcdCompactionIntervalMs: readCompactionInterval(env),
    heartbeatIntervalMs,
    leaseTtlMs,
    etcdEndpoints: parseUrlList(env, 'KEYBRAKE_ETCD_ENDPOINTS', 'http://127.0.0.1:2379'),
    etcdPrefix,
    databaseUrl,
    grpcAddress: parseListenAddress(env, 'KEYBRAKE_GRPC_ADDR', '127.0.0.1:7070'),
    adminAddress: parseListenAddress(env, 'KEYBRAKE_ADMIN_ADDR', '127.0.0.1:7080'),
    adminToken: readSecretToken(env, 'KEYBRAKE_ADMIN_TOKEN', MIN_TOKEN_LENGTH),
    masterKey,
    dataplaneToken: readSecretToken(env, 'KEYBRAKE_DATAPLANE_TOKEN', MIN_TOKEN_LENGTH),
    logLevel: readLogLevel(env),
  };
}

/** KEYBRAKE_ETCD_COMPACTION_INTERVAL: a duration (default 5m), or "0"/"0s"/"off" for operators who run etcd's own --auto-compaction. */
function readCompactionInterval(env: Env): number | null {
  const text = readOptional(env, 'KEYBRAKE_ETCD_COMPACTION_INTERVAL');
  if (text !== undefined && /^(?:off|0+s?)$/i.test(text)) return null;
  return readDurationMs(env, 'KEYBRAKE_ETCD_COMPACTION_INTERVAL', '5m');
}
