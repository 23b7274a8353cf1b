/**
 * The control plane compacts etcd's history itself (KEYBRAKE_ETCD_COMPACTION_INTERVAL), one
 * replica per interval, keeping one interval for watches to resume; etcd's size is on /metrics.
 *
 * Compaction is global to an etcd cluster, and the suite's etcd is shared by test files running
 * in parallel (whose watches and paged walks resume from revisions of their own): this file runs
 * an etcd process of its own, on free ports in a temporary directory, and stops it at the end.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Logger } from '../../core/logger.js';
import { compileControlPlaneConfig } from '../../control-plane/config.js';
import { startControlPlane, type RunningControlPlane } from '../../control-plane/control-plane.js';
import { COMPACTION_LAST_KEY, COMPACTION_ROUND_KEY, EtcdCompactionBackend, EtcdCompactor, isCompactedError, isNoSpaceError } from '../../control-plane/etcd-compaction.js';
import { findEtcdBinary, startEtcd, stopChild, type EtcdProcess } from '../../dev/etcd-process.js';
import { freePort } from '../../dev/free-port.js';
import { createTestStack, type TestStack } from '../support/control-plane.js';

const INTERVAL_MS = 1000;

interface LogLine {
  readonly replica: string;
  readonly level: string;
  readonly message: string;
  readonly fields: Record<string, unknown>;
  readonly time: number;
}

const lines: LogLine[] = [];

function recordingLogger(replica: string): Logger {
  const log = (level: string) => (fields: object | string, message?: string) => {
    if (typeof fields === 'string') lines.push({ replica, level, message: fields, fields: {}, time: Date.now() });
    else lines.push({ replica, level, message: message ?? '', fields: fields as Record<string, unknown>, time: Date.now() });
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

const compactions = (replica?: string) => lines.filter((line) => line.message === 'compacted etcd history' && (replica === undefined || line.replica === replica));

let dir: string;
let etcdProcess: EtcdProcess;
let etcd: Etcd3;
let stack: TestStack;
const replicas = new Map<string, RunningControlPlane>();
/** A write every 50 ms: when, and at which revision. */
const markers: { at: number; revision: number }[] = [];
let writer: NodeJS.Timeout | undefined;

