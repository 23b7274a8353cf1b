/**
 * The data plane's one stream to a control plane. It sends Hello, applies what comes down to
 * the PolicyCache, and reconnects (trying each configured control plane in turn) when the
 * stream breaks. While disconnected the cache keeps its last state; the proxy decides, from
 * the cache's silence, when to fail closed.
 */
import { randomBytes } from 'node:crypto';

import { credentials, Metadata, type ClientDuplexStream } from '@grpc/grpc-js';

import type { Logger } from '../core/logger.js';
import { TurnBatch } from '../core/turn-batch.js';
import { DataPlaneServiceClient, type AuditAck, type ConnectRequest, type ConnectResponse, type LeaseGrant, type LeaseMessage, type PricedIntent, type ReclaimRequest } from '../gen/keybrake/v1/dataplane.js';
import type { PolicyCache } from './policy-cache.js';

export interface ControlPlaneLinkOptions {
  readonly controlPlanes: readonly string[];
  readonly dataplaneToken: string;
  readonly dataplaneId: string;
  readonly cache: PolicyCache;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Lease answers and reclaim requests go to the spend side. */
  readonly onLeaseGrant?: (grant: LeaseGrant) => void;
  readonly onReclaim?: (reclaim: ReclaimRequest) => void;
  readonly onAuditAck?: (ack: AuditAck) => void;
  /** PaymentIntents priced at creation (through any data plane). */
  readonly onPricedIntents?: (intents: readonly PricedIntent[]) => void;
  /** A stream has delivered its snapshot: whatever must be (re)sent can go now. */
  readonly onSynced?: () => void;
}

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;
/** As the control plane reads them (MAX_LEASE_BATCH there). */
const MAX_LEASE_BATCH = 10_000;

export class ControlPlaneLink {
  readonly incarnation = randomBytes(8).toString('hex');
  private readonly now: () => number;
  private client: DataPlaneServiceClient | null = null;
  private stream: ClientDuplexStream<ConnectRequest, ConnectResponse> | null = null;
  private stopped = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private connectedListeners: (() => void)[] = [];
  /** True while the current stream has delivered its snapshot. */
  private synced = false;

