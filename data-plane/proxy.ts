/**
 * The data plane's HTTP handler: runs the pipeline stages in order and answers either with
 * the vendor's (scrubbed) response or with a denial in the vendor's own error shape.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import type { Logger } from '../core/logger.js';
import { publishCall } from './events.js';
import { canonicaliseTarget } from './canonical-request.js';
import {
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
import { scrubBuffer, scrubText } from './scrub.js';
import type { Upstreams } from './upstream.js';
import { VENDOR_ADAPTERS, type VendorAdapter } from './vendors/index.js';

export interface ProxyOptions {
  readonly cache: PolicyCache;
  readonly upstreams: Upstreams;
  readonly logger: Logger;
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
      const key = authenticate(cache, adapter, request.headers, wallNow());
      const credential = requireCredential(cache, adapter.vendor);
      const method = request.method ?? 'GET';
      const segments = adapter.forwardedSegments(target.segments, credential);
      authorise(key, method, segments);
      checkGuardedHeaders(adapter, request.headers);
      const body = await readBody(request, options.maxBodyBytes);
      const forms = adapter.secretForms(credential);

      const upstream = await upstreams.send(adapter.vendor, {
        method,
        path: `/${segments.join('/')}${target.query === '' && !request.url?.endsWith('?') ? '' : `?${target.query}`}`,
        headers: upstreamHeaders(request.rawHeaders, request.headers, adapter, credential, body === null && BODYLESS_METHODS.has(method) ? null : (body?.length ?? 0)),
        body,
      });
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
