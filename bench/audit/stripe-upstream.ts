/**
 * The simulated Stripe of bench:audit, run as its own process so that it does not share the
 * benchmark's event loop: `node bin/run-ts.js bench/audit/stripe-upstream.ts` prints
 * `listening <port>` once it accepts connections on 127.0.0.1. `POST /v1/charges` answers 200
 * with a small charge and a unique `request-id`; anything else is a Stripe-shaped 404.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const NOT_FOUND = Buffer.from(JSON.stringify({ error: { type: 'invalid_request_error', message: 'Unrecognized request URL.' } }));

function main(): void {
  let counter = 0;
  const server = createServer((request, response) => {
    request.on('data', () => {});
    request.on('end', () => {
      counter++;
      const suffix = counter.toString(36).padStart(10, '0');
      const found = request.method === 'POST' && request.url === '/v1/charges';
      const body = found
        ? Buffer.from(JSON.stringify({ id: `ch_audit${suffix}`, object: 'charge', amount: 2000, currency: 'usd', captured: true, paid: true, status: 'succeeded', livemode: false }))
        : NOT_FOUND;
      response.writeHead(found ? 200 : 404, {
        'content-type': 'application/json',
        'content-length': String(body.length),
        'request-id': `req_audit${suffix}`,
      });
      response.end(body);
    });
  });
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`));
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main();