async function startReplica(name: string): Promise<RunningControlPlane> {
  const config = compileControlPlaneConfig(stack.env({ KEYBRAKE_ETCD_ENDPOINTS: etcdProcess.endpoint, KEYBRAKE_ETCD_COMPACTION_INTERVAL: `${INTERVAL_MS / 1000}s` }));
  const running = await startControlPlane(config, recordingLogger(name));
  replicas.set(name, running);
  return running;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function lastCompactedRevision(): Promise<number> {
  const text = await etcd.get(COMPACTION_LAST_KEY).string();
  return text === null ? 0 : (JSON.parse(text) as { revision: number }).revision;
}

async function readAt(revision: number): Promise<'read' | 'compacted'> {
  try {
    await etcd.get('/compaction-test/marker').revision(revision).string();
    return 'read';
  } catch (error) {
    if (isCompactedError(error)) return 'compacted';
    throw error;
  }
}

beforeAll(async () => {
  const binary = findEtcdBinary(process.env);
  if (binary === null) throw new Error('etcd not found: apt-get install etcd-server, or set KEYBRAKE_ETCD_BIN');
  dir = await mkdtemp(join(tmpdir(), 'keybrake-compaction-'));
  etcdProcess = await startEtcd({ binary, dataDir: join(dir, 'etcd'), unsafeNoFsync: true });
  etcd = new Etcd3({ hosts: etcdProcess.endpoint });
  stack = await createTestStack();
  const write = () => {
    etcd
      .put('/compaction-test/marker')
      .value(String(Date.now()))
      .exec()
      .then((answer) => markers.push({ at: Date.now(), revision: Number(answer.header.revision) }))
      .catch(() => {});
  };
  write();
  writer = setInterval(write, 50);
});

afterAll(async () => {
  clearInterval(writer);
  for (const running of replicas.values()) await running.stop();
  etcd?.close();
  await etcdProcess?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('etcd compaction by the control plane', () => {
  it('compacts old history, keeps the last interval readable, one replica per interval, and shows etcd’s size', async () => {
    const old = await etcd.put('/compaction-test/marker').value('old').exec();
    const oldRevision = Number(old.header.revision);
    expect(await readAt(oldRevision)).toBe('read');

    const startedAt = Date.now();
    await Promise.all([startReplica('a'), startReplica('b')]);

    // History older than the window goes: a read at that revision is refused by etcd.
    await waitFor('a compaction past the old revision', async () => ((await lastCompactedRevision()) > oldRevision ? true : undefined));
    expect(await readAt(oldRevision)).toBe('compacted');
    await expect(etcd.get('/compaction-test/marker').revision(oldRevision).string()).rejects.toThrow(/required revision has been compacted/);

    // The window is kept: whenever we look, what was written less than one interval ago still reads.
    const deadline = Date.now() + 5 * INTERVAL_MS;
    let checks = 0;
    while (Date.now() < deadline) {
      const recent = [...markers].reverse().find((marker) => marker.at <= Date.now() - INTERVAL_MS / 2);
      if (recent !== undefined) {
        expect(await readAt(recent.revision)).toBe('read');
        checks++;
      }
      await new Promise((resolve) => setTimeout(resolve, 97));
    }
    expect(checks).toBeGreaterThan(20);
    // ...and what is several intervals old is gone.
    const stale = [...markers].reverse().find((marker) => marker.at <= Date.now() - 4 * INTERVAL_MS)!;
    expect(await readAt(stale.revision)).toBe('compacted');

    // One replica per interval: both run rounds, compactions are an interval apart, each logged once.
    const elapsed = Date.now() - startedAt;
    const made = compactions();
    expect(made.length).toBeGreaterThanOrEqual(3);
    expect(made.length).toBeLessThanOrEqual(Math.ceil(elapsed / INTERVAL_MS));
    for (let i = 1; i < made.length; i++) {
      expect(made[i]!.time - made[i - 1]!.time).toBeGreaterThanOrEqual(INTERVAL_MS - 100);
      expect(made[i]!.fields['revision'] as number).toBeGreaterThan(made[i - 1]!.fields['revision'] as number);
    }
    for (const line of made) {
      expect(line.level).toBe('info');
      expect(line.fields).toEqual({ revision: expect.any(Number), took_ms: expect.any(Number), history_kept_s: expect.any(Number) });
      expect(line.fields['history_kept_s'] as number).toBeGreaterThanOrEqual(1);
    }
    expect(lines.filter((line) => line.message === 'another replica claimed this etcd compaction round').length).toBeGreaterThan(0);
    // Each compaction kept every revision written in the interval before it.
    const recorded = JSON.parse((await etcd.get(COMPACTION_LAST_KEY).string())!) as { revision: number; at: number; by: string };
    const youngest = markers.filter((marker) => marker.at >= recorded.at - INTERVAL_MS + 20);
    for (const marker of youngest) expect(marker.revision).toBeGreaterThan(recorded.revision);
    expect(await etcd.get(COMPACTION_ROUND_KEY).string()).not.toBeNull();
    expect(lines.filter((line) => (line.level === 'warn' || line.level === 'error') && /compaction|etcd status/.test(line.message))).toEqual([]);

    // The metric shows etcd's size (this member, by endpoint) and the last compaction.
    const a = replicas.get('a')!;
    const metrics = await (await fetch(`http://127.0.0.1:${a.adminPort}/metrics`)).text();
    const endpoint = etcdProcess.endpoint.replace(/\//g, '\\/').replace(/\./g, '\\.');
    const size = Number(new RegExp(`^keybrake_etcd_db_size_bytes\\{endpoint="${endpoint}"\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
    const inUse = Number(new RegExp(`^keybrake_etcd_db_size_in_use_bytes\\{endpoint="${endpoint}"\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
    expect(size).toBeGreaterThan(0);
    expect(inUse).toBeGreaterThan(0);
    expect(inUse).toBeLessThanOrEqual(size);
    const compactedRevision = Number(/^keybrake_etcd_compacted_revision (\d+)$/m.exec(metrics)?.[1]);
    expect(compactedRevision).toBeGreaterThan(oldRevision);
    expect(metrics).toMatch(/^keybrake_etcd_last_compaction_timestamp_seconds \d+(\.\d+)?$/m);
  });

  it('goes on compacting when the replica that was compacting stops', async () => {
    const byReplica = (name: string) => compactions(name).length;
    const busiest = byReplica('a') >= byReplica('b') ? 'a' : 'b';
    const other = busiest === 'a' ? 'b' : 'a';
    await replicas.get(busiest)!.stop();
    replicas.delete(busiest);
    const before = byReplica(other);
    await waitFor(`replica ${other} to compact`, () => (byReplica(other) >= before + 2 ? true : undefined), 6 * INTERVAL_MS);
  });

  it('answers /metrics while etcd is down, without etcd’s samples', async () => {
    const [running] = [...replicas.values()];
    await etcdProcess.stop();
    // The size is cached for 10 s: past that, the next scrape asks etcd again and finds it gone.
    await new Promise((resolve) => setTimeout(resolve, 10_500));
    const started = Date.now();
    const response = await fetch(`http://127.0.0.1:${running!.adminPort}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(text).toContain('# TYPE keybrake_etcd_db_size_bytes gauge');
    expect(text).not.toMatch(/^keybrake_etcd_db_size_bytes\{/m);
    expect(text).not.toMatch(/^keybrake_etcd_compacted_revision /m);
    expect(text).toMatch(/^keybrake_lease_requests_total|^keybrake_controlplane_process_cpu/m);
  }, 30_000);
});

describe('etcd compaction when etcd is out of space', () => {
  it('still compacts under the NOSPACE alarm (which refuses the claim), and defrag plus disarm then recover writes', async () => {
    // An etcd of its own with a 2 MiB quota (startEtcd takes no quota), stopped by its PID below.
    const binary = findEtcdBinary(process.env)!;
    const dataDir = join(dir, 'etcd-small');
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const endpoint = `http://127.0.0.1:${clientPort}`;
    const child = spawn(binary, [
      '--name', 'small', '--data-dir', dataDir,
      '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `small=http://127.0.0.1:${peerPort}`,
      '--quota-backend-bytes', String(2 * 1024 * 1024), '--log-level', 'error', '--unsafe-no-fsync',
    ], { stdio: 'ignore' });
    const small = new Etcd3({ hosts: endpoint });
    const compactor = new EtcdCompactor({ intervalMs: INTERVAL_MS, backend: new EtcdCompactionBackend([endpoint]), logger: recordingLogger('small') });
    try {
      await waitFor('the small etcd', async () => ((await fetch(`${endpoint}/health`).then((r) => r.json(), () => null)) as { health?: string } | null)?.health === 'true' || undefined);
      const first = Number((await small.put('/fill/0').value('x').exec()).header.revision);
      let full = false;
      for (let i = 0; i < 10_000 && !full; i++) {
        try {
          await small.put(`/fill/${i % 10}`).value('x'.repeat(10_000)).exec();
        } catch (error) {
          if (!isNoSpaceError(error)) throw error;
          full = true;
        }
      }
      expect(full).toBe(true);

      compactor.start();
      const line = await waitFor('a compaction under NOSPACE', () => lines.find((l) => l.replica === 'small' && l.level === 'warn' && /NOSPACE/.test(l.message)), 10 * INTERVAL_MS);
      expect(line.fields['revision'] as number).toBeGreaterThan(first);
      const reader = new Etcd3({ hosts: endpoint });
      try {
        await expect(reader.get('/fill/0').revision(first).string()).rejects.toThrow(/required revision has been compacted/);
        // The operator's part, as the guide says: defragment, then disarm; writes work again.
        await reader.maintenance.defragment();
        const alarms = await reader.maintenance.alarm({ action: 'Get' });
        for (const alarm of alarms.alarms) await reader.maintenance.alarm({ action: 'Deactivate', memberID: alarm.memberID, alarm: alarm.alarm });
        await reader.put('/fill/after').value('ok').exec();
      } finally {
        reader.close();
      }
    } finally {
      await compactor.stop();
      small.close();
      await stopChild(child);
    }
  }, 60_000);
});
