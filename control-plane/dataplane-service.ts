/**
 * DataPlaneService/Connect: one stream per data plane. Authenticated by the shared data-plane
 * token; after Hello, the data plane gets the pepper, a full snapshot, then every change and
 * a heartbeat whenever the stream has been quiet.
 */
import { randomBytes } from 'node:crypto';

import { Metadata, status, type ServerDuplexStream } from '@grpc/grpc-js';

import type { Logger } from '../core/logger.js';
import { TurnBatch } from '../core/turn-batch.js';
import type { ConnectRequest, ConnectResponse, DataPlaneServiceServer, KeyLookupResult, LeaseGrant, LeaseRequest, UsageReport } from '../gen/keybrake/v1/dataplane.js';
import type { KeyPolicies } from './key-policies.js';
import { constantTimeEqual } from './crypto.js';
import type { AuditStore } from './audit-store.js';
import { readAuditBatch, type ReadAuditBatch, type StoredRecord } from './audit-batch.js';
import { pricedIntentsIn, type PricedIntentBroadcast } from './priced-intents.js';
import type { LeaseService } from './lease-service.js';
import type { ControlPlaneMetrics } from './metrics.js';
import type { FeedEvent, PolicyFeed } from './policy-feed.js';

export interface DataPlaneServiceOptions {
  readonly feed: PolicyFeed;
  readonly policies: KeyPolicies;
  readonly leases: LeaseService;
  readonly audit: AuditStore;
  readonly pricedIntents: PricedIntentBroadcast;
  readonly metrics: ControlPlaneMetrics;
  /** Streams by data-plane id, so reclaims reach the holders connected here. */
  readonly streams: DataPlaneStreams;
  readonly dataplaneToken: string;
  readonly pepper: Buffer;
  readonly logger: Logger;
  readonly heartbeatIntervalMs?: number;
}

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 2000;
const DATAPLANE_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** A keyed hash as data planes compute it: hex HMAC-SHA256. */
const KEY_HASH = /^[0-9a-f]{64}$/;
/** An allowlist entry that confirms or captures PaymentIntents (whose creation may have been priced). */
const SETTLES_INTENTS = /^POST \/v1\/payment_intents\/[^/]+\/(?:confirm|capture)$/;
/** Hashes one lookup may carry; a data plane sends more in several. */
export const MAX_LOOKUP_HASHES = 1000;
const INCARNATION = /^[0-9a-f]{1,64}$/;
/** Lease requests and usage reports one LeaseBatch may carry. */
export const MAX_LEASE_BATCH = 10_000;

/** The data planes connected to this replica, by id. */
export class DataPlaneStreams {
  private readonly streams = new Map<string, (message: ConnectResponse) => void>();

  add(dataplaneId: string, send: (message: ConnectResponse) => void): () => void {
    this.streams.set(dataplaneId, send);
    return () => {
      if (this.streams.get(dataplaneId) === send) this.streams.delete(dataplaneId);
    };
  }

