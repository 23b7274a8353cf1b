/**
 * etcd's size on the control plane's /metrics: each member's database size (what counts against
 * etcd's --quota-backend-bytes) and the last compaction, read when Prometheus scrapes but at most
 * every `maxAgeMs` (10 s), so scrapes from several Prometheus servers or a dashboard cost etcd
 * one Status call per member per 10 s.
 *
 * Each endpoint of KEYBRAKE_ETCD_ENDPOINTS is asked separately (a pooled client would answer
 * from a random member each time, and members differ: one may be defragmented and another not).
 * A scrape never fails because of etcd: a member that does not answer within `timeoutMs` has no
 * sample in that scrape (its series is absent, not stale), and the compaction gauges are absent
 * until a compaction has been recorded and while no member answers.
 */
import { performance } from 'node:perf_hooks';

import { Etcd3 } from 'etcd3';
import { Gauge, type Registry } from 'prom-client';

import type { Logger } from '../core/logger.js';
import { COMPACTION_LAST_KEY, readLastCompaction, type LastCompaction } from './etcd-compaction.js';

export interface EtcdMemberStatus {
  readonly dbSize: number;
  readonly dbSizeInUse: number;
  readonly revision: number;
}

/** What the gauges read; EtcdStatusSource in production, a fake in unit tests. */
export interface EtcdStatusReader {
  readonly endpoints: readonly string[];
  status(endpoint: string, timeoutMs: number): Promise<EtcdMemberStatus>;
  lastCompaction(endpoint: string, timeoutMs: number): Promise<LastCompaction | null>;
  close(): void;
}

/** One small client per endpoint, dialled on first use. */
export class EtcdStatusSource implements EtcdStatusReader {
  private readonly clients = new Map<string, Etcd3>();

  constructor(readonly endpoints: readonly string[]) {}

  async status(endpoint: string, timeoutMs: number): Promise<EtcdMemberStatus> {
    const status = await this.client(endpoint, timeoutMs).maintenance.status({ deadline: Date.now() + timeoutMs });
    return { dbSize: Number(status.dbSize), dbSizeInUse: Number(status.dbSizeInUse), revision: Number(status.header.revision) };
  }

  async lastCompaction(endpoint: string, timeoutMs: number): Promise<LastCompaction | null> {
    const text = await this.client(endpoint, timeoutMs).get(COMPACTION_LAST_KEY).options({ deadline: Date.now() + timeoutMs }).string();
    return text === null ? null : readLastCompaction(text);
  }

