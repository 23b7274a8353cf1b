/**
 * The simulated vendor of the benchmarks, run as its own process (`listening <port>` on
 * stdout): `POST /v1/charges` answers 200 with a fixed Stripe-like charge (~600 bytes) and a
 * `Request-Id`. Anything else is a Stripe-shaped 404. The request body is read in full first.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export const CHARGE_BODY = Buffer.from(
  JSON.stringify({
    id: 'ch_3PbENchKbRk0000000000001',
    object: 'charge',
    amount: 2000,
    amount_captured: 2000,
    amount_refunded: 0,
    balance_transaction: 'txn_3PbENchKbRk0000000000001',
    captured: true,
    created: 1718000000,
    currency: 'usd',
    customer: 'cus_123',
    description: 'bench',
    livemode: false,
    metadata: {},
    outcome: { network_status: 'approved_by_network', risk_level: 'normal', type: 'authorized' },
    paid: true,
    payment_intent: 'pi_3PbENchKbRk0000000000001',
    payment_method: 'pm_1PbENchKbRk000000000001',
    payment_method_details: { card: { brand: 'visa', last4: '4242' }, type: 'card' },
    receipt_url: null,
    refunded: false,
    status: 'succeeded',
  }),
);

const NOT_FOUND = Buffer.from(JSON.stringify({ error: { type: 'invalid_request_error', message: 'Unrecognized request URL.' } }));

function main(): void {
  const port = Number(process.argv[2] ?? '0');
  let counter = 0;
  const server = createServer((request, response) => {
    request.on('data', () => {});
    request.on('end', () => {
      counter++;
      const requestId = `req_bench${counter.toString(36).padStart(10, '0')}`;
      const found = request.method === 'POST' && request.url === '/v1/charges';
      const body = found ? CHARGE_BODY : NOT_FOUND;
      response.writeHead(found ? 200 : 404, {
        'content-type': 'application/json',
        'content-length': String(body.length),
        'request-id': requestId,
        'stripe-version': request.headers['stripe-version'] ?? '2024-06-20',
      });
      response.end(body);
    });
  });
  // Proxies keep their upstream connections open: do not close them between runs.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1]?.endsWith('upstream-server.ts')) main();
