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
import { createDataPlaneService } from './dataplane-service.js';
import { bindGrpcServer, createGrpcServer, SERVICE_NAMES } from './grpc-server.js';
import { PolicyFeed } from './policy-feed.js';
import { OperatorService } from './operator-service.js';

export interface RunningControlPlane {
  readonly grpcPort: number;
  readonly adminPort: number;
  stop(): Promise<void>;
}

export async function startControlPlane(config: ControlPlaneConfig, logger: Logger): Promise<RunningControlPlane> {
  const store = new EtcdStore({ endpoints: config.etcdEndpoints, prefix: config.etcdPrefix });
  const pool = createPool(config.databaseUrl);
  const keys = deriveKeys(config.masterKey);
  const feed = new PolicyFeed(store, keys.wrapKey, logger);
  try {
    await store.ping();
    await runMigrations(pool, logger);
    await feed.start();
  } catch (error) {
    await feed.stop();
    store.close();
    await pool.end();
    throw error;
  }

  const service = new OperatorService({ store, keys, adminToken: config.adminToken });
  const dataPlaneService = createDataPlaneService({ feed, dataplaneToken: config.dataplaneToken, pepper: keys.pepper, logger, heartbeatIntervalMs: config.heartbeatIntervalMs });
  const { server: grpcServer, health } = createGrpcServer({ service, dataPlaneService, logger });
  const checkReady = async () => {
    await store.ping();
    await pool.query('SELECT 1').catch((error: unknown) => {
      throw new OperatorError('unavailable', `postgres: ${error instanceof Error ? error.message : String(error)}`);
    });
  };
  const adminServer = createAdminHttpServer({ service, logger, checkReady });

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
        await feed.stop();
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
        await pool.end();
      })();
      return stopping;
    },
  };
}

function listen(server: HttpServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