  constructor(private readonly options: ControlPlaneLinkOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  start(): void {
    this.connect();
    // A stream can go quiet without breaking (a half-dead connection, a control plane that
    // stopped talking): with no message for a few heartbeats, start a new one.
    this.watchdog = setInterval(() => {
      if (this.stream !== null && this.synced && this.now() - this.lastReceivedMs > Math.max(6000, 3 * this.heartbeatIntervalMs)) {
        this.options.logger.warn({ silent_ms: Math.round(this.now() - this.lastReceivedMs) }, 'control-plane stream went quiet; reconnecting');
        this.stream.cancel();
      }
    }, 1000);
  }

  private watchdog: NodeJS.Timeout | null = null;
  private lastReceivedMs = 0;
  private heartbeatIntervalMs = 2000;

  /** Resolves once a snapshot has been applied (or after `timeoutMs`). */
  whenSynced(timeoutMs: number): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.connectedListeners.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /**
   * Sends on the current stream; false when there is none that has synced. Lease requests and
   * usage reports made in the same turn go as one LeaseBatch when the control plane reads them.
   */
  send(messages: readonly ConnectRequest[]): boolean {
    const stream = this.stream;
    if (stream === null || !this.synced) return false;
    for (const message of messages) {
      if (!this.leaseBatches) stream.write(message);
      else if (message.leaseRequest !== undefined) this.leaseOutbox.add({ stream, message: { request: message.leaseRequest } });
      else if (message.usageReport !== undefined) this.leaseOutbox.add({ stream, message: { report: message.usageReport } });
      else stream.write(message);
    }
    return true;
  }

  /** The control plane's Welcome said it reads LeaseBatch. */
  private leaseBatches = false;
  private readonly leaseOutbox = new TurnBatch<{ stream: ClientDuplexStream<ConnectRequest, ConnectResponse>; message: LeaseMessage }>((queued) => {
    // A stream that broke meanwhile takes its messages with it, as it would have written ones: the lease book asks again.
    const messages = queued.filter((q) => q.stream === this.stream).map((q) => q.message);
    const stream = this.stream;
    if (stream === null) return;
    for (let i = 0; i < messages.length; i += MAX_LEASE_BATCH) stream.write({ leaseBatch: { messages: messages.slice(i, i + MAX_LEASE_BATCH) } });
  });

  /** Sends what must go out before stopping (lease returns), then stops. */
  async drainAndStop(messages: readonly ConnectRequest[], waitMs = 200): Promise<void> {
    if (messages.length > 0 && this.send(messages)) await new Promise((resolve) => setTimeout(resolve, waitMs));
    this.stop();
  }

  stop(): void {
    this.stopped = true;
    if (this.watchdog !== null) clearInterval(this.watchdog);
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.stream?.cancel();
    this.client?.close();
  }

  private connect(): void {
    if (this.stopped) return;
    const address = this.options.controlPlanes[this.attempt % this.options.controlPlanes.length]!;
    this.client?.close();
    this.client = new DataPlaneServiceClient(address, credentials.createInsecure(), {
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    });
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${this.options.dataplaneToken}`);
    const stream = this.client.connect(metadata);
    this.stream = stream;
    stream.on('data', (message: ConnectResponse) => this.receive(message, address));
    const broken = (reason: string) => {
      if (this.stream !== stream) return;
      this.stream = null;
      this.synced = false;
      if (this.stopped) return;
      this.attempt++;
      const delay = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.min(this.attempt, 5));
      this.options.logger.warn({ control_plane: address, reason, retry_in_ms: delay }, 'control-plane stream lost');
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    };
    stream.on('error', (error: Error) => broken(error.message));
    stream.on('end', () => broken('stream ended'));
    stream.write({ hello: { dataplaneId: this.options.dataplaneId, incarnation: this.incarnation, leaseBatches: true } });
  }

  private receive(message: ConnectResponse, address: string): void {
    const cache = this.options.cache;
    const now = this.now();
    this.lastReceivedMs = now;
    if (message.welcome !== undefined) {
      if (message.welcome.heartbeatIntervalMs > 0) this.heartbeatIntervalMs = message.welcome.heartbeatIntervalMs;
      this.leaseBatches = message.welcome.leaseBatches;
      cache.welcome(message.welcome.keyHashPepper, now);
    } else if (message.snapshot !== undefined) {
      cache.applySnapshot(message.snapshot, now);
      // A second snapshot on the same stream: the control plane's watch started again; the cache
      // looks up again the keys it holds, and nothing else about the stream changed.
      if (this.synced) return;
      this.attempt = 0;
      this.synced = true;
      this.options.logger.info({ control_plane: address, keys_held: cache.keyCount, revision: cache.revision }, 'policy snapshot applied');
      for (const listener of this.connectedListeners.splice(0)) listener();
      this.options.onSynced?.();
    } else if (message.keyUpdate?.key !== undefined) {
      cache.applyKey(message.keyUpdate.key, message.keyUpdate.revision, now);
    } else if (message.keyRemoval !== undefined) {
      cache.applyKeyRemoval(message.keyRemoval.id, message.keyRemoval.keyHash, message.keyRemoval.revision, now);
    } else if (message.keyLookupResult !== undefined) {
      // Intents first: a call waiting for this key must find what was priced for it.
      if (message.keyLookupResult.pricedIntents.length > 0) this.options.onPricedIntents?.(message.keyLookupResult.pricedIntents);
      cache.applyLookupResult(message.keyLookupResult, now);
    } else if (message.secretUpdate?.secret !== undefined) {
      cache.applySecret(message.secretUpdate.secret, message.secretUpdate.revision, now);
    } else if (message.heartbeat !== undefined) {
      cache.heard(now);
    } else if (message.leaseGrant !== undefined) {
      cache.heard(now);
      this.options.onLeaseGrant?.(message.leaseGrant);
    } else if (message.leaseGrants !== undefined) {
      cache.heard(now);
      for (const grant of message.leaseGrants.grants) this.options.onLeaseGrant?.(grant);
    } else if (message.reclaim !== undefined) {
      cache.heard(now);
      this.options.onReclaim?.(message.reclaim);
    } else if (message.auditAck !== undefined) {
      cache.heard(now);
      this.options.onAuditAck?.(message.auditAck);
    } else if (message.pricedIntents !== undefined) {
      cache.heard(now);
      this.options.onPricedIntents?.(message.pricedIntents.intents);
    }
  }
}
