/**
 * The least work per call the contract asks of a data plane beyond a bare pass-through,
 * measured in this process with hot caches (a lower bound: the real data plane also looks the
 * key up, filters headers, counts metrics and ships audit batches). Each stage is the data
 * plane's own code on the benchmark's request and answer:
 *   route       canonicalise the target, match it against the key's allowlist
 *   pricing     read the form body strictly and price the charge (core/cost estimateCost)
 *   lease       reserve the call's most from the lease held for the key, settle what it cost
 *   settlement  parse the vendor's JSON answer and settle the charge (core/cost settleCost)
 *   scrub       look for every form of the real secret in the answer
 *   audit       one audit line (JSON) appended to the spool and written with write(2) before
 *               answering: one write per call, as at low load (under load a write carries a few)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DEFAULT_PRICE_TABLES, estimateCost, settleCost, type PricedRequest } from '../../core/cost/index.js';
import { matchesEndpoint, parseEndpointPattern } from '../../core/endpoint-pattern.js';
import { AuditSpool } from '../../data-plane/audit-spool.js';
import { canonicaliseTarget } from '../../data-plane/canonical-request.js';
import { LeaseBook, type AccountRef } from '../../data-plane/lease-book.js';
import { scrubBody, secretFormsFor } from '../../data-plane/scrub.js';
import { VENDOR_ADAPTERS } from '../../data-plane/vendors/index.js';
import { BENCH_STRIPE_SECRET } from './keybrake-stack.js';
import { CHARGE_FORM_BODY } from './load.js';
import { CHARGE_BODY } from './upstream-server.js';

export interface MandatedWork {
  /** Microseconds per call, by stage, and their sum. */
  readonly stages: Readonly<Record<'route' | 'pricing' | 'lease' | 'settlement' | 'scrub' | 'audit', number>>;
  readonly totalMicros: number;
}

const WARMUP = 20_000;
const CALLS = 100_000;

function microsPerCall(work: (i: number) => void): number {
  for (let i = 0; i < WARMUP; i++) work(i);
  const started = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) work(i);
  return Number(process.hrtime.bigint() - started) / 1000 / CALLS;
}

/** The accounts of a key with a daily cap and a lifetime budget: a call reserves on both. */
const ACCOUNTS: readonly AccountRef[] = [{ keyId: 'key_bench', window: 'life' }, { keyId: 'key_bench', window: 'day:2026-12-01' }];

/** A lease book holding `micros` on each account, as granted by a control plane for an hour. */
function leaseHolding(micros: number): LeaseBook {
  const book = new LeaseBook({ dataplaneId: 'dp-bench', incarnation: 'bench' });
  for (const account of ACCOUNTS) {
    for (const outgoing of book.requestFor(account, micros, performance.now())) {
      if (!('leaseRequest' in outgoing)) continue;
      const { leaseId, seq } = outgoing.leaseRequest;
      book.onGrant({ ...account, leaseId, seq, grantedTotalMicros: micros, ttlMs: 3_600_000, short: false, refused: '', windowEndsAtUnixMs: 0 }, performance.now());
    }
  }
  return book;
}

export async function measureMandatedWork(): Promise<MandatedWork> {
  const dir = await mkdtemp(join(tmpdir(), 'keybrake-mandated-'));
  try {
    const body = Buffer.from(CHARGE_FORM_BODY);
    const allowlist = [parseEndpointPattern('POST /v1/charges', 'stripe', 'allowed_endpoints[0]')];
    const request: PricedRequest = { vendor: 'stripe', method: 'POST', segments: ['v1', 'charges'], query: '', contentType: 'application/x-www-form-urlencoded', body };
    const estimate = estimateCost(request, { perCallEstimateMicros: 0 }, DEFAULT_PRICE_TABLES);
    const answer = { status: 200, headers: { 'request-id': 'req_1', 'content-type': 'application/json' }, body: CHARGE_BODY };
    const forms = secretFormsFor(VENDOR_ADAPTERS.stripe.secretForms({ secret: BENCH_STRIPE_SECRET, accountSid: '' }));
    const spool = AuditSpool.open({ dir, incarnation: 'bench', maxBytes: 1 << 30 });
    if (estimate.kind !== 'priced') throw new Error('mandated work: the bench charge is not priced');
    const book = leaseHolding(estimate.micros * (WARMUP + CALLS) * 2);
    let sink = 0;
    const stages = {
      route: microsPerCall(() => {
        const target = canonicaliseTarget('/v1/charges');
        if (allowlist.some((pattern) => matchesEndpoint(pattern, 'POST', target.segments))) sink++;
      }),
      pricing: microsPerCall(() => {
        if (estimateCost(request, { perCallEstimateMicros: 0 }, DEFAULT_PRICE_TABLES).kind === 'priced') sink++;
      }),
      lease: microsPerCall(() => {
        const attempt = book.reserve(ACCOUNTS, estimate.micros, performance.now());
        if (!('reservation' in attempt)) throw new Error('mandated work: the lease ran out');
        book.settle(attempt.reservation, estimate.micros);
      }),
      settlement: microsPerCall(() => {
        sink += settleCost(request, estimate, answer, DEFAULT_PRICE_TABLES).micros;
      }),
      scrub: microsPerCall(() => {
        sink += scrubBody(CHARGE_BODY, forms)?.length ?? 0;
      }),
      audit: microsPerCall((i) => {
        spool.append({
          seq: 0, incarnation: '', tsUnixMs: Date.now(), keyId: 'key_0123456789abcdef', label: 'bench/proxy', vendor: 'stripe', method: 'POST', path: '/v1/charges', status: 200,
          decision: 'allowed', reason: '', amount: 2000, currency: 'usd', estimatedUsdMicros: 20_000_000, usdMicros: 20_000_000,
          idempotencyKey: `bench-${i}`, vendorRequestId: 'req_1', vendorObjectId: 'ch_3PbENchKbRk0000000000001', stripeChargeId: 'ch_3PbENchKbRk0000000000001',
          replayed: false, latencyMs: 1, callCount: 0,
        });
        spool.flush();
        // Acknowledged at once: memory stays flat, as with a control plane keeping up.
        if (i % 1000 === 999) spool.ack('bench', Number.MAX_SAFE_INTEGER);
      }),
    };
    spool.close();
    if (sink === 0) throw new Error('mandated work: nothing was computed');
    return { stages, totalMicros: Object.values(stages).reduce((sum, us) => sum + us, 0) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
