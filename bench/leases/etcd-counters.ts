/**
 * etcd's write counters, read from etcd itself, so nothing in the product has to count:
 * - `GET /metrics` (Prometheus text): etcd 3.4 exposes `etcd_mvcc_put_total` (keys put, also
 *   inside transactions), `etcd_mvcc_txn_total` (transactions), `etcd_mvcc_delete_total` and
 *   `etcd_debugging_mvcc_current_revision` (bumped once per committed write, whatever it holds).
 * - a watch on the ledger prefix, which sees every put of a budget account: the ledger's share.
 */
import { Etcd3, type Watcher } from 'etcd3';

export interface EtcdWriteCounters {
  readonly puts: number;
  readonly txns: number;
  readonly deletes: number;
  readonly revision: number;
}

const METRIC_NAMES = {
  puts: 'etcd_mvcc_put_total',
  txns: 'etcd_mvcc_txn_total',
  deletes: 'etcd_mvcc_delete_total',
  revision: 'etcd_debugging_mvcc_current_revision',
} as const;

export async function readEtcdCounters(endpoint: string): Promise<EtcdWriteCounters> {
  const response = await fetch(`${endpoint}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (response.status !== 200) throw new Error(`etcd /metrics answered ${response.status}`);
  const text = await response.text();
  const value = (name: string): number => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
    if (match === null) throw new Error(`etcd /metrics has no ${name}`);
    return Number(match[1]);
  };
  return { puts: value(METRIC_NAMES.puts), txns: value(METRIC_NAMES.txns), deletes: value(METRIC_NAMES.deletes), revision: value(METRIC_NAMES.revision) };
}

export function diffEtcd(after: EtcdWriteCounters, before: EtcdWriteCounters): EtcdWriteCounters {
  return { puts: after.puts - before.puts, txns: after.txns - before.txns, deletes: after.deletes - before.deletes, revision: after.revision - before.revision };
}

export interface LedgerWatch {
  /** Puts of budget accounts seen so far. */
  puts(): number;
  stop(): Promise<void>;
}

/** Watches `<prefix>ledger/` and counts every put. */
export async function watchLedger(endpoint: string, prefix: string): Promise<LedgerWatch> {
  const client = new Etcd3({ hosts: [endpoint], dialTimeout: 3000 });
  let puts = 0;
  let watcher: Watcher;
  try {
    watcher = await client.namespace(prefix).watch().prefix('ledger/').create();
  } catch (error) {
    client.close();
    throw error;
  }
  watcher.on('put', () => puts++);
  return {
    puts: () => puts,
    async stop() {
      await watcher.cancel().catch(() => {});
      client.close();
    },
  };
}

/** etcd's gRPC calls served so far, by method (Range, Txn, Put, ...), from `grpc_server_handled_total`. */
export async function readEtcdRpcs(endpoint: string): Promise<Map<string, number>> {
  const response = await fetch(`${endpoint}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (response.status !== 200) throw new Error(`etcd /metrics answered ${response.status}`);
  const calls = new Map<string, number>();
  for (const match of (await response.text()).matchAll(/^grpc_server_handled_total\{([^}]*)\} ([0-9.eE+-]+)$/gm)) {
    const method = /grpc_method="([^"]+)"/.exec(match[1]!)?.[1];
    if (method !== undefined) calls.set(method, (calls.get(method) ?? 0) + Number(match[2]));
  }
  return calls;
}
