/**
 * The control plane's etcd watches survive etcd compacting their history away. The control plane
 * compacts etcd itself (KEYBRAKE_ETCD_COMPACTION_INTERVAL); a quiet watch's resume revision is as
 * old as its last event, and when its stream reconnects (etcd restarted) etcd cancels it, with an
 * empty reason, because that revision is gone. The policy watch must start again from a fresh read
 * and have every data plane look up again the keys it holds; the ledger watch must start again too.
 *
 * Real processes: an etcd of this file's own (compaction is global to an etcd, and the suite's is
 * shared), restarted on the same data dir and client port; the suite's PostgreSQL; a control plane
 * compacting every second (in this process, for its log); one data-plane process in front of the
 * Stripe simulator. After the restart: a key revoked is refused by the data plane within seconds
 * while the other key works; a key revoked before its first use is refused on first use; spend
 * still counts, and the ledger watch still tells lease holders to give back (a reclaim).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { credentials, Metadata, type ClientDuplexStream } from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Logger } from '../../core/logger.js';
import { createOperatorClient, type OperatorClient } from '../../cli/operator-client.js';
import type { BudgetAccount } from '../../control-plane/budget-account.js';
import { compileControlPlaneConfig } from '../../control-plane/config.js';
import { startControlPlane, type RunningControlPlane } from '../../control-plane/control-plane.js';
import { COMPACTION_LAST_KEY } from '../../control-plane/etcd-compaction.js';
import { findEtcdBinary, startEtcd, type EtcdProcess } from '../../dev/etcd-process.js';
import { DataPlaneServiceClient, type ConnectRequest, type ConnectResponse } from '../../gen/keybrake/v1/dataplane.js';
import type { KeySpec } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, type TestStack } from '../support/control-plane.js';
import { startTestDataPlane, type TestDataPlane } from '../support/data-plane.js';
import { stripeThrough } from '../support/sdk-clients.js';
import { startAllSimulators, type AllSimulators } from '../simulators/index.js';

/** Long: no lease extension or idle return writes the ledger while its watch must stay quiet. */
const LEASE_TTL = '120s';
const BUDGET_MICROS = 10_000_000;

interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly fields: Record<string, unknown>;
}

function recordingLogger(lines: LogLine[]): Logger {
  const log = (level: string) => (fields: object | string, message?: string) => {
    if (typeof fields === 'string') lines.push({ level, message: fields, fields: {} });
    else lines.push({ level, message: message ?? '', fields: fields as Record<string, unknown> });
  };
  return { debug: () => {}, info: log('info'), warn: log('warn'), error: log('error') };
}

let dir: string | undefined;
let binary: string;
let etcdProcess: EtcdProcess | undefined;
let etcdPort: number;
/** This file's own client of its etcd (no prefix): revisions, compaction, the ledger as stored. */
let etcd: Etcd3 | undefined;
let stack: TestStack;
let sims: AllSimulators | undefined;

/** A control plane (in this process, against this file's etcd) and one data-plane process in front of the Stripe simulator. */
interface Planes {
  readonly prefix: string;
  readonly lines: LogLine[];
  readonly running: RunningControlPlane;
  readonly client: OperatorClient;
  readonly adminUrl: string;
  readonly grpcAddress: string;
  readonly dp: TestDataPlane;
  stop(): Promise<void>;
}

async function startPlanes(overrides: Record<string, string>): Promise<Planes> {
  const prefix = `/kbtest-watch-${randomBytes(4).toString('hex')}/`;
  const lines: LogLine[] = [];
  const config = compileControlPlaneConfig(stack.env({ KEYBRAKE_ETCD_ENDPOINTS: etcdProcess!.endpoint, KEYBRAKE_ETCD_PREFIX: prefix, KEYBRAKE_LEASE_TTL: LEASE_TTL, ...overrides }));
  const running = await startControlPlane(config, recordingLogger(lines));
  const grpcAddress = `127.0.0.1:${running.grpcPort}`;
  const client = createOperatorClient(grpcAddress, stack.adminToken);
  let dp: TestDataPlane;
  try {
    await client.setVendorCredential({ vendor: 'stripe', secret: sims!.secrets.stripeSecretKey, accountSid: '' });
    dp = await startTestDataPlane(stack, grpcAddress, { stripe: sims!.stripe.url }, { KEYBRAKE_LEASE_TTL: LEASE_TTL });
  } catch (error) {
    client.close();
    await running.stop();
    throw error;
  }
  return {
    prefix, lines, running, client, grpcAddress, dp,
    adminUrl: `http://127.0.0.1:${running.adminPort}`,
    async stop() {
      // The data-plane process by its PID, then the control plane.
      await dp.stop();
      client.close();
      await running.stop();
    },
  };
}

