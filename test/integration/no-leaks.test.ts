/**
 * A canary vendor secret and a vault key are pushed through every path (success, denials, a
 * vendor error that echoes request headers, an unreachable vendor, a revoked key) of a real
 * control-plane process and a real data-plane process logging at debug level; neither may
 * appear in any log line, answer or metric.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createOperatorClient, type OperatorClient } from '../../cli/operator-client.js';
import { freePort } from '../../dev/free-port.js';
import type { KeySpec } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, type TestStack } from '../support/control-plane.js';
import { startTestDataPlane, type TestDataPlane } from '../support/data-plane.js';
import { killIfAlive, spawnKeybrake, type SpawnedKeybrake } from '../support/processes.js';
import { rawRequest } from '../support/raw-http.js';
import { startStripeSimulator, type StripeSimulator } from '../simulators/index.js';

const CANARY = 'sk_live_CANARY_never_log_me_0123456789';
const TWILIO_CANARY = 'CANARY_twilio_token_never_log_me';

let stack: TestStack;
let controlPlane: SpawnedKeybrake;
let client: OperatorClient;
let sim: StripeSimulator;
let dp: TestDataPlane;

beforeAll(async () => {
  stack = await createTestStack();
  const grpc = `127.0.0.1:${await freePort()}`;
  controlPlane = spawnKeybrake(['control-plane'], stack.env({ KEYBRAKE_GRPC_ADDR: grpc, KEYBRAKE_ADMIN_ADDR: `127.0.0.1:${await freePort()}`, KEYBRAKE_LOG_LEVEL: 'debug' }));
  await controlPlane.waitForOutput(/control plane listening/, 30_000);
  client = createOperatorClient(grpc, stack.adminToken);
  sim = await startStripeSimulator({ secretKey: CANARY });
  await client.setVendorCredential({ vendor: 'stripe', secret: CANARY, accountSid: '' });
  await client.setVendorCredential({ vendor: 'twilio', secret: TWILIO_CANARY, accountSid: `AC${'1'.repeat(32)}` });
  dp = await startTestDataPlane(stack, grpc, { stripe: sim.url, twilio: `http://127.0.0.1:${await freePort()}` }, { KEYBRAKE_LOG_LEVEL: 'debug' });
});
afterAll(async () => {
  await dp?.stop();
  client?.close();
  controlPlane?.child.kill('SIGTERM');
  await Promise.race([controlPlane?.exited(), new Promise((r) => setTimeout(r, 5000))]);
  killIfAlive(controlPlane?.child.pid);
  await sim?.stop();
});

describe('secrets never leak', () => {
  it('into logs, answers or metrics, on any path', async () => {
    // The simulator's echo route is no Stripe endpoint the cost model knows: a per-call estimate prices it.
    const spec = (vendor: string, endpoints: string[]): KeySpec => ({ vendor, label: 'leaks', allowedEndpoints: endpoints, dailyCapMicros: 0, budgetMicros: 100_000_000, expiresInSeconds: 600, perCallEstimateMicros: 1_000_000 });
    const { issued } = await client.issueKeys({
      specs: [spec('stripe', ['POST /v1/charges', 'POST /v1/test_helpers/echo_headers']), spec('twilio', ['POST /2010-04-01/Accounts/*/Messages.json'])],
    });
    const [stripeKey, twilioKey] = issued.map((i) => i.vaultKey) as [string, string];
    const answers: string[] = [];
    const call = async (head: string, body = '') => answers.push((await rawRequest(dp.port, head, body)).raw);

    await call(`POST /v1/charges HTTP/1.1\nHost: x\nAuthorization: Bearer ${stripeKey}\nContent-Type: application/x-www-form-urlencoded\nContent-Length: 36\nConnection: close\n\n`, 'amount=100&currency=usd&source=tok_1');
    await call(`POST /v1/test_helpers/echo_headers HTTP/1.1\nHost: x\nAuthorization: Bearer ${stripeKey}\nContent-Length: 0\nConnection: close\n\n`);
    await call(`POST /v1/refunds HTTP/1.1\nHost: x\nAuthorization: Bearer ${stripeKey}\nContent-Length: 0\nConnection: close\n\n`);
    await call(`POST /v1/charges HTTP/1.1\nHost: x\nAuthorization: Bearer ${stripeKey}x\nContent-Length: 0\nConnection: close\n\n`);
    const basic = Buffer.from(`AC${'0'.repeat(32)}:${twilioKey}`).toString('base64');
    // Twilio's upstream is a closed port: the forwarding error is thrown and logged.
    await call(`POST /twilio/2010-04-01/Accounts/AC${'0'.repeat(32)}/Messages.json HTTP/1.1\nHost: x\nAuthorization: Basic ${basic}\nContent-Type: application/x-www-form-urlencoded\nContent-Length: 31\nConnection: close\n\n`, 'To=%2B15005550006&Body=hi+there');
    await client.revokeKey({ id: issued[0]!.key!.id });
    // Until the data plane has the revocation (milliseconds): probes not counted among the answers.
    let revoked = false;
    for (let i = 0; i < 100 && !revoked; i++) {
      const probe = await rawRequest(dp.port, `POST /v1/charges HTTP/1.1\nHost: x\nAuthorization: Bearer ${stripeKey}\nContent-Length: 0\nConnection: close\n\n`, '');
      revoked = /keybrake-error: vault_key_revoked/i.test(probe.raw);
      if (!revoked) await new Promise((r) => setTimeout(r, 20));
    }
    expect(revoked).toBe(true);
    await call(`POST /v1/charges HTTP/1.1\nHost: x\nAuthorization: Bearer ${stripeKey}\nContent-Length: 0\nConnection: close\n\n`);
    expect(answers.map((a) => Number(a.split(' ')[1]))).toEqual([200, 400, 403, 401, 502, 401]);

    const metrics = await (await fetch(`${dp.url}/metrics`)).text();
    await new Promise((r) => setTimeout(r, 500));
    const logs = controlPlane.output() + dp.process.output();
    expect(logs.length).toBeGreaterThan(500); // debug logging really happened
    expect(metrics).toContain('keybrake_proxy_calls_total');
    for (const [where, text] of [['answers', answers.join('\n')], ['logs', logs], ['metrics', metrics]] as const) {
      for (const secret of [CANARY, TWILIO_CANARY, stripeKey, twilioKey, stack.adminToken, stack.dataplaneToken]) {
        expect(text.includes(secret), `${where} contain ${secret.slice(0, 12)}…`).toBe(false);
      }
      expect(text.includes(Buffer.from(`${CANARY}:`).toString('base64')), `${where} contain the Basic form`).toBe(false);
    }
  });
});
