/**
 * Prometheus metrics of one control-plane replica, served at /metrics on the admin address.
 * Labels never carry key ids, labels or tokens: only bounded sets (result, vendor).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ControlPlaneMetrics {
  readonly registry: Registry;
  readonly dataPlaneStreams: Gauge;
  readonly leaseRequests: Counter<'result'>;
  readonly usageReports: Counter;
  readonly leasesExpired: Counter;
  readonly auditRecords: Counter;
  readonly keyLookups: Counter;
  readonly auditRecordsFlagged: Counter;
  readonly auditLinesQuarantined: Counter;
  readonly auditLag: Histogram;
  /** The ledger's own counts, read when /metrics is scraped. */
  countLedger(read: () => { readonly requests: number; readonly batches: number }): void;
}

export function createControlPlaneMetrics(): ControlPlaneMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'keybrake_controlplane_' });
  return {
    registry,
    dataPlaneStreams: new Gauge({ name: 'keybrake_dataplane_streams', help: 'Data planes connected to this replica', registers: [registry] }),
    leaseRequests: new Counter({ name: 'keybrake_lease_requests_total', help: 'Lease requests answered, by result (granted, short, refused, failed)', labelNames: ['result'] as const, registers: [registry] }),
    usageReports: new Counter({ name: 'keybrake_usage_reports_total', help: 'Usage reports applied to the ledger', registers: [registry] }),
    leasesExpired: new Counter({ name: 'keybrake_lease_expiries_total', help: 'Accounts in which a silent data plane’s lease was expired (its unreported grant is at risk)', registers: [registry] }),
    keyLookups: new Counter({ name: 'keybrake_key_lookups_total', help: 'Key hashes data planes asked this replica to look up (a key first presented to a data plane)', registers: [registry] }),
    auditRecords: new Counter({ name: 'keybrake_audit_records_total', help: 'Audit records committed to PostgreSQL (duplicates included)', registers: [registry] }),
    auditRecordsFlagged: new Counter({
      name: 'keybrake_audit_records_flagged_total',
      help: 'Audit records stored with a flag: fields the control plane cut or cleaned, or stored without their text after PostgreSQL refused them',
      registers: [registry],
    }),
    auditLinesQuarantined: new Counter({
      name: 'keybrake_audit_lines_quarantined_total',
      help: 'Lines from data planes that could not be stored as audit records at all, kept in audit_quarantine (should stay 0)',
      registers: [registry],
    }),
    auditLag: new Histogram({
      name: 'keybrake_audit_lag_seconds',
      help: 'From the data plane answering a call to its record being committed',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    countLedger(read) {
      new Counter({
        name: 'keybrake_ledger_etcd_requests_total',
        help: 'Requests (reads and transactions) the budget ledger sent etcd: lease grants, usage reports, sweeps',
        registers: [registry],
        collect() {
          this.reset();
          this.inc(read().requests);
        },
      });
      new Counter({
        name: 'keybrake_ledger_batches_total',
        help: 'Batches of budget-account changes written (up to 100 accounts, each under its own compare, per read and write)',
        registers: [registry],
        collect() {
          this.reset();
          this.inc(read().batches);
        },
      });
    },
  };
}