  private client(endpoint: string, timeoutMs: number): Etcd3 {
    let client = this.clients.get(endpoint);
    if (client === undefined) {
      client = new Etcd3({ hosts: [endpoint], dialTimeout: timeoutMs });
      this.clients.set(endpoint, client);
    }
    return client;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** A gauge without labels that has no sample at all (rather than 0) while its value is unknown. */
class OptionalGauge extends Gauge {
  private known = false;

  setKnown(value: number | null): void {
    this.known = value !== null;
    if (value !== null) this.set(value);
  }

  override async get(): ReturnType<Gauge['get']> {
    const metric = await super.get();
    return this.known ? metric : { ...metric, values: [] };
  }
}

export interface EtcdStatusMetricsOptions {
  readonly registry: Registry;
  readonly reader: EtcdStatusReader;
  readonly logger: Logger;
  /** Answers younger than this are served from memory (default 10 s). */
  readonly maxAgeMs?: number;
  /** Per etcd call (default 2 s): a scrape waits at most about this long for etcd. */
  readonly timeoutMs?: number;
  /** Monotonic milliseconds. */
  readonly now?: () => number;
}

export class EtcdStatusMetrics {
  private readonly maxAgeMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly dbSize: Gauge<'endpoint'>;
  private readonly dbSizeInUse: Gauge<'endpoint'>;
  private readonly revision: Gauge<'endpoint'>;
  private readonly compactedRevision: OptionalGauge;
  private readonly compactedAt: OptionalGauge;
  private refreshing: Promise<void> | null = null;
  private refreshedAtMs = Number.NEGATIVE_INFINITY;
  /** Endpoints (and 'last compaction') whose failure was logged; logged again only after they answered. */
  private readonly failing = new Set<string>();

  constructor(private readonly options: EtcdStatusMetricsOptions) {
    this.maxAgeMs = options.maxAgeMs ?? 10_000;
    this.timeoutMs = options.timeoutMs ?? 2_000;
    this.now = options.now ?? (() => performance.now());
    const registers = [options.registry];
    const collect = () => this.refresh();
    this.dbSize = new Gauge({
      name: 'keybrake_etcd_db_size_bytes',
      help: 'Size of the etcd member’s database file (what --quota-backend-bytes limits); shrinks only with etcdctl defrag',
      labelNames: ['endpoint'] as const,
      registers,
      collect,
    });
    this.dbSizeInUse = new Gauge({
      name: 'keybrake_etcd_db_size_in_use_bytes',
      help: 'Part of the etcd member’s database file in use; the rest is free space a defrag would give back',
      labelNames: ['endpoint'] as const,
      registers,
      collect,
    });
    this.revision = new Gauge({ name: 'keybrake_etcd_revision', help: 'The etcd member’s current revision', labelNames: ['endpoint'] as const, registers, collect });
    this.compactedRevision = new OptionalGauge({
      name: 'keybrake_etcd_compacted_revision',
      help: 'Revision up to which the control planes last compacted etcd’s history (absent until one has)',
      registers,
      collect,
    });
    this.compactedAt = new OptionalGauge({
      name: 'keybrake_etcd_last_compaction_timestamp_seconds',
      help: 'When the control planes last compacted etcd’s history, unix seconds (absent until one has)',
      registers,
      collect,
    });
  }

  /** Reads etcd unless the last read is younger than maxAgeMs; never throws. */
  refresh(): Promise<void> {
    if (this.refreshing !== null) return this.refreshing;
    if (this.now() - this.refreshedAtMs < this.maxAgeMs) return Promise.resolve();
    this.refreshedAtMs = this.now();
    this.refreshing = this.read().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  close(): void {
    this.options.reader.close();
  }

  private async read(): Promise<void> {
    const { reader } = this.options;
    const answers = await Promise.all(reader.endpoints.map(async (endpoint) => ({ endpoint, status: await this.bounded(endpoint, reader.status(endpoint, this.timeoutMs)) })));
    let last: LastCompaction | null | undefined;
    const answering = answers.find((answer) => answer.status !== undefined);
    if (answering !== undefined) last = await this.bounded(`${COMPACTION_LAST_KEY} at ${answering.endpoint}`, reader.lastCompaction(answering.endpoint, this.timeoutMs));
    for (const { endpoint, status } of answers) {
      if (status === undefined) {
        for (const gauge of [this.dbSize, this.dbSizeInUse, this.revision]) gauge.remove({ endpoint });
      } else {
        this.dbSize.set({ endpoint }, status.dbSize);
        this.dbSizeInUse.set({ endpoint }, status.dbSizeInUse);
        this.revision.set({ endpoint }, status.revision);
      }
    }
    this.compactedRevision.setKnown(last?.revision ?? null);
    this.compactedAt.setKnown(last === null || last === undefined ? null : last.at / 1000);
  }

  /** The answer, or undefined if it failed or took longer than timeoutMs (logged once until etcd answers again). */
  private async bounded<T>(what: string, call: Promise<T>): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      const value = await Promise.race([call, timeout]);
      this.failing.delete(what);
      return value;
    } catch (error) {
      call.catch(() => {});
      if (!this.failing.has(what)) this.options.logger.warn({ etcd: what, err: error instanceof Error ? error.message : String(error) }, 'could not read etcd status for /metrics; its gauges are absent until it answers');
      this.failing.add(what);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}
