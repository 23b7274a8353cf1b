/**
 * Prometheus metrics of one data plane, fed by the diagnostics channels and the policy cache.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import { proxiedCallChannel, type ProxiedCallEvent } from './events.js';
import type { PolicyCache } from './policy-cache.js';
import type { PricedIntents } from './priced-intents.js';

export interface DataPlaneMetrics {
  readonly registry: Registry;
  close(): void;
}

export function createDataPlaneMetrics(cache: PolicyCache, pricedIntents: PricedIntents): DataPlaneMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'keybrake_dataplane_' });
  const calls = new Counter({
    name: 'keybrake_proxy_calls_total',
    help: 'Calls the data plane answered, by vendor, decision and Keybrake-Error code',
    labelNames: ['vendor', 'decision', 'code', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'keybrake_proxy_call_duration_seconds',
    help: 'Time from request to answer, upstream included',
    labelNames: ['vendor', 'decision'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
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
  // prom-client hashes a label set on every update; a few dozen combinations ever occur, so
  // each one's counter and histogram children are looked up once and kept, under one key.
  const children = new Map<string, { readonly calls: { inc(): void }; readonly duration: { observe(seconds: number): void } }>();
  const onCall = (message: unknown) => {
    const event = message as ProxiedCallEvent;
    const key = `${event.vendor} ${event.decision} ${event.code ?? ''} ${event.status}`;
    let child = children.get(key);
    if (child === undefined) {
      child = {
        calls: calls.labels({ vendor: event.vendor, decision: event.decision, code: event.code ?? '', status: String(event.status) }),
        duration: duration.labels({ vendor: event.vendor, decision: event.decision }),
      };
      children.set(key, child);
    }
    child.calls.inc();
    child.duration.observe(event.durationMs / 1000);
  };
  proxiedCallChannel.subscribe(onCall);
  return { registry, close: () => proxiedCallChannel.unsubscribe(onCall) };
}
