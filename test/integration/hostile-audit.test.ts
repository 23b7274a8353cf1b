/**
 * Hostile input against the audit trail and the control plane's gRPC server, on the real stack
 * (etcd, PostgreSQL, a control plane, data-plane processes, the Stripe simulator's wiretap):
 * - a record PostgreSQL would refuse, left in a data plane's spool, no longer stops the records
 *   behind it from reaching /audit (it used to, for good, across restarts);
 * - an over-long Idempotency-Key is refused before anything else, with or without a vault key;
 * - a flood of refusals without a valid vault key adds a bounded number of records, while a
 *   known key's refused calls each keep their own record under that key;
 * - oversized or unauthenticated gRPC messages are refused promptly while calls are proxied.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { credentials, Client, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { KeySpec } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';
import { startTestDataPlane, type TestDataPlane } from '../support/data-plane.js';
import { rawRequest } from '../support/raw-http.js';
import { stripeThrough } from '../support/sdk-clients.js';
import { startAllSimulators, type AllSimulators } from '../simulators/index.js';

let stack: TestStack;
let cp: TestControlPlane;
let sims: AllSimulators;
let vaultKey = '';
let keyId = '';
const spoolDirs: string[] = [];

const spec = (change: Partial<KeySpec> = {}): KeySpec => ({
  vendor: 'stripe', label: 'hostile/audit', allowedEndpoints: ['POST /v1/customers', 'POST /v1/charges'], dailyCapMicros: 0, budgetMicros: 1_000_000_000,
  expiresInSeconds: 3600, perCallEstimateMicros: 0, ...change,
});

beforeAll(async () => {
  stack = await createTestStack();
  cp = await startTestControlPlane(stack);
  sims = await startAllSimulators();
  await cp.client.setVendorCredential({ vendor: 'stripe', secret: sims.secrets.stripeSecretKey, accountSid: '' });
  const { issued } = await cp.client.issueKey({ spec: spec() });
  vaultKey = issued!.vaultKey;
  keyId = issued!.key!.id;
});

afterAll(async () => {
  await sims?.stop();
  await cp?.stop();
  for (const dir of spoolDirs) rmSync(dir, { recursive: true, force: true });
});

function spoolDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keybrake-hostile-spool-'));
  spoolDirs.push(dir);
  return dir;
}

async function startDataPlane(dir = spoolDir(), env: Record<string, string> = {}): Promise<TestDataPlane> {
  return startTestDataPlane(stack, cp.grpcAddress, { stripe: sims.stripe.url }, { KEYBRAKE_AUDIT_SPOOL_DIR: dir, ...env });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- audit entries are read as JSON
async function auditEntries(query: string): Promise<any[]> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const entries: any[] = [];
  let cursor = '';
  for (let page = 0; page < 50; page++) {
    const { status: code, body } = await cp.http('GET', `/audit?${query}&limit=1000${cursor === '' ? '' : `&cursor=${cursor}`}`);
    expect(code).toBe(200);
    entries.push(...body.entries);
    if (body.next_cursor === null) return entries;
    cursor = body.next_cursor;
  }
  throw new Error('too many audit pages');
}

async function waitFor<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Text PostgreSQL cannot compress below a btree index row's 2,704 bytes. */
const incompressible = (length: number) => Array.from({ length }, (_, i) => String.fromCharCode(0x4e00 + ((i * 7919) % 20000))).join('');

