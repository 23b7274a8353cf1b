/**
 * Keys by the thousand with a small page (KEYBRAKE_ETCD_PAGE_SIZE=50) and an etcd that refuses
 * any write above 32 KiB (--max-request-bytes): every walk crosses many page boundaries and the
 * keyspace is many times what one request may carry. Proven here: a control plane starts (and
 * builds the label index of keys written before it existed), a second replica starts; a label
 * lists exactly its keys, newest first, across pages, with other labels present; a label prefix
 * lists by label then newest first; vendor and status filters page with bounded work; the
 * janitor forgets expired keys and their accounts across pages; the index backfill is idempotent
 * and safe when two replicas run it at once. Every range read of a prefix the control plane
 * makes is recorded: none reads more than a page.
 *
 * This file runs an etcd process of its own (the flag is global to an etcd), on free ports in a
 * temporary directory, stopped at the end.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Etcd3, KVClient, type IRangeRequest, type ITxnRequest } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../../core/logger.js';
import { randomBase62 } from '../../core/secret-format.js';
import { EtcdBudgetLedger } from '../../control-plane/budget-ledger.js';
import { emptyAccount } from '../../control-plane/budget-account.js';
import { walkPrefix } from '../../control-plane/etcd-pages.js';
import { EtcdStore } from '../../control-plane/etcd-store.js';
import { Janitor } from '../../control-plane/janitor.js';
import { LABEL_INDEX_MARKER } from '../../control-plane/key-listing.js';
import type { KeyRecord } from '../../control-plane/key-record.js';
import { findEtcdBinary, startEtcd, type EtcdProcess } from '../../dev/etcd-process.js';
import { KeyStatus, type KeySpec, type VaultKey } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';

const PAGE = 50;
const MAX_REQUEST_BYTES = 32 * 1024;

/** Every range request of this process (the control planes run in it): what it asked, what came back. */
interface RangeSeen {
  readonly key: string;
  readonly prefixRead: boolean;
  readonly limit: number;
  readonly returned: number;
  readonly inTxn: boolean;
}
const ranges: RangeSeen[] = [];
const originalRange = KVClient.prototype.range;
const originalTxn = KVClient.prototype.txn;

function recordRanges(): void {
  const describeRange = (req: IRangeRequest, returned: number, inTxn: boolean): RangeSeen => ({
    key: Buffer.from(req.key ?? '').toString('utf8'),
    prefixRead: req.range_end !== undefined && req.range_end !== null && Buffer.from(req.range_end).length > 0,
    limit: Number(req.limit ?? 0),
    returned,
    inTxn,
  });
  KVClient.prototype.range = async function (this: KVClient, req, options) {
    const response = await originalRange.call(this, req, options);
    ranges.push(describeRange(req, response.kvs.length, false));
    return response;
  };
  KVClient.prototype.txn = async function (this: KVClient, req: ITxnRequest, options) {
    const response = await originalTxn.call(this, req, options);
    (req.success ?? []).forEach((op, i) => {
      if (op.request_range) ranges.push(describeRange(op.request_range, response.responses[i]?.response_range?.kvs.length ?? 0, true));
    });
    return response;
  };
}

let dir: string;
let etcdProcess: EtcdProcess;
let etcd: Etcd3;
let stack: TestStack;
let a: TestControlPlane;
let b: TestControlPlane | undefined;
/** A store and a ledger of the test's own, on the same etcd and page size. */
let store: EtcdStore;
let ledger: EtcdBudgetLedger;

const NOW = Date.now();

function spec(label: string, vendor = 'stripe', expiresInSeconds = 3600): KeySpec {
  const endpoint = vendor === 'stripe' ? 'POST /v1/charges' : vendor === 'twilio' ? 'POST /2010-04-01/Accounts/*/Messages.json' : 'POST /emails';
  return { vendor, label, allowedEndpoints: [endpoint], dailyCapMicros: 5_000_000, budgetMicros: 20_000_000, expiresInSeconds, perCallEstimateMicros: 0 };
}

/** A key as an earlier version wrote it: a random id, and no label index entry. */
function legacyRecord(label: string): KeyRecord {
  return {
    id: `vk_${randomBase62(20)}`, keyHash: `legacy-${randomBase62(32)}`, vendor: 'stripe', label, allowedEndpoints: ['POST /v1/charges'],
    dailyCapMicros: 1_000_000, budgetMicros: 0, createdAtMs: NOW - 86_400_000, expiresAtMs: NOW + 86_400_000, revokedAtMs: null,
  };
}

