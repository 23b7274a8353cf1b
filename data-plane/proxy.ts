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
  authenticate,
  authorise,
  checkGuardedHeaders,
  checkRequestHeaders,
  downstreamHeaders,
  identifyPresentedKey,
  requestBodyLimit,
  requireCredential,
  requireFreshPolicy,
  upstreamHeaders,
} from './pipeline.js';
import type { PolicyCache } from './policy-cache.js';
import { ProxyError, type ProxyErrorCode } from './proxy-error.js';
import type { AuditRecord } from '../gen/keybrake/v1/dataplane.js';
import type { AuditSpool } from './audit-spool.js';
import { createsIntent, intentSettledBefore, type PricedIntents } from './priced-intents.js';
import type { ReplayableCalls } from './replayable-calls.js';
import type { UnkeyedRefusals } from './unkeyed-refusals.js';
import type { Reservation } from './lease-book.js';
import { formatMicrosAsUsd as formatUsd } from '../core/money.js';
import { decodeContent, scrubBody, scrubHeaderValue, secretFormsFor, type SecretForms } from './scrub.js';
import type { Upstreams } from './upstream.js';
import { VENDOR_ADAPTERS, type VendorAdapter, type VendorCredential } from './vendors/index.js';

export interface ProxyOptions {
  readonly cache: PolicyCache;
  readonly upstreams: Upstreams;
  readonly logger: Logger;
  readonly gate: SpendGate;
  readonly priceTables: PriceTables;
  readonly leaseTtlMs: number;
  readonly maxBodyBytes: number;
  readonly spool: AuditSpool;
  readonly pricedIntents: PricedIntents;
  readonly replayableCalls: ReplayableCalls;
  /** Samples refusals that name no known key (their records are bounded, not one per request). */
  readonly unkeyedRefusals: UnkeyedRefusals;
  /** Called after each record is spooled (the shipper sends it on). */
  readonly onSpooled?: () => void;
  readonly monotonicNow?: () => number;
  readonly wallNow?: () => number;
}

const BODYLESS_METHODS = new Set(['GET', 'DELETE', 'HEAD']);

interface Reply {
  readonly status: number;
  /** A header object (denials) or the flat [name, value, …] list (vendor answers). */
  readonly headers: Record<string, string | string[]> | string[];
  readonly body: Buffer;
}