describe('a record PostgreSQL would refuse', () => {
  it('left in the spool by an earlier run, no longer keeps later calls out of /audit', async () => {
    const dir = spoolDir();
    // What a data plane before the bounds spooled for one request: a 3,000-character Idempotency-Key.
    const poisoned = {
      seq: 1, incarnation: 'feedfacefeedface', tsUnixMs: Date.now() - 1000, keyId: '', label: '', vendor: 'stripe', method: 'POST', path: '/v1/charges', status: 401,
      decision: 'denied', reason: 'vault_key_invalid', amount: -1, currency: '', estimatedUsdMicros: 0, usdMicros: 0, idempotencyKey: incompressible(3000),
      vendorRequestId: '', vendorObjectId: '', stripeChargeId: '', replayed: false, latencyMs: 1,
    };
    writeFileSync(join(dir, 'feedfacefeedface.000000000001.jsonl'), `${JSON.stringify(poisoned)}\n`);
    const dp = await startDataPlane(dir);
    try {
      const stripe = stripeThrough(dp.url, vaultKey);
      const customers: Stripe.Customer[] = [];
      for (let i = 0; i < 5; i++) customers.push(await stripe.customers.create({ description: `after the poison ${i}` }));
      const entries = await waitFor('the calls after the poisoned record in /audit', async () => {
        const found = await auditEntries(`key_id=${keyId}`);
        return customers.every((c) => found.some((e) => e.vendor_object_id === c.id)) ? found : null;
      });
      expect(entries.filter((e) => e.dataplane_id === `dp-test-${dp.port}`).length).toBeGreaterThanOrEqual(5);
      // The poisoned record itself is stored, its key cut, and flagged.
      const all = await auditEntries('vendor=stripe');
      const stored = all.find((e) => e.id.endsWith(':feedfacefeedface:1'));
      expect(stored).toBeDefined();
      expect(stored.idempotency_key).toHaveLength(255);
      expect(stored.flag).toMatch(/idempotencyKey cut to 255 characters/);
      const metrics = await (await fetch(`${cp.adminUrl}/metrics`)).text();
      expect(metrics).toMatch(/^keybrake_audit_records_flagged_total [1-9]/m);
    } finally {
      await dp.stop();
    }
  });

  it('cannot be made: an over-long, repeated or non-ASCII Idempotency-Key is refused before anything else, key or no key', async () => {
    const dp = await startDataPlane();
    try {
      sims.stripe.wiretap.clear();
      const body = 'amount=100&currency=usd';
      const head = (key: string | null, extra: string) =>
        `POST /v1/charges HTTP/1.1\nHost: x\n${key === null ? '' : `Authorization: Bearer ${key}\n`}Content-Type: application/x-www-form-urlencoded\nContent-Length: ${body.length}\n${extra}Connection: close\n\n`;
      for (const key of [null, vaultKey]) {
        for (const extra of [`Idempotency-Key: ${'k'.repeat(256)}\n`, 'Idempotency-Key: a\nIdempotency-Key: b\n', 'Idempotency-Key: caf\xe9\n']) {
          const answer = await rawRequest(dp.port, head(key, extra), body);
          expect(answer.status).toBe(400);
          expect(answer.headers['keybrake-error']).toBe('request_malformed');
          expect(JSON.parse(answer.body).error.message).toMatch(/Idempotency-Key/);
        }
      }
      // 255 is fine.
      const ok = await stripeThrough(dp.url, vaultKey).customers.create({}, { idempotencyKey: 'k'.repeat(255) });
      expect(ok.id).toMatch(/^cus_/);
      expect(sims.stripe.wiretap.count).toBe(1);
      // The refusals made with the key are recorded under it.
      const refused = await waitFor('the keyed refusals', async () => {
        const found = (await auditEntries(`key_id=${keyId}`)).filter((e) => e.dataplane_id === `dp-test-${dp.port}` && e.reason === 'request_malformed');
        return found.length === 3 ? found : null;
      });
      expect(refused.every((e) => e.label === 'hostile/audit')).toBe(true);
    } finally {
      await dp.stop();
    }
  });
});

describe('refusals without a valid vault key', () => {
  it('are sampled into a bounded number of records that still count every call, while keyed refusals each keep theirs', async () => {
    const dp = await startDataPlane();
    const dataplaneId = `dp-test-${dp.port}`;
    const flood = 600;
    try {
      const stripe = (key: string) => stripeThrough(dp.url, key);
      for (let sent = 0; sent < flood; sent += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, i) => stripe(`kbv_forged${sent + i}`).customers.create({}).catch((e: unknown) => e)));
      }
      // A known key's refusals (a malformed target, refused before the key is looked up) keep a record each.
      for (let i = 0; i < 3; i++) {
        const answer = await rawRequest(dp.port, `GET /v1/customers/./x HTTP/1.1\nHost: x\nAuthorization: Bearer ${vaultKey}\nConnection: close\n\n`);
        expect(answer.status).toBe(400);
      }
    } finally {
      // A clean stop writes the aggregates due and ships them.
      await dp.stop();
    }
    const entries = await waitFor('the flood in /audit', async () => {
      const found = (await auditEntries('vendor=stripe')).filter((e) => e.dataplane_id === dataplaneId);
      const unkeyed = found.filter((e) => e.key_id === null);
      return unkeyed.reduce((sum, e) => sum + e.call_count, 0) === flood ? found : null;
    });
    const unkeyed = entries.filter((e) => e.key_id === null);
    // At most the burst (200) plus what the rate refilled, plus one aggregate per kind.
    expect(unkeyed.length).toBeLessThan(flood / 2);
    const aggregates = unkeyed.filter((e) => e.call_count > 1);
    expect(aggregates.length).toBeGreaterThanOrEqual(1);
    expect(aggregates.every((e) => e.decision === 'denied' && e.reason === 'vault_key_invalid' && e.status === 401)).toBe(true);
    const keyed = entries.filter((e) => e.key_id === keyId);
    expect(keyed.map((e) => [e.reason, e.call_count])).toEqual([
      ['request_malformed', 1],
      ['request_malformed', 1],
      ['request_malformed', 1],
    ]);
  });
});