/** Writes records and hash entries only, 20 keys a transaction (well under the request limit). */
async function writeLegacy(records: readonly KeyRecord[]): Promise<void> {
  const ns = etcd.namespace(stack.etcdPrefix);
  for (let i = 0; i < records.length; i += 20) {
    const chunk = records.slice(i, i + 20);
    await ns.if('keys/', 'Version', '>', -1).then(...chunk.flatMap((r) => [ns.put(`keys/${r.id}`).value(JSON.stringify(r)), ns.put(`key-hashes/${r.keyHash}`).value(r.id)])).commit();
  }
}

/** Every key under a prefix of the stack's namespace, a page at a time (the test reads like the product). */
async function keysUnder(prefix: string): Promise<{ key: string; bytes: number }[]> {
  const found: { key: string; bytes: number }[] = [];
  for await (const page of walkPrefix(etcd.namespace(stack.etcdPrefix), prefix, { pageSize: PAGE })) {
    for (const kv of page.kvs) found.push({ key: kv.key.toString('utf8'), bytes: kv.key.length + kv.value.length });
  }
  return found;
}

/** Every page of a listing over HTTP: the keys in order, and how many calls it took. */
async function listAll(cp: TestControlPlane, filters: Record<string, string>, limit: number): Promise<{ keys: { id: string; label: string; vendor: string; status: string; created_at: string }[]; calls: number; pageSizes: number[] }> {
  const keys = [];
  const pageSizes: number[] = [];
  let cursor: string | null = null;
  let calls = 0;
  do {
    const query = new URLSearchParams({ ...filters, limit: String(limit), ...(cursor === null ? {} : { cursor }) });
    const response = await cp.http('GET', `/vault/keys?${query}`);
    expect(response.status).toBe(200);
    keys.push(...response.body.keys);
    pageSizes.push(response.body.keys.length);
    cursor = response.body.next_cursor;
    calls++;
    expect(calls).toBeLessThan(10_000);
  } while (cursor !== null);
  return { keys, calls, pageSizes };
}

/** Every page of a listing over gRPC. */
async function listAllGrpc(cp: TestControlPlane, label: string, pageSize: number): Promise<VaultKey[]> {
  const keys: VaultKey[] = [];
  let pageToken = '';
  do {
    const response = await cp.client.listKeys({ label, labelPrefix: '', vendor: '', status: 0, pageSize, pageToken });
    keys.push(...response.keys);
    pageToken = response.nextPageToken;
  } while (pageToken !== '');
  return keys;
}

async function issue(cp: TestControlPlane, specs: KeySpec[]): Promise<VaultKey[]> {
  const keys: VaultKey[] = [];
  for (let i = 0; i < specs.length; i += 1000) keys.push(...(await cp.client.issueKeys({ specs: specs.slice(i, i + 1000) })).issued.map((k) => k.key!));
  return keys;
}

const newestFirst = (keys: readonly { created_at: string }[]) => keys.every((k, i) => i === 0 || Date.parse(keys[i - 1]!.created_at) >= Date.parse(k.created_at));

const legacy = Array.from({ length: 120 }, (_, i) => legacyRecord(i % 6 === 0 ? '' : 'legacy/run'));
/** fleet/run-1, issued in three batches (three creation times). */
const run1: VaultKey[] = [];

beforeAll(async () => {
  const binary = findEtcdBinary(process.env);
  if (binary === null) throw new Error('etcd not found: apt-get install etcd-server, or set KEYBRAKE_ETCD_BIN');
  dir = await mkdtemp(join(tmpdir(), 'keybrake-fleet-'));
  etcdProcess = await startEtcd({ binary, dataDir: join(dir, 'etcd'), unsafeNoFsync: true, extraArgs: ['--max-request-bytes', String(MAX_REQUEST_BYTES)] });
  etcd = new Etcd3({ hosts: etcdProcess.endpoint });
  stack = await createTestStack();
  store = new EtcdStore({ endpoints: [etcdProcess.endpoint], prefix: stack.etcdPrefix, pageSize: PAGE });
  ledger = new EtcdBudgetLedger([etcdProcess.endpoint], stack.etcdPrefix, { pageSize: PAGE });
  await writeLegacy(legacy);
  recordRanges();
  a = await startTestControlPlane(stack, { KEYBRAKE_ETCD_ENDPOINTS: etcdProcess.endpoint, KEYBRAKE_ETCD_PAGE_SIZE: String(PAGE) });
});