export function createProxyHandler(options: ProxyOptions): (request: IncomingMessage, response: ServerResponse) => Promise<void> {
  const { cache, upstreams, logger, spool } = options;
  const monotonicNow = options.monotonicNow ?? (() => performance.now());
  const wallNow = options.wallNow ?? Date.now;

  return async (request, response) => {
    const started = monotonicNow();
    let adapter: VendorAdapter = VENDOR_ADAPTERS.stripe;
    // What is known about the call so far, for its audit record; the spool numbers it (seq, incarnation).
    const draft: AuditRecord = {
      seq: 0, incarnation: '', tsUnixMs: wallNow(), keyId: '', label: '', vendor: 'stripe', method: request.method ?? '', path: '', status: 0, decision: 'denied', reason: '',
      amount: -1, currency: '', estimatedUsdMicros: 0, usdMicros: 0, idempotencyKey: headerText(request.headers['idempotency-key']),
      vendorRequestId: '', vendorObjectId: '', stripeChargeId: '', replayed: false, latencyMs: 0, callCount: 0,
    };
    // Whether the presented vault key has been looked up (a refusal before that looks it up for the record).
    let lookedUp = false;
    let reply: Reply;
    try {
      checkRequestHeaders(request.rawHeaders, request.headers);
      const target = canonicaliseTarget(request.url ?? '');
      adapter = VENDOR_ADAPTERS[target.prefixVendor ?? 'stripe'];
      draft.vendor = adapter.vendor;
      const requestedPath = `/${target.segments.join('/')}`;
      draft.path = requestedPath;
      requireFreshPolicy(cache, monotonicNow(), options.leaseTtlMs);
      lookedUp = true;
      const found = authenticate(cache, adapter, request.headers, monotonicNow(), wallNow());
      const key = found instanceof Promise ? await found : found;
      draft.keyId = key.policy.id;
      draft.label = key.policy.label;
      const credential = requireCredential(cache, adapter.vendor);
      const method = request.method ?? 'GET';
      const segments = adapter.forwardedSegments(target.segments, credential);
      const forwardedPath = segments === target.segments ? requestedPath : `/${segments.join('/')}`;
      draft.path = forwardedPath;
      authorise(key, method, segments, requestedPath);
      checkGuardedHeaders(adapter, request.headers);
      if (spool.isFull()) throw new ProxyError('audit_unavailable', 'the audit spool is full (no control plane has taken records for a while); nothing was forwarded');
      const body = await readBody(request, requestBodyLimit(adapter.vendor, options.maxBodyBytes));
      const forms = secretFormsOf(adapter, credential);

      // Price and reserve: the call goes out only if the most it can cost fits in the lease.
      const priced: PricedRequest = { vendor: adapter.vendor, method, segments, query: target.query, contentType: request.headers['content-type'], body };
      let estimate: CostEstimate = estimateCost(priced, { perCallEstimateMicros: key.policy.perCallEstimateMicros }, options.priceTables);
      // Confirming or capturing an intent priced at its creation reserves nothing more; settling
      // counts what its answer shows beyond what was counted then.
      const intent = adapter.vendor === 'stripe' ? intentSettledBefore(method, segments) : null;
      const covered = intent === null ? undefined : options.pricedIntents.pricedMicros(key.policy.id, intent);
      if (covered !== undefined && (estimate.kind !== 'refused' || estimate.code === 'amount_unknown')) {
        estimate = { kind: 'priced', micros: 0, amount: null, currency: null, detail: `PaymentIntent ${intent} was priced at its creation`, coveredMicros: covered };
      }
      if (estimate.kind === 'priced') {
        draft.estimatedUsdMicros = estimate.micros;
        draft.amount = estimate.amount ?? -1;
        draft.currency = estimate.currency ?? '';
      }
      const reserved = reserveUnlessReplay(options, key, estimate, wallNow(), {
        vendor: adapter.vendor, credential, method, path: forwardedPath, idempotencyKey: draft.idempotencyKey,
      });
      const { reservation, expectReplay } = reserved instanceof Promise ? await reserved : reserved;

      let upstream;
      try {
        upstream = await upstreams.send(adapter.vendor, {
          method,
          path: target.query === '' && !request.url?.endsWith('?') ? forwardedPath : `${forwardedPath}?${target.query}`,
          headers: upstreamHeaders(request.rawHeaders, request.headers, adapter, credential, body === null && BODYLESS_METHODS.has(method) ? null : (body?.length ?? 0)),
          body,
        });
      } catch (error) {
        // Not connected: nothing was sent. Anything else: the call may have been made, so it counts.
        if (error instanceof ProxyError && error.notSent) {
          if (reservation !== null) options.gate.release(reservation);
        } else {
          spendEstimate(options.gate, estimate, reservation, draft);
        }
        throw error;
      }
      // The answer as the client would decode it: settlement and the scrubber read the same bytes.
      const decoded = decodeContent(upstream.headers['content-encoding'], upstream.body, MAX_DECODED_ANSWER_BYTES);
      if (!decoded.ok) {
        // Unreadable, so it cannot be priced or scrubbed: it may still say money moved, so the call counts.
        spendEstimate(options.gate, estimate, reservation, draft);
        throw new ProxyError('upstream_answer_withheld', `${adapter.vendor} answered ${upstream.status} in a form the proxy cannot read (${decoded.reason}); the answer was withheld and the call counts as spent at its estimate`);
      }
      if (decoded.decoded) {
        const { 'content-encoding': _encoding, ...identity } = upstream.headers;
        upstream = { status: upstream.status, headers: identity, body: decoded.body };
      }
      const settlement = settleCost(priced, estimate, upstream, options.priceTables);
      // Money this call newly moved and counted: what a later confirm or repeat need not pay again.
      if (estimate.kind === 'priced' && upstream.status >= 200 && upstream.status <= 299 && !settlement.replayed && adapter.vendor === 'stripe') {
        if (settlement.objectId !== null && createsIntent(method, segments)) options.pricedIntents.remember(key.policy.id, settlement.objectId, settlement.micros);
        if (draft.idempotencyKey !== '') options.replayableCalls.remember(key.policy.id, credential, method, forwardedPath, draft.idempotencyKey, wallNow());
      }
      if (expectReplay && !settlement.replayed && settlement.micros > 0) {
        logger.error({ key_id: key.policy.id, idempotency_key: draft.idempotencyKey, usd_micros: settlement.micros }, 'Stripe did not replay a repeated call forwarded past a full cap: its money is in the audit record but not on the cap');
      }
      // A free call has no reservation and spends nothing; a repeat past a full cap spends what the answer shows.
      const spent = reservation !== null || expectReplay ? settlement.micros : 0;
      if (reservation !== null) options.gate.settle(reservation, spent);
      draft.decision = 'allowed';
      draft.status = upstream.status;
      draft.usdMicros = spent;
      draft.replayed = settlement.replayed;
      draft.vendorObjectId = settlement.objectId ?? '';
      draft.stripeChargeId = settlement.stripeChargeId ?? '';
      draft.vendorRequestId = headerText(upstream.headers['request-id'] ?? upstream.headers['twilio-request-id']);
      if (settlement.amount !== null) draft.amount = settlement.amount;
      if (settlement.currency !== null) draft.currency = settlement.currency;
      const payload = scrubBody(upstream.body, forms) ?? withheld();
      const headers = downstreamHeaders(upstream.headers, (text) => scrubHeaderValue(text, forms) ?? withheld());
      headers.push('content-length', String(payload.length));
      reply = { status: upstream.status, headers, body: payload };
    } catch (reason) {
      const error = ProxyError.from(reason);
      if (error.code === 'internal_error') logger.error({ err: reason, method: request.method }, 'proxy request failed');
      reply = denialReply(adapter, error);
      draft.reason = error.code;
      if (draft.keyId === '') {
        const known = error.subject ?? (lookedUp ? null : ((await identifyPresentedKey(cache, request.headers, monotonicNow()))?.policy ?? null));
        if (known !== null) {
          draft.keyId = known.id;
          draft.label = known.label;
        }
      }
    }
    draft.status = reply.status;
    draft.latencyMs = Math.round(monotonicNow() - started);
    const publish = () =>
      publishCall({ vendor: adapter.vendor, decision: draft.decision === 'allowed' ? 'allowed' : 'denied', code: draft.reason === '' ? null : (draft.reason as ProxyErrorCode), status: reply.status, durationMs: monotonicNow() - started });
    // A refusal that names no known key is sampled (unkeyed-refusals.ts): beyond the budget it is counted, not spooled.
    if (draft.keyId === '' && !options.unkeyedRefusals.admit(monotonicNow(), spool.isHalfFull())) {
      options.unkeyedRefusals.count(draft);
      answer(response, reply, logger, '');
      publish();
      return;
    }
    let appendError: Error | null = null;
    try {
      spool.append(draft);
      options.onSpooled?.();
    } catch (error) {
      appendError = error instanceof Error ? error : new Error(String(error));
    }
    // Written before the caller hears anything: an answered call always has its record.
    spool.afterWrite((writeError) => {
      // The answer still goes out (for a forwarded call the money has moved); the gap shows in the log.
      const error = appendError ?? writeError;
      if (error !== null) logger.error({ err: error.message, key_id: draft.keyId }, 'could not write the audit spool');
      answer(response, reply, logger, draft.keyId);
      publish();
    });
  };
}

