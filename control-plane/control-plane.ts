/**
 * One control-plane replica: gRPC (operator API, health) and the HTTP admin API over one
 * OperatorService, with etcd for keys and credentials and PostgreSQL for the audit trail.
 * Replicas are stateless; any number may run against the same etcd and PostgreSQL.
 */
import type { AddressInfo } from 'node:net';
import type { Server as HttpServer } from 'node:http';

import { OperatorError } from '../core/operator-error.js';
import type { Logger } from '../core/logger.js';
import { createAdminHttpServer } from './admin-http.js';
import type { ControlPlaneConfig } from './config.js';
import { deriveKeys } from './crypto.js';
import { createPool, runMigrations } from './database.js';
import { EtcdStore } from './etcd-store.js';
import { AuditStore } from './audit-store.js';
import { EtcdBudgetLedger } from './budget-ledger.js';
import { createDataPlaneService, DataPlaneStreams } from './dataplane-service.js';
import { LeaseService } from './lease-service.js';
import { createControlPlaneMetrics } from './metrics.js';
import { summariseSpend } from './spend-summary.js';
import { bindGrpcServer, createGrpcServer, SERVICE_NAMES } from './grpc-server.js';
import { GenerationalMap } from '../core/generational-map.js';
import { KeyPolicies } from './key-policies.js';
import { PolicyFeed } from './policy-feed.js';
import { PricedIntentBroadcast } from './priced-intents.js';
import { Janitor } from './janitor.js';
import { EtcdCompactionBackend, EtcdCompactor } from './etcd-compaction.js';
import { EtcdStatusMetrics, EtcdStatusSource } from './etcd-status-metrics.js';
import { OperatorService } from './operator-service.js';

export interface RunningControlPlane {
  readonly grpcPort: number;
  readonly adminPort: number;
  stop(): Promise<void>;
}

