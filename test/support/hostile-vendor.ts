/**
 * A vendor upstream that answers whatever the test scripts, for answers the realistic
 * simulators never give: a gzip-encoded body the proxy did not ask for, the real secret echoed
 * with JSON escapes, more money moved than was asked for. It records every request it got.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedAnswer {
  readonly status?: number;
  readonly headers?: Record<string, string>;
  readonly body: Buffer | string | object;
}

export interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface HostileVendor {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** Answers for the next requests, in order; after them, `fallback`. */
  script(...answers: ScriptedAnswer[]): void;
  fallback: ScriptedAnswer;
  stop(): Promise<void>;
}

export async function startHostileVendor(): Promise<HostileVendor> {
  const queue: ScriptedAnswer[] = [];
  const requests: ReceivedRequest[] = [];
  const vendor = {
    url: '',
    requests,
    fallback: { status: 200, body: { object: 'unknown', id: 'obj_1' } } as ScriptedAnswer,
    script: (...answers: ScriptedAnswer[]) => void queue.push(...answers),
    stop: async () => {},
  };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks) });
      const answer = queue.shift() ?? vendor.fallback;
      const body = Buffer.isBuffer(answer.body) ? answer.body : Buffer.from(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
      response.writeHead(answer.status ?? 200, { 'content-type': 'application/json', 'request-id': `req_${requests.length}`, ...answer.headers, 'content-length': String(body.length) });
      response.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  vendor.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  vendor.stop = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  return vendor;
}
