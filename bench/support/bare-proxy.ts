/**
 * The baseline the data plane is compared to: the least a Node proxy can do, in its own
 * process (`listening <port>` on stdout). node:http in, the body read in full, forwarded with
 * an undici Pool (the same pool options as data-plane/upstream.ts), the response body read in
 * full and written back. No policy, no header rewriting beyond hop-by-hop headers.
 *   node bin/run-ts.js bench/support/bare-proxy.ts <upstream origin> [port]
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { Pool } from 'undici';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length']);

function main(): void {
  const origin = process.argv[2];
  if (origin === undefined) throw new Error('usage: bare-proxy.ts <upstream origin> [port]');
  const port = Number(process.argv[3] ?? '0');
  const pool = new Pool(origin, { connections: 64, pipelining: 1, keepAliveTimeout: 30_000, connectTimeout: 5_000 });

  const server = createServer(async (request, response) => {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of request as AsyncIterable<Buffer>) chunks.push(chunk);
      const body = chunks.length === 0 ? null : Buffer.concat(chunks);
      const headers: string[] = [];
      const raw = request.rawHeaders;
      for (let i = 0; i + 1 < raw.length; i += 2) {
        if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
      }
      if (body !== null) headers.push('content-length', String(body.length));
      const upstream = await pool.request({ method: (request.method ?? 'GET') as 'GET', path: request.url ?? '/', headers, body });
      const payload = Buffer.from(await upstream.body.arrayBuffer());
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(upstream.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      }
      out['content-length'] = String(payload.length);
      response.writeHead(upstream.statusCode, out);
      response.end(payload);
    } catch (error) {
      if (response.headersSent) {
        response.destroy();
        return;
      }
      const text = `bare proxy: ${error instanceof Error ? error.message : String(error)}`;
      response.writeHead(502, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(text)) });
      response.end(text);
    }
  });
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
  });
  const stop = () => {
    server.close(() => void pool.close().finally(() => process.exit(0)));
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main();
