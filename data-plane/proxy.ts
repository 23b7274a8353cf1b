/**
 * The data plane's HTTP handler: runs the pipeline stages in order and answers either with
 * the vendor's (scrubbed) response or with a denial in the vendor's own error shape.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { currentWindows } from '../core/budget-windows.js';
import { estimateCost, settleCost, type CostEstimate, type PriceTables, type PricedRequest } from '../core/cost/index.js';
import type { Logger } from '../core/logger.js';
import { publishCall } from './events.js';
import type { CachedKey } from './policy-cache.js';
import type { SpendGate } from './spend-gate.js';
import { canonicaliseTarget } from './canonical-request.js';
import {
  UNKNOWN_KEY_MESSAGE,
  authenticate,
  authorise,
  checkGuardedHeaders,
  checkRequestHeaders,
  downstreamHeaders,
  requireCredential,
  requireFreshPolicy,
  upstreamHeaders,
} from './pipeline.js';
import type { PolicyCache } from './policy-cache.js';
import { ProxyError } from './proxy-error.js';
import { formatMicrosAsUsd as formatUsd } from '../core/money.js';
import { scrubBuffer, scrubText } from './scrub.js';
import type { Upstreams } from './upstream.js';
import { VENDOR_ADAPTERS, type VendorAdapter } from './vendors/index.js';

export interface ProxyOptions {
  readonly cache: PolicyCache;
  readonly upstreams: Upstreams;
  readonly logger: Logger;
  readonly gate: SpendGate;
  readonly priceTables: PriceTables;
  readonly leaseTtlMs: number;
  readonly maxBodyBytes: number;
  readonly monotonicNow?: () => number;
  readonly wallNow?: () => number;
}

const BODYLESS_METHODS = new Set(['GET', 'DELETE', 'HEAD']);

export function createProxyHandler(options: ProxyOptions): (request: IncomingMessage, response: ServerResponse) => Promise<void> {
  const { cache, upstreams, logger } = options;
  const monotonicNow = options.monotonicNow ?? (() => performance.now());
  const wallNow = options.wallNow ?? Date.now;

  return async (request, response) => {
    const started = monotonicNow();
    let adapter: VendorAdapter = VENDOR_ADAPTERS.stripe;
    try {
      checkRequestHeaders(request.rawHeaders, request.headers);
      const target = canonicaliseTarget(request.url ?? '');
      adapter = VENDOR_ADAPTERS[target.prefixVendor ?? 'stripe'];
      requireFreshPolicy(cache, monotonicNow(), options.leaseTtlMs);
      const key = await authenticateOrWait(cache, adapter, request);
      const credential = requireCredential(cache, adapter.vendor);
      const method = request.method ?? 'GET';
      const segments = adapter.forwardedSegments(target.segments, credential);
      authorise(key, method, segments);
      checkGuardedHeaders(adapter, request.headers);
      const body = await readBody(request, options.maxBodyBytes);
      const forms = adapter.secretForms(credential);

      // Price and reserve: the call goes out only if its most it can cost fits in the lease.
      const priced: PricedRequest = { vendor: adapter.vendor, method, segments, query: target.query, contentType: request.headers['content-type'], body };
      const estimate = estimateCost(priced, { perCallEstimateMicros: key.policy.perCallEstimateMicros }, options.priceTables);
      const reservation = await reserve(options.gate, key, estimate, wallNow());

      let upstream;
      try {
        upstream = await upstreams.send(adapter.vendor, {
          method,
          path: `/${segments.join('/')}${target.query === '' && !request.url?.endsWith('?') ? '' : `?${target.query}`}`,
          headers: upstreamHeaders(request.rawHeaders, request.headers, adapter, credential, body === null && BODYLESS_METHODS.has(method) ? null : (body?.length ?? 0)),
          body,
        });
      } catch (error) {
        // Not connected: nothing was sent. Anything else: the call may have been made, so it counts.
        if (reservation !== null) {
          if (error instanceof ProxyError && error.notSent) options.gate.release(reservation);
          else options.gate.settle(reservation, estimate.kind === 'priced' ? estimate.micros : 0);
        }
        throw error;
      }
      if (reservation !== null) options.gate.settle(reservation, settleCost(priced, estimate, upstream, options.priceTables).micros);
      const payload = scrubBuffer(upstream.body, forms);
      const headers = downstreamHeaders(upstream.headers, (text) => scrubText(text, forms));
      headers['content-length'] = String(payload.length);
      response.writeHead(upstream.status, headers);
      response.end(payload);
      publishCall({ vendor: adapter.vendor, decision: 'allowed', code: null, status: upstream.status, durationMs: monotonicNow() - started });
    } catch (reason) {
      const error = ProxyError.from(reason);
      if (error.code === 'internal_error') logger.error({ err: reason, method: request.method }, 'proxy request failed');
      sendDenial(response, adapter, error);
      publishCall({ vendor: adapter.vendor, decision: 'denied', code: error.code, status: error.status, durationMs: monotonicNow() - started });
    }
  };
}

/** A key issued a moment ago may still be on its way here: wait for one push before refusing it. */
async function authenticateOrWait(cache: PolicyCache, adapter: VendorAdapter, request: IncomingMessage): Promise<CachedKey> {
  try {
    return authenticate(cache, adapter, request.headers, Date.now());
  } catch (error) {
    if (!(error instanceof ProxyError) || error.rawMessage !== UNKNOWN_KEY_MESSAGE) throw error;
    await cache.nextKeyUpdate(NEW_KEY_GRACE_MS);
    return authenticate(cache, adapter, request.headers, Date.now());
  }
}

const NEW_KEY_GRACE_MS = 250;

/** The reserve stage: free calls pass; a priced call must fit in every window of its key. */
async function reserve(gate: SpendGate, key: CachedKey, estimate: CostEstimate, wallNowMs: number) {
  if (estimate.kind === 'free') return null;
  if (estimate.kind === 'refused') {
    if (estimate.code === 'amount_unknown') {
      throw new ProxyError('amount_exceeds_key_limit', `${estimate.message}; a key can allow such calls with per_call_estimate_usd`);
    }
    throw new ProxyError('request_malformed', estimate.message);
  }
  const windows = currentWindows(key.policy, wallNowMs);
  for (const window of windows) {
    if (estimate.micros > window.capMicros) {
      throw new ProxyError('amount_exceeds_key_limit', `this call can move $${formatUsd(estimate.micros)} (${estimate.detail}), more than the key's whole ${window.window === 'life' ? 'budget' : 'daily cap'} of $${formatUsd(window.capMicros)}`);
    }
  }
  return gate.reserve(windows.map((w) => ({ keyId: key.policy.id, window: w.window })), estimate.micros);
}

export function sendDenial(response: ServerResponse, adapter: VendorAdapter, error: ProxyError): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const denial = adapter.denial(error);
  const body = JSON.stringify(denial.body);
  const headers: Record<string, string> = {
    ...denial.headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'keybrake-error': error.code,
  };
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  response.writeHead(error.status, headers);
  response.end(body);
}

async function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer | null> {
  const declared = request.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    throw new ProxyError('payload_too_large', `request body is larger than ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new ProxyError('payload_too_large', `request body is larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return chunks.length === 0 ? null : Buffer.concat(chunks);
}