export async function startControlPlane(config: ControlPlaneConfig, logger: Logger): Promise<RunningControlPlane> {
  const store = new EtcdStore({ endpoints: config.etcdEndpoints, prefix: config.etcdPrefix, pageSize: config.etcdPageSize });
  const pool = createPool(config.databaseUrl);
  const keys = deriveKeys(config.masterKey);
  const policies = new KeyPolicies(store);
  const feed = new PolicyFeed(store, policies, keys.wrapKey, logger);
  const ledger = new EtcdBudgetLedger(config.etcdEndpoints, config.etcdPrefix, { pageSize: config.etcdPageSize });
  const leases = new LeaseService({
    ledger,
    keyPolicy: (id) => policies.byKeyId(id),
    ttlMs: config.leaseTtlMs,
    expiryMarginMs: Math.max(1000, Math.floor(config.leaseTtlMs / 5)),
    logger,
  });
  const streams = new DataPlaneStreams();
  const metrics = createControlPlaneMetrics();
  metrics.countLedger(() => ({ requests: ledger.requests, batches: leases.writer.batches }));
  const audit = new AuditStore(pool, logger);
  const pricedIntents = new PricedIntentBroadcast(pool, config.databaseUrl, logger);
  let stopReclaimWatch: (() => Promise<void>) | null = null;
  try {
    await store.ping();
    // Once per deployment (a marker says when it is done): label index entries for keys written
    // before the index existed, a page of keys at a time.
    const indexed = await store.buildLabelIndex();
    if (indexed !== null && indexed > 0) logger.info({ entries: indexed }, 'built the label index of existing keys');
    // The first call to PostgreSQL: a failure here says which part it was.
    await runMigrations(pool, logger).catch((error: unknown) => {
      throw new Error(`PostgreSQL (KEYBRAKE_DATABASE_URL): ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    });
    await audit.maintainPartitions(Date.now(), config.auditRetentionDays);
    await pricedIntents.start();
    await feed.start();
    // A holder asked for more than was unleased: every replica tells its connected holders of
    // that account to give back what they do not use.
    // Bounded: an account's reclaims matter while it is busy, not once it has gone quiet.
    const reclaimsSeen = new GenerationalMap<number>(100_000);
    stopReclaimWatch = await ledger.watch(({ keyId, window, account }) => {
      // Every replica's writes: the sweep learns which accounts hold leases without reading them all.
      leases.observe({ keyId, window, account });
      const id = `${keyId}/${window}`;
      if (account.reclaimSeq <= (reclaimsSeen.get(id) ?? 0)) return;
      reclaimsSeen.set(id, account.reclaimSeq);
      for (const lease of Object.values(account.leases)) streams.send(lease.holder, { reclaim: { keyId, window } });
    }, () => leases.sweepEverythingNext());
  } catch (error) {
    await stopReclaimWatch?.();
    await feed.stop();
    await pricedIntents.stop();
    ledger.close();
    store.close();
    await pool.end();
    throw error;
  }

  const service = new OperatorService({ store, keys, adminToken: config.adminToken, spend: (records) => summariseSpend(ledger, records), audit });
  const partitionKeeper = setInterval(() => {
    audit.maintainPartitions(Date.now(), config.auditRetentionDays).catch((error: unknown) => logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'audit partition maintenance failed'));
  }, 3_600_000);
  const dataPlaneService = createDataPlaneService({ feed, policies, leases, audit, pricedIntents, metrics, streams, dataplaneToken: config.dataplaneToken, pepper: keys.pepper, logger, heartbeatIntervalMs: config.heartbeatIntervalMs });
  // Retention runs every quarter of the retention period, at most hourly.
  const janitor = new Janitor({ store, ledger, retentionMs: config.keyRetentionMs, logger });
  janitor.start(Math.min(3_600_000, Math.max(1000, Math.floor(config.keyRetentionMs / 4))));
  // etcd's history: one replica at a time compacts it every interval (etcd-compaction.ts); its size on /metrics.
  const compactor = config.etcdCompactionIntervalMs === null ? null : new EtcdCompactor({ intervalMs: config.etcdCompactionIntervalMs, backend: new EtcdCompactionBackend(config.etcdEndpoints), logger });
  compactor?.start();
  const etcdStatus = new EtcdStatusMetrics({ registry: metrics.registry, reader: new EtcdStatusSource(config.etcdEndpoints), logger });
  const sweeper = setInterval(() => {
    leases.sweep().then((expired) => metrics.leasesExpired.inc(expired)).catch((error: unknown) => logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'lease sweep failed'));
  }, Math.max(500, Math.floor(config.leaseTtlMs / 4)));
  const { server: grpcServer, health } = createGrpcServer({ service, dataPlaneService, dataplaneToken: config.dataplaneToken, logger });
  const checkReady = async () => {
    await store.ping();
    await pool.query('SELECT 1').catch((error: unknown) => {
      throw new OperatorError('unavailable', `postgres: ${error instanceof Error ? error.message : String(error)}`);
    });
  };
  const adminServer = createAdminHttpServer({ service, logger, checkReady, metrics: metrics.registry });

  const grpcPort = await bindGrpcServer(grpcServer, `${formatHost(config.grpcAddress.host)}:${config.grpcAddress.port}`);
  const adminPort = await listen(adminServer, config.adminAddress.host, config.adminAddress.port);
  for (const name of ['', ...SERVICE_NAMES]) health.setStatus(name, 'SERVING');
  logger.info({ grpc: `${config.grpcAddress.host}:${grpcPort}`, admin: `http://${config.adminAddress.host}:${adminPort}` }, 'control plane listening');

  let stopping: Promise<void> | null = null;
  return {
    grpcPort,
    adminPort,
    stop() {
      stopping ??= (async () => {
        for (const name of ['', ...SERVICE_NAMES]) health.setStatus(name, 'NOT_SERVING');
        clearInterval(sweeper);
        clearInterval(partitionKeeper);
        await janitor.stop();
        await compactor?.stop();
        etcdStatus.close();
        await stopReclaimWatch?.();
        await feed.stop();
        await pricedIntents.stop();
        // Data-plane streams never end on their own: tryShutdown would wait for them forever.
        const forced = setTimeout(() => grpcServer.forceShutdown(), 2000);
        await Promise.all([
          new Promise<void>((resolve) => grpcServer.tryShutdown(() => {
            clearTimeout(forced);
            resolve();
          })),
          new Promise<void>((resolve) => {
            adminServer.close(() => resolve());
            adminServer.closeAllConnections();
          }),
        ]);
        store.close();
        ledger.close();
        await pool.end();
      })();
      return stopping;
    },
  };
}

function listen(server: HttpServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const failed = (error: Error) => reject(new Error(`KEYBRAKE_ADMIN_ADDR: cannot listen on ${host}:${port}: ${error.message}`, { cause: error }));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