function answer(response: ServerResponse, reply: Reply, logger: Logger, keyId: string): void {
  try {
    if (response.headersSent) {
      response.destroy();
    } else {
      response.writeHead(reply.status, reply.headers);
      response.end(reply.body);
    }
  } catch (failure) {
    // A header node refuses to send (an upstream's invalid characters): no half answer.
    logger.error({ err: failure instanceof Error ? failure.message : String(failure), key_id: keyId }, 'could not send the answer');
    response.destroy();
  }
}

/** The call may have gone out but its answer cannot say what moved: it counts at its estimate. */
function spendEstimate(gate: SpendGate, estimate: CostEstimate, reservation: Reservation | null, draft: AuditRecord): void {
  const counted = estimate.kind === 'priced' ? estimate.micros : 0;
  if (reservation !== null) gate.settle(reservation, counted);
  draft.decision = 'allowed';
  draft.usdMicros = counted;
}

/** The forms of a credential to scrub, computed once per credential the control plane pushed. */
const secretFormsCache = new WeakMap<VendorCredential, SecretForms>();
function secretFormsOf(adapter: VendorAdapter, credential: VendorCredential): SecretForms {
  let forms = secretFormsCache.get(credential);
  if (forms === undefined) {
    forms = secretFormsFor(adapter.secretForms(credential));
    secretFormsCache.set(credential, forms);
  }
  return forms;
}