describe('gRPC messages', () => {
  function rawCall(path: string, payload: Buffer, token: string | null): Promise<{ code: number; details: string; ms: number }> {
    const client = new Client(cp.grpcAddress, credentials.createInsecure(), { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
    const metadata = new Metadata();
    if (token !== null) metadata.set('authorization', `Bearer ${token}`);
    const started = performance.now();
    return new Promise((resolve) => {
      client.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, payload, metadata, { deadline: Date.now() + 20_000 }, (error: ServiceError | null) => {
        client.close();
        resolve({ code: error?.code ?? status.OK, details: error?.details ?? '', ms: performance.now() - started });
      });
    });
  }

  it('refuses oversized and unauthenticated messages promptly while calls are proxied and readiness answers', async () => {
    const dp = await startDataPlane();
    const stripe = stripeThrough(dp.url, vaultKey);
    const statuses: number[] = [];
    const readyMs: number[] = [];
    let running = true;
    const load = (async () => {
      while (running) {
        const answer = await stripe.customers.create({}).then(
          () => 200,
          (error: unknown) => (error instanceof Stripe.errors.StripeError ? (error.statusCode ?? 0) : -1),
        );
        statuses.push(answer);
        const started = performance.now();
        await fetch(`${cp.adminUrl}/readyz`);
        readyMs.push(performance.now() - started);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const huge = Buffer.alloc(64 * 1024 * 1024, 0x0a);
      const unauthenticated = await rawCall('/keybrake.v1.OperatorService/IssueKeys', huge, null);
      expect(unauthenticated.code).toBe(status.UNAUTHENTICATED);
      const wrongToken = await rawCall('/keybrake.v1.OperatorService/IssueKeys', huge, 'not-a-token');
      expect(wrongToken.code).toBe(status.UNAUTHENTICATED);
      // Authenticated, but above what any method takes (16 MiB), and above what GetKey takes (1 MiB).
      const tooLarge = await rawCall('/keybrake.v1.OperatorService/IssueKeys', Buffer.alloc(20 * 1024 * 1024, 0x0a), stack.adminToken);
      expect(tooLarge.code).toBe(status.RESOURCE_EXHAUSTED);
      const tooLargeForMethod = await rawCall('/keybrake.v1.OperatorService/GetKey', Buffer.alloc(2 * 1024 * 1024, 0x0a), stack.adminToken);
      expect(tooLargeForMethod.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(tooLargeForMethod.details).toMatch(/GetKey takes requests of at most 1048576 bytes/);
      // Bytes the decoder cannot read are the caller's mistake, not an internal error.
      const garbage = await rawCall('/keybrake.v1.OperatorService/GetKey', Buffer.from([0xff, 0xff, 0xff, 0xff]), stack.adminToken);
      expect(garbage.code).toBe(status.INVALID_ARGUMENT);
      // The data planes' service: the token first, then the stream's own bound.
      const stream = await rawCall('/keybrake.v1.DataPlaneService/Connect', Buffer.alloc(40 * 1024 * 1024, 0x0a), null);
      expect(stream.code).toBe(status.UNAUTHENTICATED);
      for (const answer of [unauthenticated, wrongToken, tooLarge, tooLargeForMethod, stream]) expect(answer.ms).toBeLessThan(5000);
      // And an ordinary call still works.
      expect((await cp.client.getKey({ id: keyId })).key?.id).toBe(keyId);
    } finally {
      running = false;
      await load;
      await dp.stop();
    }
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(Math.max(...readyMs)).toBeLessThan(1000);
  });
});
