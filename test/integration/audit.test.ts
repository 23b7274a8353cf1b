/**
 * The audit trail end to end: every call a data plane answered has exactly one record in
 * PostgreSQL, matching what the vendor saw; records survive kill -9 of a data plane and a
 * control-plane restart; the seed document's pre-flight lookup by idempotency key works; and
 * the ledger's spend agrees with the audit sum.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import pg from 'pg';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { freePort } from '../../dev/free-port.js';
import type { KeySpec } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';
import { startTestDataPlane, type TestDataPlane } from '../support/data-plane.js';
import { stripeThrough } from '../support/sdk-clients.js';
import { KEYBRAKE_BIN, spawnKeybrake } from '../support/processes.js';
import { startTcpRelay } from '../support/tcp-relay.js';
import { headerValue, startStripeSimulator, type StripeSimulator } from '../simulators/index.js';

const SECRET = 'sk_test_audit_0123456789abcdef';
const run = promisify(execFile);

let stack: TestStack;
let cp: TestControlPlane;
let grpcPort: number;
let sim: StripeSimulator;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  stack = await createTestStack();
  grpcPort = await freePort();
  cp = await startTestControlPlane(stack, { KEYBRAKE_GRPC_ADDR: `127.0.0.1:${grpcPort}`, KEYBRAKE_LEASE_TTL: '5s' });
  sim = await startStripeSimulator({ secretKey: SECRET });
  await cp.client.setVendorCredential({ vendor: 'stripe', secret: SECRET, accountSid: '' });
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await sim?.stop();
  await cp?.stop();
});

async function dataPlane(env: Record<string, string> = {}, grpc = `127.0.0.1:${grpcPort}`): Promise<TestDataPlane> {
  const dp = await startTestDataPlane(stack, grpc, { stripe: sim.url }, { KEYBRAKE_LEASE_TTL: '5s', ...env });
  cleanups.push(() => dp.stop());
  return dp;
}

async function issue(label: string): Promise<{ id: string; vaultKey: string }> {
  const spec: KeySpec = {
    vendor: 'stripe', label, allowedEndpoints: ['POST /v1/charges', 'POST /v1/customers', 'GET /v1/charges/*'], dailyCapMicros: 0, budgetMicros: 10_000_000_000,
    expiresInSeconds: 3600, perCallEstimateMicros: 0,
  };
  const { issued } = await cp.client.issueKey({ spec });
  return { id: issued!.key!.id, vaultKey: issued!.vaultKey };
}

interface Entry {
  id: string;
  key_id: string | null;
  label: string | null;
  method: string;
  path: string;
  status: number;
  decision: string;
  reason: string | null;
  amount: number | null;
  currency: string | null;
  usd_micros: number;
  idempotency_key: string | null;
  vendor_request_id: string | null;
  vendor_object_id: string | null;
  stripe_charge_id: string | null;
  replayed: boolean;
  dataplane_id: string;
}

async function auditFor(query: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const { body } = await cp.http('GET', `/audit?${query}&limit=1000${cursor === null ? '' : `&cursor=${cursor}`}`);
    entries.push(...(body.entries as Entry[]));
    cursor = body.next_cursor as string | null;
    if (cursor === null) break;
  }
  return entries;
}

/** Waits until the label has `count` records (records arrive asynchronously, in well under a second). */
async function awaitRecords(label: string, count: number, timeoutMs = 15_000): Promise<Entry[]> {
  const deadline = Date.now() + timeoutMs;
  let entries = await auditFor(`label=${encodeURIComponent(label)}`);
  while (entries.length < count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    entries = await auditFor(`label=${encodeURIComponent(label)}`);
  }
  return entries;
}

