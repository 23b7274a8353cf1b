/**
 * Ships spooled audit records to the control plane over the data plane's stream, a few batches
 * in flight at a time, and drops them from the spool when the control plane acknowledges that
 * PostgreSQL has them. After a reconnect everything unacknowledged is sent again: the control
 * plane ignores what it already has.
 */
import type { AuditAck, ConnectRequest } from '../gen/keybrake/v1/dataplane.js';
import type { AuditSpool } from './audit-spool.js';

/** Unacknowledged for this long, the batches in flight are taken as not stored and sent again. */
const RESEND_AFTER_MS = 3000;

export interface AuditShipperOptions {
  readonly spool: AuditSpool;
  readonly send: (messages: readonly ConnectRequest[]) => boolean;
  readonly batchSize?: number;
  readonly maxBatchesInFlight?: number;
  /** A record waits at most this long for others to share its batch. */
  readonly delayMs?: number;
}

export class AuditShipper {
  /** How many pending records have been sent on the current stream. */
  private sent = 0;
  private batchesInFlight = 0;
  private readonly batchSize: number;
  private readonly maxBatchesInFlight: number;
  private readonly delayMs: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: AuditShipperOptions) {
    this.batchSize = options.batchSize ?? 500;
    this.maxBatchesInFlight = options.maxBatchesInFlight ?? 4;
    this.delayMs = options.delayMs ?? 50;
  }

  /**
   * A record was spooled: it leaves with the next batch, within `delayMs`. Under load batches
   * fill up instead of each record (or each acknowledgement's worth) becoming its own message,
   * insert and acknowledgement: that per-batch work is most of what auditing costs.
   */
  recordSpooled(): void {
    this.timer ??= setTimeout(() => {
      this.timer = null;
      this.pump();
    }, this.delayMs);
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private lastAckOrSendMs = 0;

  /**
   * Sends what is pending, as far as the window allows. Batches that stay unacknowledged too
   * long (the control plane could not store them) are sent again, from the oldest.
   */
  pump(nowMs = performance.now(), fullBatchesOnly = false): void {
    if (this.batchesInFlight > 0 && nowMs - this.lastAckOrSendMs > RESEND_AFTER_MS) {
      this.sent = 0;
      this.batchesInFlight = 0;
    }
    while (this.batchesInFlight < this.maxBatchesInFlight) {
      const records = this.options.spool.unacked(this.sent, this.batchSize);
      if (records.length === 0) return;
      if (fullBatchesOnly && records.length < this.batchSize) {
        this.recordSpooled();
        return;
      }
      // The spooled lines as they are: no record is serialised a second time.
      if (!this.options.send([{ auditBatch: { records: [], jsonl: Buffer.from(records.map((r) => r.line).join('')) } }])) return;
      this.sent += records.length;
      if (this.batchesInFlight === 0) this.lastAckOrSendMs = nowMs;
      this.batchesInFlight++;
    }
  }

  onAck(ack: AuditAck): void {
    this.lastAckOrSendMs = performance.now();
    const dropped = this.options.spool.ack(ack.incarnation, ack.upToSeq);
    this.sent = Math.max(0, this.sent - dropped);
    this.batchesInFlight = Math.max(0, this.batchesInFlight - 1);
    // A backlog goes on at once; a partial batch waits for its timer to fill up.
    this.pump(performance.now(), true);
  }

  /** A new stream: nothing is in flight on it, so everything unacknowledged goes again. */
  onReconnect(): void {
    this.sent = 0;
    this.batchesInFlight = 0;
    this.pump();
  }
}
