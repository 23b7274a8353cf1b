import { describe, expect, it } from 'vitest';

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { compileControlPlaneConfig } from '../../control-plane/config.js';
import { DEFAULT_PRICE_TABLES_JSON } from '../../core/cost/index.js';
import { compileDataPlaneConfig } from '../../data-plane/config.js';

const good = {
  KEYBRAKE_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
  KEYBRAKE_DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/keybrake',
  KEYBRAKE_ADMIN_TOKEN: 'a'.repeat(32),
  KEYBRAKE_DATAPLANE_TOKEN: 'd'.repeat(32),
};

describe('control-plane configuration', () => {
  it('applies the documented defaults', () => {
    const config = compileControlPlaneConfig(good);
    expect(config.etcdEndpoints).toEqual(['http://127.0.0.1:2379']);
    expect(config.grpcAddress).toMatchObject({ host: '127.0.0.1', port: 7070 });
    expect(config.adminAddress).toMatchObject({ host: '127.0.0.1', port: 7080 });
    expect(config.etcdPrefix).toBe('/keybrake/');
    expect(config.keyRetentionMs).toBe(30 * 86_400_000);
    expect(config.etcdPageSize).toBe(1000);
  });

  it('reads the etcd page size', () => {
    expect(compileControlPlaneConfig({ ...good, KEYBRAKE_ETCD_PAGE_SIZE: '50' }).etcdPageSize).toBe(50);
  });

  it('derives the heartbeat from a short lease TTL', () => {
    expect(compileControlPlaneConfig({ ...good, KEYBRAKE_LEASE_TTL: '3s' }).heartbeatIntervalMs).toBe(1000);
    expect(compileControlPlaneConfig(good).heartbeatIntervalMs).toBe(2000);
  });

  it('reads a comma list of etcd endpoints', () => {
    expect(compileControlPlaneConfig({ ...good, KEYBRAKE_ETCD_ENDPOINTS: 'http://a:2379, https://b:2379/' }).etcdEndpoints).toEqual(['http://a:2379', 'https://b:2379']);
  });

  it.each<[Record<string, string | undefined>, RegExp]>([
    [{ KEYBRAKE_MASTER_KEY: undefined }, /^KEYBRAKE_MASTER_KEY: is required/],
    [{ KEYBRAKE_MASTER_KEY: 'not base64!' }, /^KEYBRAKE_MASTER_KEY: must be base64/],
    [{ KEYBRAKE_MASTER_KEY: Buffer.alloc(16).toString('base64') }, /^KEYBRAKE_MASTER_KEY: must decode to 32 bytes, got 16/],
    [{ KEYBRAKE_DATABASE_URL: undefined }, /^KEYBRAKE_DATABASE_URL: is required/],
    [{ KEYBRAKE_DATABASE_URL: 'mysql://x' }, /^KEYBRAKE_DATABASE_URL: must start with postgres:\/\//],
    [{ KEYBRAKE_ETCD_ENDPOINTS: '127.0.0.1:2379' }, /^KEYBRAKE_ETCD_ENDPOINTS: "127.0.0.1:2379" is not a URL with scheme/],
    [{ KEYBRAKE_ETCD_ENDPOINTS: 'ftp://x:1' }, /^KEYBRAKE_ETCD_ENDPOINTS: .* must use http or https/],
    [{ KEYBRAKE_GRPC_ADDR: 'localhost' }, /^KEYBRAKE_GRPC_ADDR: must be host:port/],
    [{ KEYBRAKE_ADMIN_ADDR: '127.0.0.1:99999' }, /^KEYBRAKE_ADMIN_ADDR: must be host:port/],
    [{ KEYBRAKE_ADMIN_TOKEN: 'short' }, /^KEYBRAKE_ADMIN_TOKEN: must be at least 24 characters, got 5/],
    [{ KEYBRAKE_DATAPLANE_TOKEN: undefined }, /^KEYBRAKE_DATAPLANE_TOKEN: is required/],
    [{ KEYBRAKE_ETCD_PREFIX: 'keybrake' }, /^KEYBRAKE_ETCD_PREFIX: must start and end with "\/"/],
    [{ KEYBRAKE_LOG_LEVEL: 'loud' }, /^KEYBRAKE_LOG_LEVEL: must be one of/],
    [{ KEYBRAKE_HEARTBEAT_INTERVAL: '20s' }, /^KEYBRAKE_HEARTBEAT_INTERVAL: must be at most half of KEYBRAKE_LEASE_TTL \(30s\)/],
    [{ KEYBRAKE_AUDIT_RETENTION_DAYS: '0' }, /^KEYBRAKE_AUDIT_RETENTION_DAYS: /],
    [{ KEYBRAKE_KEY_RETENTION: 'a month' }, /^KEYBRAKE_KEY_RETENTION: cannot parse duration/],
    [{ KEYBRAKE_KEY_RETENTION: '0s' }, /^KEYBRAKE_KEY_RETENTION: must be at least 1s/],
    [{ KEYBRAKE_ETCD_PAGE_SIZE: '0' }, /^KEYBRAKE_ETCD_PAGE_SIZE: must be a whole number of keys from 1 to 10000; got "0"/],
    [{ KEYBRAKE_ETCD_PAGE_SIZE: '20000' }, /^KEYBRAKE_ETCD_PAGE_SIZE: must be a whole number/],
    [{ KEYBRAKE_ETCD_PAGE_SIZE: '1e3' }, /^KEYBRAKE_ETCD_PAGE_SIZE: must be a whole number/],
  ])('names the variable when %j', (change, message) => {
    expect(() => compileControlPlaneConfig({ ...good, ...change })).toThrow(message);
  });
});

describe('data-plane configuration', () => {
  const dp = { KEYBRAKE_CONTROL_PLANE: '127.0.0.1:7070', KEYBRAKE_DATAPLANE_TOKEN: 'd'.repeat(32) };
  it('defaults to a data-plane id that survives restarts (host and port)', () => {
    const a = compileDataPlaneConfig({ ...dp, KEYBRAKE_PROXY_ADDR: '127.0.0.1:8081' });
    expect(a.dataplaneId).toMatch(/^dp-.+-8081$/);
    expect(compileDataPlaneConfig({ ...dp, KEYBRAKE_PROXY_ADDR: '127.0.0.1:8081' }).dataplaneId).toBe(a.dataplaneId);
    expect(a.auditSpoolDir).toBe(`.keybrake/spool/${a.dataplaneId}`);
  });

  it('defaults the upstreams to the real vendors', () => {
    expect(compileDataPlaneConfig(dp).upstreams).toEqual({ stripe: 'https://api.stripe.com', twilio: 'https://api.twilio.com', resend: 'https://api.resend.com' });
  });
  it.each<[Record<string, string | undefined>, RegExp]>([
    [{ KEYBRAKE_CONTROL_PLANE: undefined }, /^KEYBRAKE_CONTROL_PLANE: is required/],
    [{ KEYBRAKE_CONTROL_PLANE: 'http://127.0.0.1:7070' }, /^KEYBRAKE_CONTROL_PLANE: .* must be host:port/],
    [{ KEYBRAKE_UPSTREAM_STRIPE: 'localhost:1234' }, /^KEYBRAKE_UPSTREAM_STRIPE: /],
    [{ KEYBRAKE_DATAPLANE_ID: 'has space' }, /^KEYBRAKE_DATAPLANE_ID: /],
    [{ KEYBRAKE_PROXY_ADDR: ':8080' }, /^KEYBRAKE_PROXY_ADDR: must be host:port/],
    [{ KEYBRAKE_LOG_LEVEL: 'chatty' }, /^KEYBRAKE_LOG_LEVEL: must be one of/],
    [{ KEYBRAKE_LEASE_TTL: 'soon' }, /^KEYBRAKE_LEASE_TTL: cannot parse duration/],
    [{ KEYBRAKE_MAX_BODY_BYTES: '-1' }, /^KEYBRAKE_MAX_BODY_BYTES: must be a positive whole number/],
  ])('names the variable when %j', (change, message) => {
    expect(() => compileDataPlaneConfig({ ...dp, ...change })).toThrow(message);
  });

  it('refuses a price tables file that gives a member twice (two readings of one rate)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'price-tables-'));
    try {
      const path = join(dir, 'prices.json');
      const tables = JSON.stringify(DEFAULT_PRICE_TABLES_JSON);
      writeFileSync(path, tables.replace('"eur":{"microsPerMajorUnit":1200000}', '"eur":{"microsPerMajorUnit":1200000},"eur":{"microsPerMajorUnit":1}'));
      expect(() => compileDataPlaneConfig({ ...dp, KEYBRAKE_PRICE_TABLES: path })).toThrow(/^KEYBRAKE_PRICE_TABLES: cannot read .* as JSON \(.*"eur".*more than once/);
      writeFileSync(path, tables);
      expect(compileDataPlaneConfig({ ...dp, KEYBRAKE_PRICE_TABLES: path }).priceTables.exchangeRates['eur']).toEqual({ microsPerMajorUnit: 1_200_000 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
