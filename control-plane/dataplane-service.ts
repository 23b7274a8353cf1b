/**
 * DataPlaneService/Connect: one stream per data plane. Authenticated by the shared data-plane
 * token; after Hello, the data plane gets the pepper, a full snapshot, then every change and
 * a heartbeat whenever the stream has been quiet.
 */
import { randomBytes } from 'node:crypto';

import { Metadata, status, type ServerDuplexStream } from '@grpc/grpc-js';

import type { Logger } from '../core/logger.js';
import type { ConnectRequest, ConnectResponse, DataPlaneServiceServer } from '../gen/keybrake/v1/dataplane.js';
import { constantTimeEqual } from './crypto.js';
import type { FeedEvent, PolicyFeed } from './policy-feed.js';

export interface DataPlaneServiceOptions {
  readonly feed: PolicyFeed;
  readonly dataplaneToken: string;
  readonly pepper: Buffer;
  readonly logger: Logger;
  readonly heartbeatIntervalMs?: number;
}

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 2000;

export function createDataPlaneService(options: DataPlaneServiceOptions): DataPlaneServiceServer {
  const { feed, logger } = options;
  const controlplaneId = `cp-${randomBytes(4).toString('hex')}`;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;

  return {
    connect(call: ServerDuplexStream<ConnectRequest, ConnectResponse>) {
      const [auth] = call.metadata.get('authorization');
      const token = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : '';
      if (!constantTimeEqual(token, options.dataplaneToken)) {
        call.emit('error', { code: status.UNAUTHENTICATED, details: 'unknown data-plane token', metadata: new Metadata() });
        return;
      }
      let unsubscribe: (() => void) | null = null;
      let heartbeat: NodeJS.Timeout | null = null;
      let lastSent = Date.now();
      const send = (message: ConnectResponse) => {
        lastSent = Date.now();
        call.write(message);
      };
      const close = () => {
        unsubscribe?.();
        unsubscribe = null;
        if (heartbeat !== null) clearInterval(heartbeat);
        heartbeat = null;
      };

      call.on('data', (request: ConnectRequest) => {
        if (request.hello === undefined || unsubscribe !== null) return;
        const { dataplaneId, incarnation } = request.hello;
        logger.info({ dataplane_id: dataplaneId, incarnation }, 'data plane connected');
        send({ welcome: { controlplaneId, keyHashPepper: options.pepper, heartbeatIntervalMs } });
        // Snapshot and subscription in the same tick: no change falls between them.
        const snapshot = feed.snapshot();
        unsubscribe = feed.subscribe((event) => send(toResponse(event)));
        send({ snapshot });
        heartbeat = setInterval(() => {
          if (Date.now() - lastSent >= heartbeatIntervalMs / 2) send({ heartbeat: { sentAtUnixMs: Date.now() } });
        }, heartbeatIntervalMs / 2);
      });
      call.on('end', () => {
        close();
        call.end();
      });
      call.on('error', close);
      call.on('cancelled', close);
      call.on('close', close);
    },
  };
}

function toResponse(event: FeedEvent): ConnectResponse {
  switch (event.kind) {
    case 'key':
      return { keyUpdate: { key: event.policy, revision: event.revision } };
    case 'key-removed':
      return { keyRemoval: { id: event.id, keyHash: event.keyHash, revision: event.revision } };
    case 'secret':
      return { secretUpdate: { secret: event.secret, revision: event.revision } };
  }
}
