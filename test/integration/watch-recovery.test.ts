/**
 * The control plane's etcd watches survive etcd compacting their history away. The control plane
 * compacts etcd itself (KEYBRAKE_ETCD_COMPACTION_INTERVAL); a quiet watch's resume revision is as
 * old as its last event, and when its stream reconnects (etcd restarted) etcd cancels it, with an
 * empty reason, because that revision is gone. The policy watch must start again from a fresh read
 * and have every data plane look up again the keys it holds; the ledger watch must start again too.
 *
 * Real processes: an etcd of this file's own (compaction is global to an etcd, and the suite's is
 * shared), restarted on the same data dir and port; the suite's PostgreSQL; a control plane
 * compacting every second (in this process, for its log); one data-plane process in front of the
 * Stripe simulator. Then, after the restart: a key revoked is refused by the data plane within
 * seconds while the other key works; a key revoked before its first use is refused on first use;
 * spend still counts, and the ledger watch still tells lease holders to give back (a reclaim).
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

const COMPACTION_INTERVAL = '1s';
/** Long: no lease extension or idle return writes the ledger while its watch must stay quiet. */
const LEASE_TTL = '120s';
const BUDGET_MICROS = 10_000_000;

interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly fields: Record<string, unknown>;
}

const lines: LogLine[] = [];

function recordingLogger(): Logger {
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
let etcd: Etcd3 | undefined;
let stack: TestStack;
let running: RunningControlPlane | undefined;
let client: OperatorClient | undefined;
let adminUrl: string;
let grpcAddress: string;
let sims: AllSimulators | undefined;
let dp: TestDataPlane | undefined;

const spec = (label: string): KeySpec => ({
  vendor: 'stripe', label, allowedEndpoints: ['POST /v1/customers', 'POST /v1/charges'], dailyCapMicros: 0, budgetMicros: BUDGET_MICROS, expiresInSeconds: 3600, perCallEstimateMicros: 0,
});

async function issue(label: string): Promise<{ id: string; vaultKey: string }> {
  const { issued } = await client!.issueKey({ spec: spec(label) });
  return { id: issued!.key!.id, vaultKey: issued!.vaultKey };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A free call through the data plane: 200, or the Keybrake error code it was refused with. */
async function customer(vaultKey: string): Promise<'ok' | string> {
  return stripeThrough(dp!.url, vaultKey).customers.create({}).then(
    () => 'ok',
    (error: unknown) => (error instanceof Stripe.errors.StripeError ? `${error.statusCode ?? 0} ${error.code ?? ''}` : String(error)),
  );
}

async function charge(vaultKey: string, cents: number): Promise<void> {
  const charged = await stripeThrough(dp!.url, vaultKey).charges.create({ amount: cents, currency: 'usd', source: 'tok_visa' });
  expect(charged.id).toMatch(/^ch_/);
}

async function admin(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${adminUrl}${path}`, { headers: { authorization: `Bearer ${stack.adminToken}` } });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

/** The key's spend once it reaches `expected` (data planes report every few seconds). */
async function spentMicros(id: string, expected: number): Promise<number> {
  let last = -1;
  try {
    await waitFor(`spent_micros ${expected}`, async () => {
      last = (await admin(`/vault/keys/${id}`)).body['spent_micros'] as number;
      return last === expected ? true : undefined;
    }, 20_000, 200);
  } catch {
    // the assertion below shows what it was
  }
  return last;
}

async function currentRevision(): Promise<number> {
  return Number((await etcd!.get('watch-recovery/probe').exec()).header.revision);
}

async function compactedRevision(): Promise<number> {
  const text = await etcd!.get(COMPACTION_LAST_KEY).string();
  return text === null ? 0 : (JSON.parse(text) as { revision: number }).revision;
}

/** The newest mod_revision of anything under this stack's prefix: what the control plane's watches last saw. */
async function newestWriteUnderPrefix(): Promise<number> {
  const { kvs } = await etcd!.getAll().prefix(stack.etcdPrefix).exec();
  return Math.max(0, ...kvs.map((kv) => Number(kv.mod_revision)));
}

async function ledgerAccount(keyId: string): Promise<BudgetAccount | null> {
  const text = await etcd!.get(`${stack.etcdPrefix}ledger/${keyId}/life`).string();
  return text === null ? null : (JSON.parse(text) as BudgetAccount);
}

const dataPlaneId = () => `dp-test-${dp!.port}`;

/** Another lease holder on the data-plane stream (as a second data plane would be), to make the control plane send reclaims. */
interface FakeHolder {
  readonly messages: ConnectResponse[];
  send(request: ConnectRequest): void;
  close(): void;
}

function connectFakeHolder(dataplaneId: string, incarnation: string): FakeHolder {
  const grpc = new DataPlaneServiceClient(grpcAddress, credentials.createInsecure());
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${stack.dataplaneToken}`);
  const stream: ClientDuplexStream<ConnectRequest, ConnectResponse> = grpc.connect(metadata);
  const messages: ConnectResponse[] = [];
  stream.on('data', (message: ConnectResponse) => messages.push(message));
  stream.on('error', () => {});
  stream.write({ hello: { dataplaneId, incarnation } });
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
  const config = compileControlPlaneConfig(stack.env({
    KEYBRAKE_ETCD_ENDPOINTS: etcdProcess.endpoint,
    KEYBRAKE_ETCD_COMPACTION_INTERVAL: COMPACTION_INTERVAL,
    KEYBRAKE_LEASE_TTL: LEASE_TTL,
  }));
  running = await startControlPlane(config, recordingLogger());
  adminUrl = `http://127.0.0.1:${running.adminPort}`;
  grpcAddress = `127.0.0.1:${running.grpcPort}`;
  client = createOperatorClient(grpcAddress, stack.adminToken);
  sims = await startAllSimulators();
  await client.setVendorCredential({ vendor: 'stripe', secret: sims.secrets.stripeSecretKey, accountSid: '' });
  dp = await startTestDataPlane(stack, grpcAddress, { stripe: sims.stripe.url }, { KEYBRAKE_LEASE_TTL: LEASE_TTL });
});

