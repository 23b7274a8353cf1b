/**
 * One undici pool per vendor upstream. The upstream is fixed by configuration, never by
 * anything in a request; redirects are returned to the caller, never followed.
 */
import { Pool, errors as undiciErrors } from 'undici';

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

  async send(vendor: Vendor, request: UpstreamRequest): Promise<UpstreamResponse> {
    const upstream = this.pools.get(vendor)!;
    try {
      const response = await upstream.pool.request({
        method: request.method as 'GET',
        path: `${upstream.basePath}${request.path}`,
        headers: request.headers,
        body: request.body,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const body = Buffer.from(await response.body.arrayBuffer());
      return { status: response.statusCode, headers: response.headers, body };
    } catch (error) {
      if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError) {
        throw new ProxyError('upstream_timeout', `${vendor} did not answer within ${this.timeoutMs} ms; the call may or may not have been made`, { cause: error });
      }
      const notSent = error instanceof undiciErrors.ConnectTimeoutError || NOT_SENT_CODES.has((error as NodeJS.ErrnoException).code ?? '');
      throw new ProxyError('upstream_unreachable', `${vendor} could not be reached (${describe(error)})`, { cause: error, notSent });
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map(({ pool }) => pool.close()));
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ?? error.message;
  return String(error);
}