const spec = (label: string): KeySpec => ({
  vendor: 'stripe', label, allowedEndpoints: ['POST /v1/customers', 'POST /v1/charges'], dailyCapMicros: 0, budgetMicros: BUDGET_MICROS, expiresInSeconds: 3600, perCallEstimateMicros: 0,
});

async function issue(planes: Planes, label: string): Promise<{ id: string; vaultKey: string }> {
  const { issued } = await planes.client.issueKey({ spec: spec(label) });
  return { id: issued!.key!.id, vaultKey: issued!.vaultKey };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A free call through the data plane: 'ok', or the status and Keybrake error code it was refused with. */
async function customer(planes: Planes, vaultKey: string): Promise<string> {
  return stripeThrough(planes.dp.url, vaultKey).customers.create({}).then(
    () => 'ok',
    (error: unknown) => (error instanceof Stripe.errors.StripeError ? `${error.statusCode ?? 0} ${error.code ?? ''}` : String(error)),
  );
}

/** Polls a key that was just revoked until the data plane stops serving it; returns how it answered and when. */
async function refusal(planes: Planes, vaultKey: string, timeoutMs: number): Promise<{ answer: string; afterMs: number }> {
  const started = Date.now();
  const answer = await waitFor('the data plane to refuse the revoked key', async () => {
    const result = await customer(planes, vaultKey);
    return result === 'ok' ? undefined : result;
  }, timeoutMs);
  return { answer, afterMs: Date.now() - started };
}

async function charge(planes: Planes, vaultKey: string, cents: number): Promise<void> {
  const charged = await stripeThrough(planes.dp.url, vaultKey).charges.create({ amount: cents, currency: 'usd', source: 'tok_visa' });
  expect(charged.id).toMatch(/^ch_/);
}

async function keysHeld(planes: Planes): Promise<number> {
  return ((await (await fetch(`${planes.dp.url}/readyz`)).json()) as { keys: number }).keys;
}

/** The key's spend once it reaches `expected` (data planes report every few seconds), else the last seen. */
async function spentMicros(planes: Planes, id: string, expected: number): Promise<number> {
  let last = -1;
  await waitFor(`spent_micros ${expected}`, async () => {
    const response = await fetch(`${planes.adminUrl}/vault/keys/${id}`, { headers: { authorization: `Bearer ${stack.adminToken}` } });
    last = ((await response.json()) as { spent_micros: number }).spent_micros;
    return last === expected ? true : undefined;
  }, 20_000, 200).catch(() => {});
  return last;
}

async function controlPlaneReady(planes: Planes): Promise<void> {
  // Its etcd clients may wait out a circuit breaker after etcd came back.
  await waitFor('the control plane to be ready', async () => ((await fetch(`${planes.adminUrl}/readyz`).then((r) => r.status, () => 0)) === 200 ? true : undefined), 30_000, 200);
}

async function currentRevision(): Promise<number> {
  return Number((await etcd!.get('watch-recovery/probe').exec()).header.revision);
}

async function compactedRevision(): Promise<number> {
  const text = await etcd!.get(COMPACTION_LAST_KEY).string();
  return text === null ? 0 : (JSON.parse(text) as { revision: number }).revision;
}

/** The newest mod_revision under a prefix: the last event a watch of it can have seen. */
async function newestWrite(prefix: string): Promise<number> {
  const { kvs } = await etcd!.getAll().prefix(prefix).exec();
  return Math.max(0, ...kvs.map((kv) => Number(kv.mod_revision)));
}

async function restartEtcd(): Promise<void> {
  await etcdProcess!.stop();
  etcdProcess = await startEtcd({ binary, dataDir: join(dir!, 'etcd'), clientPort: etcdPort, unsafeNoFsync: true });
}

async function ledgerAccount(planes: Planes, keyId: string): Promise<BudgetAccount | null> {
  const text = await etcd!.get(`${planes.prefix}ledger/${keyId}/life`).string();
  return text === null ? null : (JSON.parse(text) as BudgetAccount);
}

/** Another lease holder on the data-plane stream (as a second data plane would be), to make the control plane send reclaims. */
interface FakeHolder {
  readonly messages: ConnectResponse[];
  send(request: ConnectRequest): void;
  close(): void;
}

function connectFakeHolder(planes: Planes, dataplaneId: string, incarnation: string): FakeHolder {
  const grpc = new DataPlaneServiceClient(planes.grpcAddress, credentials.createInsecure());
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${stack.dataplaneToken}`);
  const stream: ClientDuplexStream<ConnectRequest, ConnectResponse> = grpc.connect(metadata);
  const messages: ConnectResponse[] = [];
  stream.on('data', (message: ConnectResponse) => messages.push(message));
  stream.on('error', () => {});
  stream.write({ hello: { dataplaneId, incarnation, leaseBatches: false } });
  return {
    messages,
    send: (request) => stream.write(request),
    close: () => {
      stream.cancel();
      grpc.close();
    },
  };
}

beforeAll(async () => {
  const found = findEtcdBinary(process.env);
  if (found === null) throw new Error('etcd not found: apt-get install etcd-server, or set KEYBRAKE_ETCD_BIN');
  binary = found;
  dir = await mkdtemp(join(tmpdir(), 'keybrake-watch-recovery-'));
  etcdProcess = await startEtcd({ binary, dataDir: join(dir, 'etcd'), unsafeNoFsync: true });
  etcdPort = Number(new URL(etcdProcess.endpoint).port);
  etcd = new Etcd3({ hosts: etcdProcess.endpoint });
  stack = await createTestStack();
  sims = await startAllSimulators();
});

afterAll(async () => {
  await sims?.stop();
  etcd?.close();
  // The etcd process, by its PID.
  await etcdProcess?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('etcd compacted past the control plane’s watches (compaction every second), then restarted', () => {
  let planes: Planes | undefined;
  let kept: { id: string; vaultKey: string };
  let revoked: { id: string; vaultKey: string };

  beforeAll(async () => {
    planes = await startPlanes({ KEYBRAKE_ETCD_COMPACTION_INTERVAL: '1s' });
  });
  afterAll(async () => {
    await planes?.stop();
  });

  it('holds two keys on the data plane, then etcd compacts past everything its watches saw', async () => {
    const p = planes!;
    revoked = await issue(p, 'watch-recovery/revoked');
    kept = await issue(p, 'watch-recovery/kept');
    expect(await customer(p, revoked.vaultKey)).toBe('ok');
    expect(await customer(p, kept.vaultKey)).toBe('ok');
    await charge(p, kept.vaultKey, 100);
    expect(await keysHeld(p)).toBe(2);
    // The spend is reported: no ledger write is on its way (the next, a lease extension, is a minute off).
    expect(await spentMicros(p, kept.id, 1_000_000)).toBe(1_000_000);

    // Every watch of the control plane (keys, credentials, ledger) last saw a revision <= seen...
    const seen = await currentRevision();
    expect(await newestWrite(p.prefix)).toBeLessThanOrEqual(seen);
    // ...and history is compacted past it: a watch resuming at seen + 1 or before is cancelled when its stream reconnects.
    await waitFor('a compaction past the watches’ revisions', async () => ((await compactedRevision()) > seen + 1 ? true : undefined), 30_000, 200);
    await expect(etcd!.get('watch-recovery/probe').revision(seen).exec()).rejects.toThrow(/required revision has been compacted/);
    // Nothing under the control plane's prefix was written meanwhile (no watch moved on).
    expect(await newestWrite(p.prefix)).toBeLessThanOrEqual(seen);
    expect(p.lines.filter((line) => /watch/.test(line.message))).toEqual([]);
  }, 90_000);

  it('restarts etcd; a key revoked after that is refused by the data plane within seconds, and the other key still works', async () => {
    const p = planes!;
    await restartEtcd();
    await controlPlaneReady(p);

    await p.client.revokeKey({ id: revoked.id });
    const { answer, afterMs } = await refusal(p, revoked.vaultKey, 20_000);
    expect(answer).toBe('401 vault_key_revoked');
    expect(afterMs).toBeLessThan(15_000);
    expect(await customer(p, kept.vaultKey)).toBe('ok');
    // It went the way this test is about: etcd cancelled the policy watch, which started again.
    expect(p.lines.some((line) => line.level === 'warn' && /policy watch ended/.test(line.message))).toBe(true);
    expect(p.lines.filter((line) => /could not follow/.test(line.message))).toEqual([]);
    // Held keys were looked up again, none dropped: the data plane still holds both.
    expect(await keysHeld(p)).toBe(2);
  }, 90_000);

  it('refuses, on its first use, a key issued and revoked after the restart', async () => {
    const p = planes!;
    const fresh = await issue(p, 'watch-recovery/fresh');
    await p.client.revokeKey({ id: fresh.id });
    expect(await customer(p, fresh.vaultKey)).toBe('401 vault_key_revoked');
    expect(await customer(p, kept.vaultKey)).toBe('ok');
  }, 30_000);

  it('still counts spend, and the ledger watch still sends reclaims to lease holders', async () => {
    const p = planes!;
    const dataplaneId = `dp-test-${p.dp.port}`;
    await charge(p, kept.vaultKey, 150);
    expect(await spentMicros(p, kept.id, 2_500_000)).toBe(2_500_000);

    // The data plane sits on a grant larger than it spent...
    const held = Object.values((await ledgerAccount(p, kept.id))!.leases).find((lease) => lease.holder === dataplaneId);
    expect(held).toBeDefined();
    expect(held!.grantedMicros).toBeGreaterThan(held!.reportedMicros);
    // ...when another holder needs the whole budget: the control plane learns of it through its
    // ledger watch (only there), and tells every holder of the account to give back.
    const incarnation = randomBytes(4).toString('hex');
    const leaseId = `watch-recovery-other/${incarnation}/1`;
    const other = connectFakeHolder(p, 'watch-recovery-other', incarnation);
    try {
      await waitFor('the other holder’s snapshot', () => (other.messages.some((m) => m.snapshot !== undefined) ? true : undefined), 10_000, 50);
      other.send({ leaseRequest: { keyId: kept.id, window: 'life', leaseId, seq: 1, wantTotalMicros: BUDGET_MICROS, needTotalMicros: BUDGET_MICROS, reportedMicros: 0 } });
      const grant = await waitFor('the other holder’s grant', () => other.messages.find((m) => m.leaseGrant !== undefined)?.leaseGrant, 10_000, 50);
      expect(grant.refused).toBe('');
      expect(grant.short).toBe(true);
      await waitFor('a reclaim', () => other.messages.find((m) => m.reclaim?.keyId === kept.id && m.reclaim.window === 'life'), 10_000, 50);
      // The data plane got it too: it keeps only what it spent.
      await waitFor('the data plane to give back its unspent grant', async () => {
        const lease = Object.values((await ledgerAccount(p, kept.id))!.leases).find((l) => l.holder === dataplaneId);
        return lease !== undefined && lease.grantedMicros === lease.reportedMicros ? true : undefined;
      }, 10_000);
      other.send({ usageReport: { keyId: kept.id, window: 'life', leaseId, seq: 2, reportedMicros: 0, keepTotalMicros: -1, close: true } });
      await waitFor('the other holder’s lease to close', async () => (Object.values((await ledgerAccount(p, kept.id))!.leases).some((l) => l.holder === 'watch-recovery-other') ? undefined : true), 10_000);
    } finally {
      other.close();
    }
    expect(await customer(p, kept.vaultKey)).toBe('ok');
    expect(p.lines.filter((line) => line.level === 'error')).toEqual([]);
  }, 60_000);
});

describe('etcd compacted past only one of the two policy watches (credentials change rarely, keys often), then restarted', () => {
  let planes: Planes | undefined;

  beforeAll(async () => {
    // Compacted by this test, at a chosen revision.
    planes = await startPlanes({ KEYBRAKE_ETCD_COMPACTION_INTERVAL: 'off' });
  });
  afterAll(async () => {
    await planes?.stop();
  });

  // etcd cancels only the credentials/ watch. Cancelling a watcher etcd already dropped never
  // resolves in etcd3 (or throws outside any caller): the policy watches run on a client of their
  // own, closed as a whole, so the feed follows again (it used to stop for good here).
  it('a key revoked after the restart is refused by the data plane within seconds', async () => {
    const p = planes!;
    const key = await issue(p, 'watch-recovery/one-watch');
    expect(await customer(p, key.vaultKey)).toBe('ok');
    // A key write: the keys/ watch moves on to now, the credentials/ watch stays at the credential's write.
    await issue(p, 'watch-recovery/one-watch-later');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const now = await currentRevision();
    const keysWritten = await newestWrite(`${p.prefix}keys/`);
    expect(await newestWrite(p.prefix)).toBe(keysWritten);
    expect(await newestWrite(`${p.prefix}credentials/`)).toBeLessThan(keysWritten);
    // Revisions before `now` go: the credentials/ watch (and the quiet ledger watch) resume before it, the keys/ watch after.
    await etcd!.kv.compact({ revision: String(now), physical: false });

    await restartEtcd();
    await controlPlaneReady(p);
    await waitFor('etcd to cancel the credentials watch', () => (p.lines.some((line) => /policy watch ended/.test(line.message)) ? true : undefined), 20_000);
    // Past the feed's 100 ms restart delay: the revocation cannot ride on the old keys/ watch.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await p.client.revokeKey({ id: key.id });
    const { answer, afterMs } = await refusal(p, key.vaultKey, 8_000);
    expect(answer).toBe('401 vault_key_revoked');
    expect(afterMs).toBeLessThan(8_000);
  }, 60_000);
});
