import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import { CallMetrics, DURATION_BUCKETS_SECONDS } from '../../data-plane/metrics.js';
import type { ProxiedCallEvent } from '../../data-plane/events.js';

const call = (durationMs: number, over: Partial<ProxiedCallEvent> = {}): ProxiedCallEvent => ({ vendor: 'stripe', decision: 'allowed', code: null, status: 200, durationMs, ...over });

describe('CallMetrics', () => {
  it('counts calls per vendor, decision, code and status', () => {
    const metrics = new CallMetrics();
    metrics.record(call(1));
    metrics.record(call(2));
    metrics.record(call(1, { decision: 'denied', code: 'spend_cap_exceeded', status: 429 }));
    expect(metrics.callValues()).toEqual([
      { labels: { vendor: 'stripe', decision: 'allowed', code: '', status: '200' }, value: 2 },
      { labels: { vendor: 'stripe', decision: 'denied', code: 'spend_cap_exceeded', status: '429' }, value: 1 },
    ]);
  });

  it('gives the same histogram as prom-client for the same observations', async () => {
    const registry = new Registry();
    const reference = new Histogram({ name: 'h', help: 'h', labelNames: ['vendor', 'decision'], buckets: [...DURATION_BUCKETS_SECONDS], registers: [registry] });
    const metrics = new CallMetrics();
    // Bounds themselves (le is inclusive), between them, and beyond the last.
    const durationsMs = [...DURATION_BUCKETS_SECONDS.map((s) => s * 1000), 0.2, 3, 7, 42, 99_000, 0];
    for (const [i, ms] of durationsMs.entries()) {
      const event = call(ms, i % 3 === 0 ? { status: 402, decision: 'denied', code: 'amount_exceeds_key_limit' } : i % 3 === 1 ? { status: 201 } : {});
      metrics.record(event);
      reference.observe({ vendor: event.vendor, decision: event.decision }, ms / 1000);
    }
    const expected = (await reference.get()).values.map((v) => ({ metricName: v.metricName!.replace(/^h_/, 'keybrake_proxy_call_duration_seconds_'), labels: v.labels, value: v.value }));
    const ours = metrics.durationValues();
    const key = (v: { metricName?: string; labels: Record<string, string | number> }) => `${v.metricName} ${JSON.stringify(Object.entries(v.labels).sort())}`;
    // Sums are added in another order: equal to the nanosecond, not to the last bit.
    const rounded = (value: number) => Math.round(value * 1e9) / 1e9;
    expect(new Map(ours.map((v) => [key(v), rounded(v.value)]))).toEqual(new Map(expected.map((v) => [key(v), rounded(v.value)])));
  });
});