afterAll(async () => {
  // Every process this file started, by its PID (the data plane, then etcd), and the rest.
  await dp?.stop();
  await sims?.stop();
  client?.close();
  await running?.stop();
  etcd?.close();
  await etcdProcess?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('the control plane’s etcd watches after their history was compacted away and etcd restarted', () => {
  let kept: { id: string; vaultKey: string };
  let revoked: { id: string; vaultKey: string };

  it('holds two keys on the data plane, then etcd compacts past everything its watches saw', async () => {
    revoked = await issue('watch-recovery/revoked');
    kept = await issue('watch-recovery/kept');
    expect(await customer(revoked.vaultKey)).toBe('ok');
    expect(await customer(kept.vaultKey)).toBe('ok');
    await charge(kept.vaultKey, 100);
    expect(((await (await fetch(`${dp!.url}/readyz`)).json()) as { keys: number }).keys).toBe(2);
    // The spend is reported: no ledger write is on its way (the next, a lease extension, is a minute off).
    expect(await spentMicros(kept.id, 1_000_000)).toBe(1_000_000);

    // Every watch of the control plane (keys, credentials, ledger) last saw a revision <= seen.
    const seen = await currentRevision();
    expect(await newestWriteUnderPrefix()).toBeLessThanOrEqual(seen);
    // Compacted past it: a watch resuming at seen + 1 or before is cancelled when its stream reconnects.
    await waitFor('a compaction past the watches’ revisions', async () => ((await compactedRevision()) > seen + 1 ? true : undefined), 30_000, 200);
    await expect(etcd!.get('watch-recovery/probe').revision(seen).exec()).rejects.toThrow(/required revision has been compacted/);
    // Nothing was written to the watched keys meanwhile (else a watch might have moved on).
    expect(await newestWriteUnderPrefix()).toBeLessThanOrEqual(seen);
    expect(lines.filter((line) => /watch/.test(line.message))).toEqual([]);
  }, 90_000);

  it('restarts etcd; a key revoked after that is refused by the data plane within seconds, and the other key still works', async () => {
    await etcdProcess!.stop();
    etcdProcess = await startEtcd({ binary, dataDir: join(dir!, 'etcd'), clientPort: etcdPort, unsafeNoFsync: true });
    // The control plane talks to etcd again (its client may wait out a circuit breaker first).
    await waitFor('the control plane to be ready again', async () => ((await fetch(`${adminUrl}/readyz`).then((r) => r.status, () => 0)) === 200 ? true : undefined), 30_000, 200);

    const revokedAt = Date.now();
    await client!.revokeKey({ id: revoked.id });
    const answer = await waitFor('the data plane to refuse the revoked key', async () => {
      const result = await customer(revoked.vaultKey);
      return result === 'ok' ? undefined : result;
    }, 20_000, 100);
    const tookMs = Date.now() - revokedAt;
    expect(answer).toBe('401 vault_key_revoked');
    expect(tookMs).toBeLessThan(15_000);
    expect(await customer(kept.vaultKey)).toBe('ok');
    // It went the way this test is about: etcd cancelled the policy watch, which started again.
    expect(lines.some((line) => line.level === 'warn' && /policy watch ended/.test(line.message))).toBe(true);
    expect(lines.filter((line) => /could not follow/.test(line.message))).toEqual([]);
    // Held keys are looked up again, none is dropped: the data plane still holds both.
    expect(((await (await fetch(`${dp!.url}/readyz`)).json()) as { keys: number }).keys).toBe(2);
  }, 90_000);

  it('refuses, on its first use, a key issued and revoked after the restart', async () => {
    const fresh = await issue('watch-recovery/fresh');
    await client!.revokeKey({ id: fresh.id });
    expect(await customer(fresh.vaultKey)).toBe('401 vault_key_revoked');
    expect(await customer(kept.vaultKey)).toBe('ok');
  }, 30_000);

  it('still counts spend, and the ledger watch still sends reclaims to lease holders', async () => {
    await charge(kept.vaultKey, 150);
    expect(await spentMicros(kept.id, 2_500_000)).toBe(2_500_000);

    // The data plane sits on a grant larger than it spent...
    const before = await ledgerAccount(kept.id);
    const held = Object.values(before!.leases).find((lease) => lease.holder === dataPlaneId());
    expect(held).toBeDefined();
    expect(held!.grantedMicros).toBeGreaterThan(held!.reportedMicros);
    // ...when another holder needs the whole budget: the control plane learns of it through its
    // ledger watch (only there), and tells every holder of the account to give back.
    const incarnation = randomBytes(4).toString('hex');
    const other = connectFakeHolder('watch-recovery-other', incarnation);
    try {
      await waitFor('the fake holder’s snapshot', () => (other.messages.some((m) => m.snapshot !== undefined) ? true : undefined), 10_000, 50);
      other.send({ leaseRequest: { keyId: kept.id, window: 'life', leaseId: `watch-recovery-other/${incarnation}/1`, seq: 1, wantTotalMicros: BUDGET_MICROS, needTotalMicros: BUDGET_MICROS, reportedMicros: 0 } });
      const grant = await waitFor('the fake holder’s grant', () => other.messages.find((m) => m.leaseGrant !== undefined)?.leaseGrant, 10_000, 50);
      expect(grant.refused).toBe('');
      expect(grant.short).toBe(true);
      await waitFor('a reclaim', () => other.messages.find((m) => m.reclaim?.keyId === kept.id && m.reclaim.window === 'life'), 10_000, 50);
      // The data plane got it too: it keeps only what it spent.
      await waitFor('the data plane to give back its unspent grant', async () => {
        const lease = Object.values((await ledgerAccount(kept.id))!.leases).find((l) => l.holder === dataPlaneId());
        return lease !== undefined && lease.grantedMicros === lease.reportedMicros ? true : undefined;
      }, 10_000, 100);
      other.send({ usageReport: { keyId: kept.id, window: 'life', leaseId: `watch-recovery-other/${incarnation}/1`, seq: 2, reportedMicros: 0, keepTotalMicros: -1, close: true } });
      await waitFor('the fake holder’s lease to close', async () => (Object.values((await ledgerAccount(kept.id))!.leases).some((l) => l.holder === 'watch-recovery-other') ? undefined : true), 10_000, 100);
    } finally {
      other.close();
    }
    expect(await customer(kept.vaultKey)).toBe('ok');
    expect(lines.filter((line) => line.level === 'error')).toEqual([]);
  }, 60_000);
});