/**
 * A vendor answer in which the scrubber still sees a secret is refused, not sent (fail closed).
 * The call was made: its settlement and audit record stand.
 */
function withheld(): never {
  throw new ProxyError('upstream_answer_withheld', 'the vendor answer held the real credential in a form the proxy could not redact; it was withheld');
}

/** A decoded answer larger than this is not expanded (a compression bomb): withheld. */
const MAX_DECODED_ANSWER_BYTES = 32 * 1024 * 1024;

function headerText(value: string | string[] | undefined): string {
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

/**
 * The reserve stage: free calls pass; a priced call must fit in every window of its key.
 * Synchronous when the lease already has room; a promise only when the control plane is asked.
 */
function reserve(gate: SpendGate, key: CachedKey, estimate: CostEstimate, wallNowMs: number): Reservation | null | Promise<Reservation> {
  if (estimate.kind === 'free') return null;
  if (estimate.kind === 'refused') {
    if (estimate.code === 'amount_unknown') {
      throw new ProxyError('amount_exceeds_key_limit', `${estimate.message}; a key can allow such calls with per_call_estimate_usd`);
    }
    // Money routed to (or acting as) a connected account: refused like the Stripe-Account header.
    if (estimate.code === 'account_routing') throw new ProxyError('endpoint_not_allowed', estimate.message);
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

interface ReplayCall {
  readonly vendor: VendorAdapter['vendor'];
  readonly credential: VendorCredential;
  readonly method: string;
  readonly path: string;
  readonly idempotencyKey: string;
}

interface Reserved {
  readonly reservation: Reservation | null;
  readonly expectReplay: boolean;
}

/**
 * The reserve stage, with one exception to a full cap: a repeat of a Stripe call that succeeded
 * here under the same Idempotency-Key goes out without a reservation, because Stripe answers it
 * from its idempotency store (replayable-calls.ts). `expectReplay` says so to the settle stage.
 */
function reserveUnlessReplay(options: ProxyOptions, key: CachedKey, estimate: CostEstimate, wallNowMs: number, call: ReplayCall): Reserved | Promise<Reserved> {
  let waiting: Promise<Reservation>;
  try {
    const reservation = reserve(options.gate, key, estimate, wallNowMs);
    if (!(reservation instanceof Promise)) return { reservation, expectReplay: false };
    waiting = reservation;
  } catch (error) {
    return replayPastFullCap(error, options, key, wallNowMs, call);
  }
  return waiting.then(
    (reservation) => ({ reservation, expectReplay: false }),
    (error: unknown) => replayPastFullCap(error, options, key, wallNowMs, call),
  );
}

/** A refusal for a full cap becomes "go ahead, expect a replay" for a repeat Stripe will replay; anything else stands. */
function replayPastFullCap(error: unknown, options: ProxyOptions, key: CachedKey, wallNowMs: number, call: ReplayCall): Reserved {
  const repeat = call.vendor === 'stripe' && call.idempotencyKey !== '' && error instanceof ProxyError && error.code === 'spend_cap_exceeded'
    && options.replayableCalls.has(key.policy.id, call.credential, call.method, call.path, call.idempotencyKey, wallNowMs);
  if (!repeat) throw error;
  return { reservation: null, expectReplay: true };
}

export function denialReply(adapter: VendorAdapter, error: ProxyError): Reply {
  const denial = adapter.denial(error);
  const body = Buffer.from(JSON.stringify(denial.body));
  const headers: Record<string, string> = {
    ...denial.headers,
    'content-type': 'application/json',
    'content-length': String(body.length),
    'keybrake-error': error.code,
  };
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  return { status: error.status, headers, body };
}

function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer | null> {
  const declared = request.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    return Promise.reject(new ProxyError('payload_too_large', `request body is larger than ${maxBytes} bytes`));
  }
  // Events rather than `for await` (an async iterator per request), and inline listeners: the
  // loader names every function stored in a variable, which is a measurable cost per request.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    request.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > maxBytes) {
        settled = true;
        chunks.length = 0;
        reject(new ProxyError('payload_too_large', `request body is larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(chunks.length === 0 ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    request.on('error', (error: Error) => {
      if (settled) return;
      settled = true;
      reject(error);
    });
    request.on('close', () => {
      if (settled || request.complete) return;
      settled = true;
      reject(new ProxyError('request_malformed', 'the client closed the connection before its request body was complete'));
    });
  });
}
