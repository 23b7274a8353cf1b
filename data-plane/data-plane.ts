/**
 * The data-plane proxy. For now it only answers health probes and refuses every vendor call
 * with 503 `control_plane_unavailable` (it fails closed): policy sync from the control plane
 * and forwarding are the next piece of work.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Logger } from '../core/logger.js';
import type { DataPlaneConfig } from './config.js';

export interface RunningDataPlane {
  readonly port: number;
  stop(): Promise<void>;
}

export async function startDataPlane(config: DataPlaneConfig, logger: Logger): Promise<RunningDataPlane> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method === 'GET' && path === '/healthz') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    const body = JSON.stringify({
      error: { type: 'api_error', code: 'control_plane_unavailable', message: 'Keybrake data plane has no policy from a control plane yet; nothing was forwarded.' },
    });
    response.writeHead(503, { 'content-type': 'application/json', 'keybrake-error': 'control_plane_unavailable', 'stripe-should-retry': 'false' }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.proxyAddress.port, config.proxyAddress.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ proxy: `http://${config.proxyAddress.host}:${port}`, dataplane_id: config.dataplaneId }, 'data plane listening');
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
