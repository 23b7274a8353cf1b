/**
 * Prometheus metrics of one data plane, fed by the diagnostics channels and the policy cache.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';

import { proxiedCallChannel, type ProxiedCallEvent } from './events.js';
import type { PolicyCache } from './policy-cache.js';
import type { PricedIntents } from './priced-intents.js';
import type { UnkeyedRefusals } from './unkeyed-refusals.js';

export interface DataPlaneMetrics {
  readonly registry: Registry;
  /** Requests node's HTTP parser refused before the proxy saw them, by node's error code. */
  readonly clientErrors: Counter<'code'>;
  close(): void;
}

const CALLS_NAME = 'keybrake_proxy_calls_total';
const CALLS_HELP = 'Calls the data plane answered, by vendor, decision and Keybrake-Error code';
const DURATION_NAME = 'keybrake_proxy_call_duration_seconds';
const DURATION_HELP = 'Time from request to answer, upstream included';
export const DURATION_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface MetricValue {
  readonly metricName?: string;
  readonly labels: Record<string, string | number>;
  readonly value: number;
}

/** One (vendor, decision, code, status) combination's count, and its duration histogram's share. */
interface CallTally {
  readonly vendor: string;
  readonly decision: string;
  readonly code: string;
  readonly status: number;
  count: number;
  secondsSum: number;
  /** Calls per bucket (not cumulative); the last slot is above the largest bound. */
  readonly buckets: number[];
}

/**
 * The per-call metrics, counted in plain numbers and turned into Prometheus values when scraped.
 * prom-client's labelled children validate and hash their labels on every update: about 2 % of
 * a proxied call's CPU, for counting it.
 */
export class CallMetrics {
  private readonly tallies = new Map<string, CallTally>();

  record(event: ProxiedCallEvent): void {
    const code = event.code ?? '';
    const key = `${event.vendor} ${event.decision} ${code} ${event.status}`;
    let tally = this.tallies.get(key);
    if (tally === undefined) {
      tally = { vendor: event.vendor, decision: event.decision, code, status: event.status, count: 0, secondsSum: 0, buckets: new Array<number>(DURATION_BUCKETS_SECONDS.length + 1).fill(0) };
      this.tallies.set(key, tally);
    }
    const seconds = event.durationMs / 1000;
    tally.count++;
    tally.secondsSum += seconds;
    let bucket = 0;
    while (bucket < DURATION_BUCKETS_SECONDS.length && seconds > DURATION_BUCKETS_SECONDS[bucket]!) bucket++;
    tally.buckets[bucket]!++;
  }

  /** keybrake_proxy_calls_total, one value per combination seen. */
  callValues(): MetricValue[] {
    return [...this.tallies.values()].map((t) => ({ labels: { vendor: t.vendor, decision: t.decision, code: t.code, status: String(t.status) }, value: t.count }));
  }

  /** keybrake_proxy_call_duration_seconds by vendor and decision: cumulative buckets, sum and count. */
  durationValues(): MetricValue[] {
    const merged = new Map<string, { vendor: string; decision: string; count: number; sum: number; buckets: number[] }>();
    for (const t of this.tallies.values()) {
      const key = `${t.vendor} ${t.decision}`;
      let m = merged.get(key);
      if (m === undefined) {
        m = { vendor: t.vendor, decision: t.decision, count: 0, sum: 0, buckets: new Array<number>(t.buckets.length).fill(0) };
        merged.set(key, m);
      }
      m.count += t.count;
      m.sum += t.secondsSum;
      t.buckets.forEach((n, i) => (m.buckets[i]! += n));
    }
    const values: MetricValue[] = [];
    for (const m of merged.values()) {
      const labels = { vendor: m.vendor, decision: m.decision };
      let cumulative = 0;
      DURATION_BUCKETS_SECONDS.forEach((bound, i) => {
        cumulative += m.buckets[i]!;
        values.push({ metricName: `${DURATION_NAME}_bucket`, labels: { le: bound, ...labels }, value: cumulative });
      });
      values.push({ metricName: `${DURATION_NAME}_bucket`, labels: { le: '+Inf', ...labels }, value: m.count });
      values.push({ metricName: `${DURATION_NAME}_sum`, labels, value: m.sum });
      values.push({ metricName: `${DURATION_NAME}_count`, labels, value: m.count });
    }
    return values;
  }
}

/**
 * A metric prom-client's registry formats like its own (it asks any registered metric for
 * `get()`: name, help, type and values), whose values come from `values()` at scrape time.
 */
function scrapedMetric(name: string, help: string, type: 'counter' | 'histogram', values: () => MetricValue[]): Metric {
  const metric = { name, help, type, aggregator: 'sum', get: () => Promise.resolve({ name, help, type, aggregator: 'sum', values: values() }) };
  return metric as unknown as Metric;
}

export function createDataPlaneMetrics(cache: PolicyCache, pricedIntents: PricedIntents, unkeyedRefusals: UnkeyedRefusals): DataPlaneMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'keybrake_dataplane_' });
  const calls = new CallMetrics();
  registry.registerMetric(scrapedMetric(CALLS_NAME, CALLS_HELP, 'counter', () => calls.callValues()));
  registry.registerMetric(scrapedMetric(DURATION_NAME, DURATION_HELP, 'histogram', () => calls.durationValues()));
  registry.registerMetric(
    scrapedMetric(
      'keybrake_audit_unkeyed_refusals_aggregated_total',
      'Refused calls that named no known vault key and, beyond the sampling budget, were counted into an aggregate audit record instead of one of their own',
      'counter',
      () => [{ labels: {}, value: unkeyedRefusals.aggregatedCalls }],
    ),
  );
  const clientErrors = new Counter({
    name: 'keybrake_proxy_client_errors_total',
    help: "Requests node's HTTP parser refused before the proxy saw them (malformed, headers too large, timed out), by node's error code",
    labelNames: ['code'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'keybrake_policy_keys',
    help: 'Vault keys this data plane holds a policy for',
    registers: [registry],
    collect() {
      this.set(cache.keyCount);
    },
  });
  new Gauge({
    name: 'keybrake_priced_intents',
    help: 'PaymentIntents known to have been priced at creation (their confirm or capture is free here)',
    registers: [registry],
    collect() {
      this.set(pricedIntents.size);
    },
  });
  new Gauge({
    name: 'keybrake_control_plane_silence_seconds',
    help: 'Seconds since a control plane was last heard from (+Inf before the first)',
    registers: [registry],
    collect() {
      this.set(cache.silenceMs(performance.now()) / 1000);
    },
  });
  const onCall = (message: unknown) => calls.record(message as ProxiedCallEvent);
  proxiedCallChannel.subscribe(onCall);
  return { registry, clientErrors, close: () => proxiedCallChannel.unsubscribe(onCall) };
}
