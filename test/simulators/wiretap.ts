/**
 * What a simulated vendor received, byte for byte, so tests can assert on exactly what the proxy
 * forwarded (headers it must strip, bodies it must not rewrite, keys it must swap).
 */
import type { IncomingHttpHeaders } from 'node:http';

/** The answer a simulator gave, attached to its request once it has been written. */
export interface TappedResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: Buffer;
  /** Set when the simulator destroyed the socket instead of answering (failure injection). */
  dropped?: boolean;
}

export interface TappedRequest {
  method: string;
  /** The raw request target as received: path plus query, not normalised or decoded. */
  url: string;
  /** `url` before the `?`. */
  path: string;
  /** `url` after the `?`, without it; '' when there is none. */
  query: string;
  /** node's IncomingHttpHeaders: lower-case names, repeated headers joined or arrays as node does. */
  headers: IncomingHttpHeaders;
  /** Names and values as sent, alternating, original case and order. */
  rawHeaders: string[];
  body: Buffer;
  /** True when the body exceeded the simulator's limit and only its start was kept. */
  bodyTruncated?: boolean;
  /** Date.now() when the whole body had arrived. */
  receivedAt: number;
  /** Filled in after the simulator answers; undefined while the request is still being handled. */
  response?: TappedResponse;
}

export type TappedPredicate = (request: TappedRequest) => boolean;

export class Wiretap {
  readonly #requests: TappedRequest[] = [];

  record(request: TappedRequest): void {
    this.#requests.push(request);
  }

  /** Every request so far, oldest first. */
  requests(): readonly TappedRequest[] {
    return this.#requests;
  }

  clear(): void {
    this.#requests.length = 0;
  }

  find(predicate: TappedPredicate): TappedRequest | undefined {
    return this.#requests.find(predicate);
  }

  filter(predicate: TappedPredicate): TappedRequest[] {
    return this.#requests.filter(predicate);
  }

  last(): TappedRequest | undefined {
    return this.#requests.at(-1);
  }

  get count(): number {
    return this.#requests.length;
  }

  /**
   * Resolves with the first request matching `predicate`, for tests where the call reaches the
   * simulator asynchronously (it may still be in handling: check `response` if that matters).
   * Polls every 10 ms, bounded by `timeoutMs`.
   */
  async waitFor(predicate: TappedPredicate, timeoutMs = 2_000): Promise<TappedRequest> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.#requests.find(predicate);
      if (found) return found;
      if (Date.now() >= deadline) throw new Error(`wiretap: no matching request within ${timeoutMs} ms (saw ${this.count})`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** A header's value as one string (the first when node made an array), or undefined. */
export function headerValue(request: Pick<TappedRequest, 'headers'>, name: string): string | undefined {
  const value = request.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
