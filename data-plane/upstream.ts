/**
 * One undici pool per vendor upstream. The upstream is fixed by configuration, never by
 * anything in a request; redirects are returned to the caller, never followed.
 */
import { Pool, errors as undiciErrors, util as undiciUtil, type Dispatcher } from 'undici';

import type { Vendor } from '../core/vendors.js';
import { ProxyError } from './proxy-error.js';

/** Connection errors before any byte of the request left. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

export interface UpstreamRequest {
  readonly method: string;
  /** Path and query in the vendor's path space, e.g. "/v1/charges?limit=3". */
  readonly path: string;
  /** Flat [name, value, name, value, …] list, in the order to send. */
  readonly headers: string[];
  readonly body: Buffer | null;
}

export class Upstreams {
  private readonly pools = new Map<Vendor, { pool: Pool; basePath: string }>();

  constructor(
    urls: Readonly<Record<Vendor, string>>,
    private readonly timeoutMs: number,
  ) {
    for (const [vendor, text] of Object.entries(urls) as [Vendor, string][]) {
      const url = new URL(text);
      this.pools.set(vendor, {
        pool: new Pool(url.origin, { connections: 64, pipelining: 1, keepAliveTimeout: 30_000, connectTimeout: 5_000 }),
        basePath: url.pathname.replace(/\/+$/, ''),
      });
    }
  }

  /**
   * One call upstream, its whole answer buffered (pricing, settlement and the secret scrubber
   * need all of it). A plain dispatch handler rather than `pool.request`: no body stream and no
   * extra promise per call, a measurable share of the data plane's CPU per request.
   */
  send(vendor: Vendor, request: UpstreamRequest): Promise<UpstreamResponse> {
    const upstream = this.pools.get(vendor)!;
    return new Promise((resolve, reject) => {
      upstream.pool.dispatch(
        { method: request.method as 'GET', path: `${upstream.basePath}${request.path}`, headers: request.headers, body: request.body, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs },
        new BufferedAnswer(resolve, (error) => reject(this.describeFailure(vendor, error))),
      );
    });
  }

  private describeFailure(vendor: Vendor, error: Error): ProxyError {
    if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError) {
      return new ProxyError('upstream_timeout', `${vendor} did not answer within ${this.timeoutMs} ms; the call may or may not have been made`, { cause: error });
    }
    const notSent = error instanceof undiciErrors.ConnectTimeoutError || NOT_SENT_CODES.has((error as NodeJS.ErrnoException).code ?? '');
    return new ProxyError('upstream_unreachable', `${vendor} could not be reached (${describe(error)})`, { cause: error, notSent });
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map(({ pool }) => pool.close()));
  }
}

/**
 * Collects one answer. A class, not an object literal of closures: its methods exist once, not
 * once per call (the TypeScript loader would also name each closure, per call).
 */
class BufferedAnswer implements Dispatcher.DispatchHandler {
  private status = 0;
  private rawHeaders: Buffer[] = [];
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly resolve: (response: UpstreamResponse) => void,
    private readonly reject: (error: Error) => void,
  ) {}

  onConnect(): void {}

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    // 1xx informational answers are not the response.
    if (statusCode < 200) return true;
    this.status = statusCode;
    this.rawHeaders = rawHeaders;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    this.size += chunk.length;
    return true;
  }

  onComplete(): void {
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.resolve({ status: this.status, headers: undiciUtil.parseHeaders(this.rawHeaders) as Record<string, string | string[] | undefined>, body });
  }

  onError(error: Error): void {
    this.reject(error);
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ?? error.message;
  return String(error);
}