  send(dataplaneId: string, message: ConnectResponse): boolean {
    const send = this.streams.get(dataplaneId);
    send?.(message);
    return send !== undefined;
  }
}

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
      let unsubscribeIntents: (() => void) | null = null;
      let unregister: (() => void) | null = null;
      let dataplaneId = '';
      let heartbeat: NodeJS.Timeout | null = null;
      let lastSent = Date.now();
      const send = (message: ConnectResponse) => {
        lastSent = Date.now();
        call.write(message);
      };
      const close = () => {
        unsubscribe?.();
        unsubscribe = null;
        unsubscribeIntents?.();
        unsubscribeIntents = null;
        unregister?.();
        unregister = null;
        if (heartbeat !== null) clearInterval(heartbeat);
        heartbeat = null;
      };

      // Grants answered in the same turn go down as one LeaseGrants message to a data plane that reads them.
      let grantsInBatches = false;
      const grantBatch = new TurnBatch<LeaseGrant>((grants) => {
        if (unsubscribe !== null) send({ leaseGrants: { grants } });
      });
      const sendGrant = (grant: LeaseGrant) => (grantsInBatches ? grantBatch.add(grant) : send({ leaseGrant: grant }));
      const answerLease = (leaseRequest: LeaseRequest) => {
        options.leases.handleLeaseRequest(dataplaneId, leaseRequest).then(
          (grant) => {
            options.metrics.leaseRequests.inc({ result: grant.refused !== '' ? 'refused' : grant.short ? 'short' : 'granted' });
            sendGrant(grant);
          },
          (error: unknown) => {
            options.metrics.leaseRequests.inc({ result: 'failed' });
            logger.warn({ err: error instanceof Error ? error.message : String(error), dataplane_id: dataplaneId }, 'lease request failed');
            // Answer at once, so the waiting call fails closed now rather than at its timeout.
            const { keyId, window, leaseId, seq } = leaseRequest;
            sendGrant({ keyId, window, leaseId, seq, grantedTotalMicros: 0, ttlMs: 0, short: false, refused: 'ledger_unavailable', windowEndsAtUnixMs: 0 });
          },
        );
      };
      const settleUsage = (report: UsageReport) => {
        options.leases.handleUsageReport(report).then(() => options.metrics.usageReports.inc()).catch((error: unknown) =>
          logger.warn({ err: error instanceof Error ? error.message : String(error), dataplane_id: dataplaneId }, 'usage report failed; the next one carries the same totals'),
        );
      };

      /** Policies for the hashes a data plane asks about, and what was priced for them. */
      const lookUpKeys = async (keyHashes: readonly string[]): Promise<KeyLookupResult> => {
        const asked = keyHashes.slice(0, MAX_LOOKUP_HASHES);
        const wellFormed = asked.filter((hash) => KEY_HASH.test(hash));
        const { found, unknownHashes } = await options.policies.byHashes(wellFormed);
        options.metrics.keyLookups.inc(asked.length);
        const now = Date.now();
        // Only a key that may confirm or capture an intent has use for what was priced: the others skip PostgreSQL.
        const live = found.filter((k) => k.vendor === 'stripe' && !k.revoked && k.expiresAtUnixMs > now && k.allowedEndpoints.some((e) => SETTLES_INTENTS.test(e))).map((k) => k.id);
        const pricedIntents = await options.pricedIntents.forKeys(live).catch((error: unknown) => {
          logger.warn({ err: error instanceof Error ? error.message : String(error), dataplane_id: dataplaneId }, 'could not read priced intents; confirms of earlier intents will be priced again');
          return [];
        });
        return { keys: [...found], unknownKeyHashes: [...unknownHashes, ...asked.filter((hash) => !KEY_HASH.test(hash))], pricedIntents, failedKeyHashes: [] };
      };

      // Audit batches are committed in the order they came, then acknowledged (acks are cumulative).
      // After a failed batch nothing behind it is stored or acknowledged, so no later ack can cover
      // it, until the data plane, having heard no ack, sends everything unacknowledged again. The
      // stream itself stays up: leases and policy keep flowing while PostgreSQL is away.
      let auditChain: Promise<void> = Promise.resolve();
      let auditFailed = false;
      const lastSeqs = new Map<string, number>();
      const resumesAfterFailure = (records: readonly StoredRecord[]) => {
        const firstSeqs = new Map<string, number>();
        for (const { record: r } of records) firstSeqs.set(r.incarnation, Math.min(firstSeqs.get(r.incarnation) ?? r.seq, r.seq));
        for (const [incarnation, first] of firstSeqs) if (first > (lastSeqs.get(incarnation) ?? 0) + 1 && lastSeqs.has(incarnation)) return false;
        return true;
      };
      const ingest = async (batch: ReadAuditBatch) => {
        if (auditFailed) {
          if (!resumesAfterFailure(batch.records)) return;
          auditFailed = false;
        }
        const records = batch.records.map((stored) => stored.record);
        const byIncarnation = new Map<string, number[]>();
        for (const record of records) {
          const seqs = byIncarnation.get(record.incarnation);
          if (seqs === undefined) byIncarnation.set(record.incarnation, [record.seq]);
          else seqs.push(record.seq);
        }
        const { flagged, quarantined } = await options.audit.insert(dataplaneId, batch);
        if (flagged > 0) options.metrics.auditRecordsFlagged.inc(flagged);
        if (quarantined > 0) options.metrics.auditLinesQuarantined.inc(quarantined);
        const committedAt = Date.now();
        const priced = pricedIntentsIn(records);
        if (priced.length > 0) {
          options.pricedIntents.publish(priced).catch((error: unknown) =>
            logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'could not announce priced intents; a confirm on another data plane may be priced again'));
        }
        options.metrics.auditRecords.inc(records.length);
        for (const record of records) options.metrics.auditLag.observe(Math.max(0, committedAt - record.tsUnixMs) / 1000);
        for (const [incarnation, seqs] of byIncarnation) {
          seqs.sort((a, b) => a - b);
          const first = seqs[0]!;
          const last = seqs.at(-1)!;
          const previous = lastSeqs.get(incarnation);
          if (previous !== undefined && first > previous + 1) await options.audit.recordGap(dataplaneId, incarnation, previous + 1, first - 1);
          lastSeqs.set(incarnation, Math.max(previous ?? 0, last));
          send({ auditAck: { incarnation, upToSeq: last } });
        }
      };

      call.on('data', (request: ConnectRequest) => {
        if (request.auditBatch !== undefined && unsubscribe !== null) {
          const batch = request.auditBatch;
          // A batch that cannot be read fails like one PostgreSQL refused: nothing behind it is stored.
          auditChain = auditChain.then(() => ingest(readAuditBatch(batch))).catch((error: unknown) => {
            if (!auditFailed) logger.error({ err: error instanceof Error ? error.message : String(error), dataplane_id: dataplaneId }, 'could not store audit records; waiting for the data plane to send them again');
            auditFailed = true;
          });
          return;
        }
        if (request.leaseRequest !== undefined && unsubscribe !== null) {
          answerLease(request.leaseRequest);
          return;
        }
        if (request.leaseBatch !== undefined && unsubscribe !== null) {
          const { messages } = request.leaseBatch;
          if (messages.length > MAX_LEASE_BATCH) {
            call.emit('error', { code: status.INVALID_ARGUMENT, details: `lease_batch: at most ${MAX_LEASE_BATCH} messages, got ${messages.length}`, metadata: new Metadata() });
            return;
          }
          for (const message of messages) {
            if (message.request !== undefined) answerLease(message.request);
            else if (message.report !== undefined) settleUsage(message.report);
          }
          return;
        }
        if (request.keyLookup !== undefined && unsubscribe !== null) {
          lookUpKeys(request.keyLookup.keyHashes).then(
            (result) => send({ keyLookupResult: result }),
            (error: unknown) => {
              logger.warn({ err: error instanceof Error ? error.message : String(error), dataplane_id: dataplaneId }, 'key lookup failed; its calls fail closed');
              send({ keyLookupResult: { keys: [], unknownKeyHashes: [], pricedIntents: [], failedKeyHashes: request.keyLookup!.keyHashes.slice(0, MAX_LOOKUP_HASHES) } });
            },
          );
          return;
        }
        if (request.usageReport !== undefined && unsubscribe !== null) {
          settleUsage(request.usageReport);
          return;
        }
        if (request.hello === undefined || unsubscribe !== null) return;
        // Both name every audit row this stream stores (and its primary key): bounded like the data plane's own config.
        if (!DATAPLANE_ID.test(request.hello.dataplaneId) || !INCARNATION.test(request.hello.incarnation)) {
          call.emit('error', { code: status.INVALID_ARGUMENT, details: 'hello: dataplane_id must be 1-64 of A-Z a-z 0-9 . _ - and incarnation 1-64 hex digits', metadata: new Metadata() });
          return;
        }
        dataplaneId = request.hello.dataplaneId;
        const incarnation = request.hello.incarnation;
        grantsInBatches = request.hello.leaseBatches;
        unregister = options.streams.add(dataplaneId, send);
        options.metrics.dataPlaneStreams.inc();
        const unregisterStream = unregister;
        unregister = () => {
          unregisterStream();
          options.metrics.dataPlaneStreams.dec();
        };
        logger.info({ dataplane_id: dataplaneId, incarnation }, 'data plane connected');
        send({ welcome: { controlplaneId, keyHashPepper: options.pepper, heartbeatIntervalMs, leaseBatches: true } });
        // Snapshot and subscription in the same tick: no change falls between them. Keys are not
        // in it: the data plane looks up each key it is presented (and again, on a new stream,
        // each key it holds), which also brings the intents priced for it.
        const snapshot = feed.snapshot();
        unsubscribe = feed.subscribe((event) => send(toResponse(event)));
        send({ snapshot: { keys: [], secrets: snapshot.secrets, revision: snapshot.revision } });
        unsubscribeIntents = options.pricedIntents.subscribe((intents) => send({ pricedIntents: { intents } }));
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
    case 'resync':
      return { snapshot: { keys: [], secrets: event.snapshot.secrets, revision: event.snapshot.revision } };
    case 'key':
      return { keyUpdate: { key: event.policy, revision: event.revision } };
    case 'key-removed':
      return { keyRemoval: { id: event.id, keyHash: event.keyHash, revision: event.revision } };
    case 'secret':
      return { secretUpdate: { secret: event.secret, revision: event.revision } };
  }
}