/** Wiretapped requests carrying this label, with the Request-Id Stripe answered. */
function forwarded(label: string): { requestId: string; method: string; path: string; objectId: string | null }[] {
  return sim.wiretap
    .requests()
    .filter((r) => r.body.toString('utf8').includes(`description=${encodeURIComponent(label)}`) || r.url.includes(encodeURIComponent(label)))
    .filter((r) => r.response !== undefined)
    .map((r) => {
      const body = r.response!.body.toString('utf8');
      let objectId: string | null = null;
      try {
        objectId = (JSON.parse(body) as { id?: string }).id ?? null;
      } catch {
        objectId = null;
      }
      return { requestId: String(r.response!.headers['request-id'] ?? ''), method: r.method, path: r.url.split('?')[0]!, objectId };
    });
}

function expectExactlyOnce(entries: Entry[], label: string): void {
  const ids = entries.map((e) => e.id);
  expect(new Set(ids).size).toBe(ids.length);
  const allowed = entries.filter((e) => e.decision === 'allowed');
  const byRequestId = new Map(allowed.map((e) => [e.vendor_request_id, e]));
  const tapped = forwarded(label);
  expect(allowed).toHaveLength(tapped.length);
  for (const request of tapped) {
    const entry = byRequestId.get(request.requestId);
    expect(entry, `no audit record for ${request.method} ${request.path} (${request.requestId})`).toBeDefined();
    expect(entry).toMatchObject({ method: request.method, path: request.path });
    if (request.objectId !== null && entry!.status === 200) expect(entry!.vendor_object_id).toBe(request.objectId);
  }
}

describe('every answered call, exactly once', () => {
  it('records a mixed workload through two data planes: charges, retries, replays and denials', async () => {
    const label = 'audit/mixed';
    const key = await issue(label);
    const [a, b] = [await dataPlane(), await dataPlane()];
    let answered = 0;
    let denied = 0;
    for (let i = 0; i < 40; i++) {
      const dp = i % 2 === 0 ? a : b;
      const stripe = stripeThrough(dp.url, key.vaultKey);
      const idempotencyKey = `cus_${i % 10}-2999-2026-07`;
      await stripe.charges.create({ amount: 2999, currency: 'usd', source: 'tok_visa', description: label }, { idempotencyKey });
      answered++;
      if (i % 5 === 0) {
        const refused = await stripe.refunds.create({ charge: 'ch_x' }).catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(Stripe.errors.StripePermissionError);
        answered++;
        denied++;
      }
    }
    const unknown = await stripeThrough(a.url, 'kbv_not_a_real_key').charges.create({ amount: 1, currency: 'usd', description: label }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);

    const entries = await awaitRecords(label, answered);
    expect(entries).toHaveLength(answered);
    expectExactlyOnce(entries, label);
    expect(entries.filter((e) => e.decision === 'denied')).toHaveLength(denied);
    for (const e of entries.filter((x) => x.decision === 'denied')) expect(e).toMatchObject({ reason: 'endpoint_not_allowed', status: 403, key_id: key.id });
    // 10 distinct idempotency keys, each used 4 times: 10 charges, 30 replays that cost nothing.
    const allowed = entries.filter((e) => e.decision === 'allowed');
    expect(allowed.filter((e) => e.replayed)).toHaveLength(30);
    for (const e of allowed.filter((x) => x.replayed)) expect(e.usd_micros).toBe(0);
    for (const e of allowed.filter((x) => !x.replayed)) expect(e).toMatchObject({ amount: 2999, currency: 'usd', usd_micros: 29_990_000 });
    expect(new Set(allowed.map((e) => e.dataplane_id)).size).toBe(2);

    // The pre-flight check of the second seed document: the original charge, whatever came after.
    const [newest] = await auditFor('idempotency_key=cus_3-2999-2026-07');
    const original = allowed.find((e) => e.idempotency_key === 'cus_3-2999-2026-07' && !e.replayed)!;
    expect(newest!.stripe_charge_id).toBe(original.vendor_object_id);
    expect(newest!.stripe_charge_id).toMatch(/^ch_/);

    // The ledger's spend agrees with the audit sum once the data planes have reported.
    await Promise.all([a.stop(), b.stop()]);
    const { body } = await cp.http('GET', `/vault/keys/${key.id}`);
    expect(body.spent_micros).toBe(allowed.reduce((sum, e) => sum + e.usd_micros, 0));
    expect(body.spent_micros).toBe(10 * 29_990_000);
  });

  it('answers the seed document’s pre-flight check with its own Python code', async (context) => {
    if (!existsSync('/usr/bin/python3') || !(await run('/usr/bin/python3', ['-c', 'import httpx']).then(() => true, () => false))) {
      context.skip('python3-httpx is not installed');
    }
    const label = 'audit/preflight';
    const key = await issue(label);
    const dp = await dataPlane();
    const charge = await stripeThrough(dp.url, key.vaultKey).charges.create({ amount: 999, currency: 'usd', source: 'tok_visa', description: label }, { idempotencyKey: 'preflight-abc' });
    await awaitRecords(label, 1);
    const auditor = (await cp.client.createToken({ role: 3, name: 'preflight' })).token;
    const script = `
import httpx, os, sys
def check_existing_charge(idempotency_key: str) -> str | None:
    resp = httpx.get(
        "${cp.adminUrl}/audit",
        headers={"Authorization": f"Bearer {os.environ['KEYBRAKE_AUDIT_KEY']}"},
        params={"idempotency_key": idempotency_key},
        timeout=5.0,
    )
    if resp.status_code == 200:
        entries = resp.json().get("entries", [])
        if entries:
            return entries[0].get("stripe_charge_id")
    return None
print(check_existing_charge(sys.argv[1]))
print(check_existing_charge("never-used"))
`;
    const { stdout } = await run('/usr/bin/python3', ['-c', script, 'preflight-abc'], { env: { PATH: process.env['PATH'], KEYBRAKE_AUDIT_KEY: auditor } });
    expect(stdout.trim().split('\n')).toEqual([charge.id, 'None']);
  });
});

