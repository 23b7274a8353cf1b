/**
 * A load client that feeds a control plane audit records the way a data plane's shipper does
 * (data-plane/audit-shipper.ts): one DataPlaneService/Connect stream, Hello, wait for the
 * snapshot, then AuditBatch messages of 500 records, 4 batches in flight, each AuditAck
 * (sent once PostgreSQL has the batch) opening room for the next.
 */
import { credentials, Metadata, type ClientDuplexStream } from '@grpc/grpc-js';

import { DataPlaneServiceClient, type AuditRecord, type ConnectRequest, type ConnectResponse } from '../../gen/keybrake/v1/dataplane.js';

export const BATCH_SIZE = 500;
export const BATCHES_IN_FLIGHT = 4;

/** A deterministic generator, so that record contents vary without costing randomBytes per field. */
function xorshift(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function token(next: () => number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += BASE62[next() % 62];
  return out;
}

/**
 * `count` records of one data-plane incarnation, numbered from 1, as a busy Stripe pipeline
 * leaves them: charges of a few dollars by a few hundred keys, stamped over the last minute.
 */
export function makeRecords(count: number, incarnation: string, seed: number, nowMs = Date.now()): AuditRecord[] {
  const next = xorshift(seed);
  const keyIds = Array.from({ length: 200 }, () => `vk_${token(next, 20)}`);
  const records: AuditRecord[] = new Array<AuditRecord>(count);
  for (let i = 0; i < count; i++) {
    const seq = i + 1;
    const keyIndex = next() % keyIds.length;
    const amount = 500 + (next() % 20_000);
    const usdMicros = amount * 10_000;
    const chargeId = `ch_3${token(next, 23)}`;
    records[i] = {
      seq,
      incarnation,
      tsUnixMs: nowMs - 60_000 + Math.floor((i * 60_000) / count),
      keyId: keyIds[keyIndex]!,
      label: `metaflow/${100 + keyIndex}`,
      vendor: 'stripe',
      method: 'POST',
      path: '/v1/charges',
      status: 200,
      decision: 'allowed',
      reason: '',
      amount,
      currency: 'usd',
      estimatedUsdMicros: usdMicros,
      usdMicros,
      idempotencyKey: `cus_${token(next, 14)}-${amount}-2026-07-${seq}`,
      vendorRequestId: `req_${token(next, 14)}`,
      vendorObjectId: chargeId,
      stripeChargeId: chargeId,
      replayed: false,
      latencyMs: 60 + (next() % 400),
      callCount: 0,
    };
  }
  return records;
}

export interface FeedResult {
  readonly dataplaneId: string;
  readonly acked: number;
  /** performance.now() of the last acknowledgement. */
  readonly finishedAt: number;
  readonly batches: number;
}

export interface ConnectedFeeder {
  /** Sends every record (4 batches in flight) and resolves when the last one is acknowledged. */
  run(): Promise<FeedResult>;
  close(): void;
}

/**
 * Opens a stream as data plane `dataplaneId`, says Hello and resolves once the snapshot came:
 * from then on `run()` may be timed.
 */
export async function connectFeeder(options: {
  readonly address: string;
  readonly token: string;
  readonly dataplaneId: string;
  readonly incarnation: string;
  readonly records: readonly AuditRecord[];
  readonly timeoutMs: number;
}): Promise<ConnectedFeeder> {
  const { records } = options;
  const client = new DataPlaneServiceClient(options.address, credentials.createInsecure(), {
    'grpc.max_receive_message_length': 256 * 1024 * 1024,
    'grpc.max_send_message_length': 256 * 1024 * 1024,
  });
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${options.token}`);
  const stream: ClientDuplexStream<ConnectRequest, ConnectResponse> = client.connect(metadata);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    stream.cancel();
    client.close();
  };

  let onSnapshot: (() => void) | null = null;
  let onAck: ((upToSeq: number, incarnation: string) => void) | null = null;
  let onFailure: ((error: Error) => void) | null = null;
  stream.on('data', (message: ConnectResponse) => {
    if (message.snapshot !== undefined) onSnapshot?.();
    else if (message.auditAck !== undefined) onAck?.(message.auditAck.upToSeq, message.auditAck.incarnation);
  });
  const failed = (error: Error) => {
    if (!closed) onFailure?.(error);
  };
  stream.on('error', failed);
  stream.on('end', () => failed(new Error(`${options.dataplaneId}: the control plane ended the stream`)));

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${options.dataplaneId}: no snapshot within 10 s`)), 10_000);
      onSnapshot = () => {
        clearTimeout(timer);
        resolve();
      };
      onFailure = (error) => {
        clearTimeout(timer);
        reject(error);
      };
      stream.write({ hello: { dataplaneId: options.dataplaneId, incarnation: options.incarnation, leaseBatches: false } });
    });
  } catch (error) {
    close();
    throw error;
  }
  onSnapshot = null;

  // As a data plane ships them: its spool's JSON lines, serialised once before any is sent.
  const batchesJsonl: Buffer[] = [];
  for (let i = 0; i < records.length; i += BATCH_SIZE) {
    batchesJsonl.push(Buffer.from(records.slice(i, i + BATCH_SIZE).map((r) => `${JSON.stringify(r)}\n`).join('')));
  }
  const run = () =>
    new Promise<FeedResult>((resolve, reject) => {
      let nextIndex = 0;
      let inFlight = 0;
      let batches = 0;
      let acked = 0;
      const timer = setTimeout(
        () => reject(new Error(`${options.dataplaneId}: ${acked} of ${records.length} records acknowledged after ${options.timeoutMs} ms`)),
        options.timeoutMs,
      );
      const pump = () => {
        while (inFlight < BATCHES_IN_FLIGHT && nextIndex < records.length) {
          const jsonl = batchesJsonl[nextIndex / BATCH_SIZE]!;
          nextIndex += Math.min(BATCH_SIZE, records.length - nextIndex);
          inFlight++;
          batches++;
          stream.write({ auditBatch: { records: [], jsonl } });
        }
      };
      onFailure = (error) => {
        clearTimeout(timer);
        reject(error);
      };
      onAck = (upToSeq, incarnation) => {
        if (incarnation !== options.incarnation) return;
        inFlight = Math.max(0, inFlight - 1);
        // Batches are committed in order: the acknowledgement names the last sequence of one.
        acked = Math.max(acked, upToSeq);
        if (acked >= records.length) {
          clearTimeout(timer);
          resolve({ dataplaneId: options.dataplaneId, acked, finishedAt: performance.now(), batches });
          return;
        }
        pump();
      };
      pump();
    });
  return { run, close };
}