afterAll(async () => {
  KVClient.prototype.range = originalRange;
  KVClient.prototype.txn = originalTxn;
  await Promise.allSettled([a?.stop(), b?.stop()]);
  store?.close();
  ledger?.close();
  etcd?.close();
  // The etcd process this file started, by its PID.
  if (etcdProcess !== undefined) {
    process.kill(etcdProcess.pid, 'SIGTERM');
    await etcdProcess.stop();
  }
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('a fleet of keys, a page at a time', () => {
  it('starts with more keys than a page, building the label index of keys written before it', async () => {
    // The etcd of this file takes no write above MAX_REQUEST_BYTES.
    await expect(etcd.namespace(stack.etcdPrefix).put('too-large').value('x'.repeat(MAX_REQUEST_BYTES + 1)).exec()).rejects.toThrow(/too large/);
    const legacyLabelled = legacy.filter((r) => r.label !== '');
    const listed = await listAll(a, { label: 'legacy/run' }, 1000);
    expect(listed.keys.map((k) => k.id).sort()).toEqual(legacyLabelled.map((r) => r.id).sort());
    // Unlabelled keys get no entry; the marker says the build is done.
    expect((await keysUnder('key-labels/')).length).toBe(legacyLabelled.length);
    expect(JSON.parse((await etcd.namespace(stack.etcdPrefix).get(LABEL_INDEX_MARKER).string())!)).toMatchObject({ entries: legacyLabelled.length });
  });

  it('issues a fleet across many transactions under the request limit; a second replica starts', async () => {
    for (let batch = 0; batch < 3; batch++) {
      run1.push(...(await issue(a, Array.from({ length: 100 }, () => spec('fleet/run-1')))));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // run-2: 150 keys, 5 of them twilio, scattered.
    await issue(a, Array.from({ length: 150 }, (_, i) => spec('fleet/run-2', i % 30 === 7 ? 'twilio' : 'stripe')));
    await issue(a, Array.from({ length: 60 }, () => spec('fleet/run-10', 'resend')));
    await issue(a, Array.from({ length: 100 }, () => spec('other')));
    await issue(a, Array.from({ length: 60 }, () => spec('')));
    const keys = await keysUnder('keys/');
    expect(keys.length).toBe(120 + 300 + 150 + 60 + 100 + 60);
    // The keyspace is many times what etcd takes in one request.
    expect(keys.reduce((total, k) => total + k.bytes, 0)).toBeGreaterThan(4 * MAX_REQUEST_BYTES);

    b = await startTestControlPlane(stack, { KEYBRAKE_ETCD_ENDPOINTS: etcdProcess.endpoint, KEYBRAKE_ETCD_PAGE_SIZE: String(PAGE) });
    expect((await b.http('GET', '/readyz')).status).toBe(200);
    expect((await listAll(b, { label: 'fleet/run-10' }, 1000)).keys).toHaveLength(60);
  });

  it("lists one label's keys exactly, newest first, across pages, with other labels present", async () => {
    const expected = run1.map((k) => k.id).sort();
    // 120 a call: each call reads three etcd pages of the index.
    const http = await listAll(b!, { label: 'fleet/run-1' }, 120);
    expect(http.calls).toBe(3);
    expect(http.keys.map((k) => k.id).sort()).toEqual(expected);
    expect(new Set(http.keys.map((k) => k.id)).size).toBe(300);
    expect(newestFirst(http.keys)).toBe(true);
    expect(http.keys.every((k) => k.label === 'fleet/run-1')).toBe(true);
    // The three batches, newest first.
    expect(new Set(http.keys.slice(0, 100).map((k) => k.created_at)).size).toBe(1);
    expect(Date.parse(http.keys[0]!.created_at)).toBeGreaterThan(Date.parse(http.keys[299]!.created_at));
    // Another page size, another replica, gRPC: the same sequence.
    const grpc = await listAllGrpc(a, 'fleet/run-1', 7);
    expect(grpc.map((k) => k.id)).toEqual(http.keys.map((k) => k.id));
  });

  it('lists a label prefix by label, then newest first', async () => {
    const listed = await listAll(a, { label_prefix: 'fleet/run-1' }, 45);
    expect(listed.keys).toHaveLength(360);
    expect(new Set(listed.keys.map((k) => k.id)).size).toBe(360);
    const labels = listed.keys.map((k) => k.label);
    expect(labels.slice(0, 300).every((l) => l === 'fleet/run-1')).toBe(true);
    expect(labels.slice(300).every((l) => l === 'fleet/run-10')).toBe(true);
    expect(newestFirst(listed.keys.slice(0, 300)) && newestFirst(listed.keys.slice(300))).toBe(true);
    const fleet = await listAll(a, { label_prefix: 'fleet/' }, 1000);
    expect(fleet.keys).toHaveLength(510);
    expect(fleet.keys.map((k) => k.label)).toEqual([...fleet.keys.map((k) => k.label)].sort());
    // A label and a prefix it does not start with: nothing.
    expect((await a.http('GET', '/vault/keys?label=fleet/run-1&label_prefix=other')).body).toEqual({ keys: [], next_cursor: null });
  });

  it('filters by vendor and status while walking, looking at no more than 10 × limit keys a call', async () => {
    const twilio = await listAll(a, { label: 'fleet/run-2', vendor: 'twilio' }, 2);
    expect(twilio.keys).toHaveLength(5);
    expect(twilio.keys.every((k) => k.vendor === 'twilio')).toBe(true);
    // 150 keys, at most 20 looked at per call: pages shorter than the limit that still carry a cursor.
    expect(twilio.calls).toBeGreaterThanOrEqual(Math.ceil(150 / 20));
    expect(twilio.pageSizes.some((n) => n === 0)).toBe(true);

    const revoked = run1.slice(140, 143).map((k) => k.id);
    for (const id of revoked) await b!.client.revokeKey({ id });
    const listed = await listAll(a, { label: 'fleet/run-1', status: 'revoked' }, 1000);
    expect(listed.keys.map((k) => k.id).sort()).toEqual([...revoked].sort());
    const active = await a.client.listKeys({ label: 'fleet/run-1', labelPrefix: '', vendor: '', status: KeyStatus.KEY_STATUS_ACTIVE, pageSize: 1000, pageToken: '' });
    expect(active.keys).toHaveLength(297);
  });

  it('lists every key, newest first by id, without a filter', async () => {
    const listed = await listAll(a, {}, 1000);
    expect(listed.keys).toHaveLength(790);
    expect(new Set(listed.keys.map((k) => k.id)).size).toBe(790);
    // Keys of this version come newest first; ids of earlier versions sort where they fall.
    const legacyIds = new Set(legacy.map((r) => r.id));
    expect(newestFirst(listed.keys.filter((k) => !legacyIds.has(k.id)))).toBe(true);
    const firstPage = await a.http('GET', '/vault/keys?limit=3');
    expect(firstPage.body.keys).toHaveLength(3);
    expect(firstPage.body.next_cursor).not.toBeNull();
    // A cursor of one listing is refused by another.
    const ofLabel = await a.http('GET', '/vault/keys?label=fleet/run-1&limit=1');
    const mixed = await a.http('GET', `/vault/keys?label=other&cursor=${ofLabel.body.next_cursor}`);
    expect(mixed.status).toBe(422);
    expect(mixed.body.error.message).toMatch(/^cursor: belongs to a listing with other label filters/);
  });

  it('forgets expired keys and their accounts across pages, never a leased one', async () => {
    const expiring = await issue(a, Array.from({ length: 130 }, () => spec('fleet/expiring', 'stripe', 1)));
    const live = run1[0]!;
    const leases = { 'dp-x/inc/0': { holder: 'dp-x', grantedMicros: 1_000_000, reportedMicros: 0, expiresAtMs: Date.now() + 3_600_000, lastSeq: 1 } };
    const idle = () => ({ ...emptyAccount(20_000_000), settledMicros: 1 });
    for (const [i, key] of expiring.entries()) {
      await ledger.update(key.id, 'life', () => emptyAccount(20_000_000), (account) => (i === 0 ? { ...account, leases } : { ...account, settledMicros: 1 }));
      await ledger.update(key.id, 'day:2026-01-01', () => emptyAccount(5_000_000), (account) => ({ ...account, settledMicros: 1 }));
    }
    for (let i = 0; i < 70; i++) await ledger.update(`vk_orphan${String(i).padStart(12, '0')}`, 'life', idle, (account) => ({ ...account, settledMicros: 2 }));
    await ledger.update('vk_orphanleased00000000', 'life', idle, (account) => ({ ...account, leases }));
    await ledger.update(live.id, 'life', idle, (account) => ({ ...account, settledMicros: 3 }));
    await ledger.update(live.id, 'day:2020-01-01', idle, (account) => ({ ...account, settledMicros: 3 }));
    const before = (await keysUnder('keys/')).length;
    await new Promise((resolve) => setTimeout(resolve, 1100));

    const janitor = new Janitor({ store, ledger, retentionMs: 1, logger: silentLogger });
    const result = await janitor.runOnce();
    // The 129 expired keys without a lease, and the three of fleet/run-1 revoked above.
    expect(result.keys).toBe(129 + 3);
    // 129 keys × 2 accounts, the leased key's old day, 70 orphans, the live key's old day.
    expect(result.accounts).toBe(129 * 2 + 1 + 70 + 1);

    const kept = expiring[0]!.id;
    expect((await keysUnder('keys/')).length).toBe(before - 132);
    expect((await listAll(a, { label: 'fleet/run-1' }, 1000)).keys).toHaveLength(297);
    const left = await listAll(a, { label: 'fleet/expiring' }, 1000);
    expect(left.keys.map((k) => k.id)).toEqual([kept]);
    const ledgerLeft = (await keysUnder('ledger/')).map((k) => k.key.slice('ledger/'.length));
    expect(ledgerLeft.sort()).toEqual([`${kept}/life`, `${live.id}/life`, 'vk_orphanleased00000000/life'].sort());
    // Their hash and label entries went with them.
    const deleted = expiring.slice(1).map((k) => k.id);
    const labelEntries = (await keysUnder('key-labels/fleet/expiring')).map((k) => k.key);
    expect(labelEntries.some((k) => deleted.some((id) => k.endsWith(id)))).toBe(false);
    expect(await store.getKeys(deleted)).toEqual(new Map());
    // A second run finds nothing more to do.
    expect(await janitor.runOnce()).toEqual({ keys: 0, accounts: 0 });
  });

  it('builds missing index entries once, safely when two replicas do it at once', async () => {
    const written = Array.from({ length: 130 }, (_, i) => legacyRecord(i % 10 === 0 ? '' : 'backfill/run'));
    await writeLegacy(written);
    expect((await listAll(a, { label: 'backfill/run' }, 1000)).keys).toHaveLength(0);
    await etcd.namespace(stack.etcdPrefix).delete().key(LABEL_INDEX_MARKER);
    const other = new EtcdStore({ endpoints: [etcdProcess.endpoint], prefix: stack.etcdPrefix, pageSize: PAGE });
    try {
      const [first, second] = await Promise.all([store.buildLabelIndex(), other.buildLabelIndex()]);
      // Both walked (neither saw a marker); together they wrote each missing entry at least once, and no other.
      expect(first).not.toBeNull();
      expect(second).not.toBeNull();
      expect(first! + second!).toBeGreaterThanOrEqual(117);
      expect(first! + second!).toBeLessThanOrEqual(2 * 117);
      expect(await store.buildLabelIndex()).toBeNull();
    } finally {
      other.close();
    }
    const labelled = written.filter((r) => r.label !== '').map((r) => r.id).sort();
    expect(labelled).toHaveLength(117);
    expect((await listAll(a, { label: 'backfill/run' }, 40)).keys.map((k) => k.id).sort()).toEqual(labelled);
    // Entries for every labelled key there is, and for nothing else.
    const entries = (await keysUnder('key-labels/')).length;
    // Unlabelled: 20 legacy, 60 issued, 13 written just now.
    const labelledKeys = (await keysUnder('keys/')).length - 20 - 60 - 13;
    expect(entries).toBe(labelledKeys);
  });

  it('never read a prefix whole: every range read of a prefix was at most a page', () => {
    const prefixReads = ranges.filter((r) => r.prefixRead);
    expect(prefixReads.length).toBeGreaterThan(50);
    const unbounded = prefixReads.filter((r) => !r.inTxn && (r.limit < 1 || r.limit > PAGE));
    expect(unbounded).toEqual([]);
    expect(prefixReads.filter((r) => !r.inTxn).every((r) => r.returned <= PAGE)).toBe(true);
    // In a transaction, only one key's budget accounts (a few) are read by prefix, bounded too.
    const inTxn = prefixReads.filter((r) => r.inTxn);
    expect(inTxn.every((r) => /\/ledger\/vk_[^/]+\/$/.test(r.key) && r.limit > 0 && r.limit <= 1000)).toBe(true);
  });
});
