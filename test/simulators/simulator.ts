/**
 * Shared plumbing for the in-process vendor simulators: an HTTP server on 127.0.0.1 that buffers
 * each request, records it in a wiretap before any vendor logic runs (so even a request the
 * simulator rejects or drops is visible), and supports injected failures and latency.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { Wiretap } from './wiretap.js';
import type { TappedRequest } from './wiretap.js';

/** Bodies beyond this are cut (and the request answered 413): no vendor accepts more. */
export const BODY_LIMIT_BYTES = 10 * 1024 * 1024;

/** How the next request(s) should fail. */
export interface FailureSpec {
  /** Answer with this status and a body in the vendor's own error shape (e.g. 500, 503, 429). */
  status?: number;
  /** How many consecutive requests fail this way; default 1. */
  times?: number;
  /** Wait this long before failing (or, with neither `status` nor `dropConnection`, before answering normally). */
  delayMs?: number;
  /** Destroy the socket without answering, as a crashed vendor or load balancer would. */
  dropConnection?: boolean;
  /** Extra response headers for the failure, e.g. `{ 'retry-after': '1' }` or `{ 'stripe-should-retry': 'false' }`. */
  headers?: Record<string, string>;
}

export interface Simulator {
  /** http://127.0.0.1:PORT, no trailing slash. */
  readonly url: string;
  readonly port: number;
  readonly wiretap: Wiretap;
  stop(): Promise<void>;
  /** Makes the next `times` requests fail as described. Calls queue up in order. */
  failNext(spec: FailureSpec): void;
  /** Adds this delay before every request is handled (0 to turn off). */
  setLatency(ms: number): void;
}

export interface SimResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

/** A handler's answer: a response, or 'drop' to destroy the connection unanswered. */
export type HandlerResult = SimResponse | 'drop';

export interface RequestContext {
  /** Aborted when the simulator stops, so long waits do not outlive it. */
  readonly signal: AbortSignal;
  /**
   * Applies the configured latency, then the next injected failure. Returns what to send instead
   * of the real answer, or undefined to carry on. Each vendor handler calls it once, at the point
   * where a real outage would hit (Stripe reserves its idempotency key first, so a concurrent
   * duplicate during the delay sees the key in flight).
   */
  interrupt(): Promise<HandlerResult | undefined>;
}

export interface HttpSimulatorOptions {
  handle(request: TappedRequest, context: RequestContext): Promise<HandlerResult>;
  /** The vendor-shaped answer for an injected failure with this status. */
  failureResponse(status: number, request: TappedRequest): SimResponse;
}

export function jsonResponse(status: number, value: unknown, headers: Record<string, string> = {}): SimResponse {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) };
}

/** A FIFO of failure specs, each consumed `times` times. */
class FailureQueue {
  readonly #queue: { spec: FailureSpec; remaining: number }[] = [];

  push(spec: FailureSpec): void {
    const times = spec.times ?? 1;
    if (!Number.isInteger(times) || times < 1) throw new Error(`failNext: times must be a positive integer, got ${times}`);
    this.#queue.push({ spec, remaining: times });
  }

  take(): FailureSpec | undefined {
    const head = this.#queue[0];
    if (!head) return undefined;
    head.remaining -= 1;
    if (head.remaining === 0) this.#queue.shift();
    return head.spec;
  }
}

interface BufferedBody {
  body: Buffer;
  truncated: boolean;
}

async function readBody(req: IncomingMessage): Promise<BufferedBody> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    // Keep draining past the limit so the client sees our 413 rather than a reset.
    if (size + buffer.length > BODY_LIMIT_BYTES) {
      truncated = true;
      chunks.push(buffer.subarray(0, Math.max(0, BODY_LIMIT_BYTES - size)));
      size = BODY_LIMIT_BYTES;
      continue;
    }
    chunks.push(buffer);
    size += buffer.length;
  }
  return { body: Buffer.concat(chunks), truncated };
}

function tap(req: IncomingMessage, buffered: BufferedBody): TappedRequest {
  const url = req.url ?? '/';
  const questionMark = url.indexOf('?');
  return {
    method: req.method ?? 'GET',
    url,
    path: questionMark === -1 ? url : url.slice(0, questionMark),
    query: questionMark === -1 ? '' : url.slice(questionMark + 1),
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    body: buffered.body,
    ...(buffered.truncated ? { bodyTruncated: true } : {}),
    receivedAt: Date.now(),
  };
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

function send(res: ServerResponse, request: TappedRequest, result: HandlerResult): void {
  if (result === 'drop') {
    request.response = { status: 0, headers: {}, body: Buffer.alloc(0), dropped: true };
    res.socket?.destroy();
    return;
  }
  const body = Buffer.isBuffer(result.body) ? result.body : Buffer.from(result.body, 'utf8');
  const headers = { ...lowerCaseKeys(result.headers), 'content-length': String(body.length) };
  request.response = { status: result.status, headers, body };
  res.writeHead(result.status, headers);
  res.end(body);
}

function internalError(error: unknown): SimResponse {
  // Not a vendor shape on purpose: a bug in the simulator must not look like a vendor answer.
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return jsonResponse(500, { simulator_error: message });
}

export async function startHttpSimulator(options: HttpSimulatorOptions): Promise<Simulator> {
  const wiretap = new Wiretap();
  const failures = new FailureQueue();
  const stopping = new AbortController();
  let latencyMs = 0;

  async function interrupt(request: TappedRequest): Promise<HandlerResult | undefined> {
    if (latencyMs > 0) await sleep(latencyMs, undefined, { signal: stopping.signal });
    const failure = failures.take();
    if (!failure) return undefined;
    if (failure.delayMs) await sleep(failure.delayMs, undefined, { signal: stopping.signal });
    if (failure.dropConnection) return 'drop';
    if (failure.status === undefined) return undefined;
    const response = options.failureResponse(failure.status, request);
    return { ...response, headers: { ...response.headers, ...failure.headers } };
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const buffered = await readBody(req);
    const request = tap(req, buffered);
    wiretap.record(request);
    if (buffered.truncated) {
      send(res, request, jsonResponse(413, { error: 'request body too large for the simulator' }));
      return;
    }
    let result: HandlerResult;
    try {
      result = await options.handle(request, { signal: stopping.signal, interrupt: () => interrupt(request) });
    } catch (error) {
      if (stopping.signal.aborted) return; // stopped mid-delay: the socket is already gone
      result = internalError(error);
    }
    send(res, request, result);
  }

  const server = createServer((req, res) => {
    onRequest(req, res).catch((error: unknown) => {
      if (!res.headersSent && !res.destroyed) res.writeHead(500).end(String(error));
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    wiretap,
    failNext: (spec) => failures.push(spec),
    setLatency: (ms) => {
      if (!Number.isFinite(ms) || ms < 0) throw new Error(`setLatency: expected a non-negative number, got ${ms}`);
      latencyMs = ms;
    },
    stop: async () => {
      stopping.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive sockets would otherwise hold close() open until the client lets go.
      server.closeAllConnections();
      await closed;
    },
  };
}