describe('durable through crashes', () => {
  it('kill -9 of a data plane mid-traffic, restarted on the same spool: nothing lost, nothing twice', async () => {
    const label = 'audit/kill';
    const key = await issue(label);
    const spoolDir = mkdtempSync(join(tmpdir(), 'keybrake-spool-kill-'));
    cleanups.push(() => rmSync(spoolDir, { recursive: true, force: true }));
    // Cut the data plane off first, so the records of the calls before the kill are only in its spool.
    const relay = await startTcpRelay(`127.0.0.1:${grpcPort}`);
    cleanups.push(() => relay.stop());
    const env = { KEYBRAKE_AUDIT_SPOOL_DIR: spoolDir, KEYBRAKE_DATAPLANE_ID: 'dp-killed' };
    const first = await dataPlane(env, relay.address);
    const stripe = stripeThrough(first.url, key.vaultKey);
    // A $50 charge leases about $100: enough for the calls made while cut off.
    await stripe.charges.create({ amount: 5000, currency: 'usd', source: 'tok_visa', description: label });
    relay.cut();
    let answered = 1;
    for (let i = 0; i < 15; i++) {
      await stripe.charges.create({ amount: 100 + i, currency: 'usd', source: 'tok_visa', description: label });
      answered++;
    }
    process.kill(first.pid, 'SIGKILL');
    await first.process.exited();
    relay.heal();

    const second = await dataPlane(env, relay.address);
    const more = stripeThrough(second.url, key.vaultKey);
    for (let i = 0; i < 5; i++) {
      await more.charges.create({ amount: 200 + i, currency: 'usd', source: 'tok_visa', description: label });
      answered++;
    }
    const entries = await awaitRecords(label, answered);
    expect(entries).toHaveLength(answered);
    expectExactlyOnce(entries, label);
    expect(new Set(entries.map((e) => e.id.split(':')[1])).size).toBe(2); // two incarnations
  });

  it('a control-plane restart mid-traffic: nothing lost, nothing twice', async () => {
    const label = 'audit/cp-restart';
    const key = await issue(label);
    const dp = await dataPlane();
    const stripe = stripeThrough(dp.url, key.vaultKey, { maxNetworkRetries: 0 });
    let answered = 0;
    const traffic = (async () => {
      for (let i = 0; i < 60; i++) {
        await stripe.charges.create({ amount: 100 + i, currency: 'usd', source: 'tok_visa', description: label }).catch(() => undefined);
        answered++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    await cp.stop();
    cp = await startTestControlPlane(stack, { KEYBRAKE_GRPC_ADDR: `127.0.0.1:${grpcPort}`, KEYBRAKE_LEASE_TTL: '5s' });
    await traffic;
    const entries = await awaitRecords(label, answered);
    expect(entries).toHaveLength(answered);
    expectExactlyOnce(entries, label);
    const gaps = await cp.http('GET', '/healthz');
    expect(gaps.status).toBe(200);
  });
});

describe('when PostgreSQL refuses records', () => {
  it('the data plane keeps serving, and every record lands once PostgreSQL takes them again', async () => {
    const label = 'audit/pg-down';
    const key = await issue(label);
    const dp = await dataPlane();
    const stripe = stripeThrough(dp.url, key.vaultKey);
    await stripe.charges.create({ amount: 5000, currency: 'usd', source: 'tok_visa', description: label });
    await awaitRecords(label, 1);
    const db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
    try {
      await db.query('ALTER TABLE audit_records RENAME TO audit_records_away');
      let answered = 1;
      for (let i = 0; i < 12; i++) {
        const charge = await stripe.charges.create({ amount: 100 + i, currency: 'usd', source: 'tok_visa', description: label });
        expect(charge.id).toMatch(/^ch_/);
        answered++;
        await new Promise((r) => setTimeout(r, 500)); // 6 s in all: longer than the 5 s lease TTL
      }
      await db.query('ALTER TABLE audit_records_away RENAME TO audit_records');
      const entries = await awaitRecords(label, answered, 20_000);
      expect(entries).toHaveLength(answered);
      expectExactlyOnce(entries, label);
      const gaps = await db.query('SELECT count(*)::int AS n FROM audit_gaps');
      expect(gaps.rows[0].n).toBe(0);
    } finally {
      await db.query('ALTER TABLE IF EXISTS audit_records_away RENAME TO audit_records').catch(() => undefined);
      await db.end();
    }
  });
});

describe('queries', () => {
  it('filters by key, vendor, object id and time, newest first, and pages with a cursor', async () => {
    const label = 'audit/query';
    const key = await issue(label);
    const dp = await dataPlane();
    const stripe = stripeThrough(dp.url, key.vaultKey);
    const ids: string[] = [];
    const before = new Date().toISOString();
    for (let i = 0; i < 7; i++) ids.push((await stripe.charges.create({ amount: 100, currency: 'usd', source: 'tok_visa', description: label })).id);
    await awaitRecords(label, 7);
    const byKey = await cp.http('GET', `/audit?key_id=${key.id}&limit=3`);
    expect(byKey.body.entries).toHaveLength(3);
    expect(byKey.body.next_cursor).not.toBeNull();
    const all = await auditFor(`key_id=${key.id}`);
    expect(all.map((e) => e.vendor_object_id)).toEqual([...ids].reverse());
    expect((await auditFor(`vendor_object_id=${ids[2]}`)).map((e) => e.vendor_object_id)).toEqual([ids[2]]);
    expect(await auditFor(`label=${label}&vendor=twilio`)).toHaveLength(0);
    expect(await auditFor(`label=${label}&decision=denied`)).toHaveLength(0);
    expect(await auditFor(`label=${label}&decision=allowed`)).toHaveLength(7);
    expect(await auditFor(`label=${label}&since=${encodeURIComponent(before)}`)).toHaveLength(7);
    expect(await auditFor(`label=${label}&until=${encodeURIComponent(before)}`)).toHaveLength(0);
    const bad = await cp.http('GET', '/audit?since=yesterday');
    expect(bad.status).toBe(422);
    expect(bad.body.error.message).toMatch(/^since: /);
    // The CLI: a table, JSONL and CSV exports of the same records.
    const cli = (args: string[]) => run(process.execPath, [KEYBRAKE_BIN, 'audit', ...args, '--addr', `127.0.0.1:${grpcPort}`, '--token', stack.adminToken], { env: { PATH: process.env['PATH'] } });
    const table = await cli(['query', '--label', label]);
    expect(table.stdout.split('\n')[0]).toMatch(/^TS\s+DECISION\s+STATUS/);
    const jsonl = (await cli(['export', '--key-id', key.id])).stdout.trim().split('\n');
    expect(jsonl.map((line) => (JSON.parse(line) as Entry).vendor_object_id).sort()).toEqual([...ids].sort());
    const csv = (await cli(['export', '--label', label, '--format', 'csv'])).stdout.trim().split('\n');
    expect(csv[0]).toMatch(/^id,ts,key_id,label,vendor,method,path,status,decision/);
    expect(csv).toHaveLength(8);

    // Nothing in a record is a secret.
    expect(JSON.stringify(all)).not.toContain(SECRET);
    expect(JSON.stringify(all)).not.toContain(key.vaultKey);
    expect(headerValue(sim.wiretap.last()!, 'authorization')).toBe(`Bearer ${SECRET}`);
  });
});

describe('paging', () => {
  it('a cursor is exact to the microsecond: rows within one millisecond are all returned', async () => {
    const label = 'audit/same-millisecond';
    const db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
    try {
      await db.query(
        `INSERT INTO audit_records (ts, dataplane_id, incarnation, seq, key_id, label, vendor, method, path, status, decision)
         SELECT date_trunc('milliseconds', now()) + (7 - g) * interval '1 microsecond', 'dp-page-' || g, 'pageinc', 1, 'key_page', $1, 'stripe', 'POST', '/v1/charges', 200, 'allowed'
         FROM generate_series(1, 6) AS g`,
        [label],
      );
    } finally {
      await db.end();
    }
    const seen: string[] = [];
    let cursor = '';
    for (let page = 0; page < 10; page++) {
      const response = await cp.http('GET', `/audit?label=${encodeURIComponent(label)}&limit=1${cursor === '' ? '' : `&cursor=${cursor}`}`);
      seen.push(...(response.body.entries as Entry[]).map((e) => e.id));
      cursor = response.body.next_cursor ?? '';
      if (cursor === '') break;
    }
    expect(seen).toHaveLength(6);
    expect(new Set(seen).size).toBe(6);
  });
});

describe('audit tail', () => {
  it('prints every record of a busy second, in time order, not only the first page', async () => {
    const label = 'audit/tail';
    const db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
    try {
      // 2,500 records within one second: more than one page (1,000) of the API.
      await db.query(
        `INSERT INTO audit_records (ts, dataplane_id, incarnation, seq, key_id, label, vendor, method, path, status, decision)
         SELECT now() - interval '2 seconds' + g * interval '400 microseconds', 'dp-tail', 'tailinc', g, 'key_tail', $1, 'stripe', 'POST', '/v1/charges', 200, 'allowed'
         FROM generate_series(1, 2500) AS g`,
        [label],
      );
    } finally {
      await db.end();
    }
    const tail = spawnKeybrake(['audit', 'tail', '--label', label, '--json', '--addr', `127.0.0.1:${grpcPort}`, '--token', stack.adminToken], {});
    try {
      for (let i = 0; i < 400 && tail.output().split('\n').filter((l) => l.startsWith('{')).length < 2500; i++) await new Promise((r) => setTimeout(r, 50));
      // One more poll's worth: nothing is printed twice.
      await new Promise((r) => setTimeout(r, 1200));
      const lines = tail.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Entry & { ts: string });
      expect(lines).toHaveLength(2500);
      expect(new Set(lines.map((e) => e.id)).size).toBe(2500);
      const times = lines.map((e) => Date.parse(e.ts));
      expect(times).toEqual([...times].sort((a, b) => a - b));
    } finally {
      tail.child.kill('SIGKILL');
      await tail.exited();
    }
  });
});
