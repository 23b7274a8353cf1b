/**
 * PaymentIntents whose amount was counted when they were created, known to every data plane.
 * Confirming or capturing such an intent moves money already counted, so it costs nothing more,
 * wherever the confirm arrives. The record is the audit trail itself (the creation's row says
 * key, intent id and that it was priced); a new stream gets the live keys' intents from it, and
 * every replica hears of new ones through PostgreSQL LISTEN/NOTIFY and tells its data planes.
 *
 * Anything lost on the way (a notification during a reconnect, a confirm that beats the
 * creation's audit record) makes a data plane price the confirm again: counted twice, never
 * under-counted.
 */
import pg from 'pg';

import type { Logger } from '../core/logger.js';
import type { AuditRecord, PricedIntent } from '../gen/keybrake/v1/dataplane.js';

const CHANNEL = 'keybrake_priced_intents';
/** NOTIFY payloads must stay under 8,000 bytes. */
const MAX_PAYLOAD_BYTES = 7000;
const RECONNECT_DELAY_MS = 1000;

/** The intents a batch of audit records shows were created and priced through a data plane (`forKeys` asks the same of PostgreSQL). */
export function pricedIntentsIn(records: readonly AuditRecord[]): PricedIntent[] {
  return records
    .filter((r) => r.vendor === 'stripe' && r.method === 'POST' && r.path === '/v1/payment_intents' && r.decision === 'allowed'
      && r.status >= 200 && r.status <= 299 && r.usdMicros > 0 && !r.replayed && r.keyId !== '' && r.vendorObjectId.startsWith('pi_'))
    .map((r) => ({ keyId: r.keyId, intentId: r.vendorObjectId, pricedMicros: r.usdMicros }));
}

/** Payloads of at most MAX_PAYLOAD_BYTES each, as `[[keyId, intentId, pricedMicros], …]`. */
export function notificationPayloads(intents: readonly PricedIntent[]): string[] {
  const payloads: string[] = [];
  let current: [string, string, number][] = [];
  let bytes = 2;
  for (const { keyId, intentId, pricedMicros } of intents) {
    const size = Buffer.byteLength(JSON.stringify([keyId, intentId, pricedMicros])) + 1;
    if (current.length > 0 && bytes + size > MAX_PAYLOAD_BYTES) {
      payloads.push(JSON.stringify(current));
      current = [];
      bytes = 2;
    }
    current.push([keyId, intentId, pricedMicros]);
    bytes += size;
  }
  if (current.length > 0) payloads.push(JSON.stringify(current));
  return payloads;
}

/** A replica that predates pricedMicros sends pairs: their intents count as priced at 0 (a confirm then counts in full). */
export function parsePayload(payload: string): PricedIntent[] {
  const parsed = JSON.parse(payload) as unknown;
  if (!Array.isArray(parsed)) return [];
  return parsed
    .filter((entry): entry is [string, string, unknown?] => Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'string')
    .map(([keyId, intentId, micros]) => ({ keyId, intentId, pricedMicros: Number.isSafeInteger(micros) && (micros as number) > 0 ? (micros as number) : 0 }));
}

export class PricedIntentBroadcast {
  private readonly listeners = new Set<(intents: PricedIntent[]) => void>();
  private listener: pg.Client | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly databaseUrl: string,
    private readonly logger: Logger,
  ) {}

  /** Listens from now on; fails if PostgreSQL cannot be reached (start-up needs it anyway). */
  async start(): Promise<void> {
    await this.listen();
  }

  /** A new listening connection, in place of any earlier one. */
  private async listen(): Promise<void> {
    const client = this.newListener();
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
  }

  private newListener(): pg.Client {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    client.on('notification', (message) => {
      if (message.channel !== CHANNEL || message.payload === undefined) return;
      let intents: PricedIntent[];
      try {
        intents = parsePayload(message.payload);
      } catch {
        return;
      }
      for (const listener of this.listeners) listener(intents);
    });
    client.on('error', (error) => this.lost(client, error.message));
    client.on('end', () => this.lost(client, 'connection ended'));
    this.listener = client;
    return client;
  }

  private lost(client: pg.Client, reason: string): void {
    if (this.stopped || this.listener !== client) return;
    this.listener = null;
    client.end().catch(() => {});
    this.logger.warn({ reason }, 'lost the priced-intents listener; until it is back, a confirm on another data plane may be priced again');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.listen().catch((error: unknown) => {
        // Unless its 'error' event already did, the failed connection starts the next attempt.
        if (this.listener !== null) this.lost(this.listener, error instanceof Error ? error.message : String(error));
      });
    }, RECONNECT_DELAY_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.listeners.clear();
    const client = this.listener;
    this.listener = null;
    await client?.end().catch(() => {});
  }

  /** Tells every replica (this one included) of intents just priced. */
  async publish(intents: readonly PricedIntent[]): Promise<void> {
    for (const payload of notificationPayloads(intents)) await this.pool.query('SELECT pg_notify($1, $2)', [CHANNEL, payload]);
  }

  subscribe(listener: (intents: PricedIntent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The intents priced at creation for these keys, from the audit trail: `pricedIntentsIn`'s test, in SQL. */
  async forKeys(keyIds: readonly string[]): Promise<PricedIntent[]> {
    if (keyIds.length === 0) return [];
    const result = await this.pool.query<{ key_id: string; vendor_object_id: string; usd_micros: string }>(
      `SELECT key_id, vendor_object_id, max(usd_micros)::text AS usd_micros FROM audit_records
        WHERE key_id = ANY($1::text[]) AND vendor = 'stripe' AND method = 'POST' AND path = '/v1/payment_intents'
          AND decision = 'allowed' AND status BETWEEN 200 AND 299 AND usd_micros > 0 AND NOT replayed AND vendor_object_id LIKE 'pi\\_%'
        GROUP BY key_id, vendor_object_id`,
      [keyIds],
    );
    return result.rows.map((row) => ({ keyId: row.key_id, intentId: row.vendor_object_id, pricedMicros: Number(row.usd_micros) }));
  }
}
