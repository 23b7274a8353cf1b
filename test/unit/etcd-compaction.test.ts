/**
 * The control plane's own etcd compaction (control-plane/etcd-compaction.ts): the scheduling
 * decision, a seeded simulation of several replicas racing, stalling and dying against a model of
 * etcd, the compactor's rounds against a fake backend, its setting, and the size gauges.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import type { Logger } from '../../core/logger.js';
import { compileControlPlaneConfig } from '../../control-plane/config.js';
import {
  EtcdCompactor,
  nextRoundDelayMs,
  planCompaction,
  rememberRound,
  type CompactionBackend,
  type CompactionMemory,
  type LastCompaction,
  type RoundAnswer,
} from '../../control-plane/etcd-compaction.js';
import { EtcdStatusMetrics, type EtcdMemberStatus, type EtcdStatusReader } from '../../control-plane/etcd-status-metrics.js';
import { seededRandom } from '../support/seeded-random.js';

const T = 1000;

describe('planCompaction', () => {
  it('only observes before it has seen the round key', () => {
    expect(planCompaction(null, 0, T)).toEqual({ kind: 'observe' });
  });

  it('waits until the revision it saw is one interval old, then claims a round to compact to it', () => {
    const memory: CompactionMemory = { seenModRevision: 40, candidateRevision: 57, observedAtMs: 10_000 };
    expect(planCompaction(memory, 10_000, T)).toEqual({ kind: 'wait', delayMs: T });
    expect(planCompaction(memory, 10_999, T)).toEqual({ kind: 'wait', delayMs: 1 });
    expect(planCompaction(memory, 11_000, T)).toEqual({ kind: 'claim', ifModRevision: 40, compactTo: 57 });
    // Late (a stalled process): still the revision it saw, which only keeps more history.
    expect(planCompaction(memory, 99_000, T)).toEqual({ kind: 'claim', ifModRevision: 40, compactTo: 57 });
    expect(nextRoundDelayMs(memory, 10_250, T)).toBe(750);
    expect(nextRoundDelayMs(memory, 99_000, T)).toBe(T);
    expect(nextRoundDelayMs(null, 0, T)).toBe(T);
  });

  it('remembers the claim’s own write, or the key another replica wrote, and the current revision as the next candidate', () => {
    expect(rememberRound({ claimed: true, revision: 90, keyModRevision: 90 }, 5)).toEqual({ seenModRevision: 90, candidateRevision: 90, observedAtMs: 5 });
    expect(rememberRound({ claimed: false, revision: 90, keyModRevision: 71 }, 5)).toEqual({ seenModRevision: 71, candidateRevision: 90, observedAtMs: 5 });
    expect(rememberRound({ claimed: false, revision: 3, keyModRevision: 0 }, 5)).toEqual({ seenModRevision: 0, candidateRevision: 3, observedAtMs: 5 });
  });
});


interface SimulationResult {
  /** When each successful claim was applied in etcd. */
  claims: number[];
  /** Compactions etcd applied (moved its compacted revision forward): when, and to which revision. */
  compactions: { at: number; revision: number }[];
  /** etcd's revision as a function of time. */
  revisionAt(time: number): number;
  duration: number;
}

/**
 * Replicas run the compactor's decision functions against a model of etcd (one revision counter
 * with background writes, the round key's mod_revision, the compacted revision). Every message
 * takes 0..maxLatency ms each way; a replica may stall between its claim's answer and its compact
 * call, and (with `crashes`) die there and restart later with no memory. Events are processed in
 * time order, so requests of different replicas interleave as they would in etcd.
 */
function simulate(seed: number, options: { replicas: number; crashes: boolean; maxLatency: number; maxStall: number; duration: number }): SimulationResult {
  const random = seededRandom(seed);
  // Kept sorted by time, then by insertion.
  const queue: { at: number; run: () => void }[] = [];
  const at = (time: number, run: () => void) => {
    let low = 0;
    let high = queue.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (queue[mid]!.at <= time) low = mid + 1;
      else high = mid;
    }
    queue.splice(low, 0, { at: time, run });
  };

  let revision = 1;
  const writes: { at: number; revision: number }[] = [{ at: 0, revision: 1 }];
  const write = (time: number) => {
    revision++;
    writes.push({ at: time, revision });
    return revision;
  };
  let roundKeyMod = 0;
  let compacted = 0;
  const claims: number[] = [];
  const compactions: { at: number; revision: number }[] = [];

  // Background traffic: a write every 1..20 ms.
  const traffic = (time: number) => {
    if (time >= options.duration) return;
    write(time);
    const next = time + 1 + random() * 19;
    at(next, () => traffic(next));
  };
  at(0, () => traffic(0));

  const latency = () => random() * options.maxLatency;
  for (let r = 0; r < options.replicas; r++) {
    let memory: CompactionMemory | null = null;
    let alive = true;
    const round = (start: number) => {
      if (start >= options.duration || !alive) return;
      const step = planCompaction(memory, start, T);
      const finish = (end: number) => at(end + nextRoundDelayMs(memory, end, T), () => round(end + nextRoundDelayMs(memory, end, T)));
      if (step.kind === 'wait') {
        at(start + step.delayMs, () => round(start + step.delayMs));
        return;
      }
      const applied = start + latency();
      at(applied, () => {
        let answer: RoundAnswer;
        if (step.kind === 'observe') {
          answer = { claimed: false, revision, keyModRevision: roundKeyMod };
        } else if (roundKeyMod === step.ifModRevision) {
          roundKeyMod = write(applied);
          claims.push(applied);
          answer = { claimed: true, revision: roundKeyMod, keyModRevision: roundKeyMod };
        } else {
          answer = { claimed: false, revision, keyModRevision: roundKeyMod };
        }
        const answered = applied + latency();
        at(answered, () => {
          memory = rememberRound(answer, answered);
          if (step.kind !== 'claim' || !answer.claimed) return finish(answered);
          if (options.crashes && random() < 0.1) {
            // Dies after claiming, before compacting: restarts later with no memory.
            alive = false;
            const restart = answered + random() * 2 * T;
            at(restart, () => {
              alive = true;
              memory = null;
              round(restart);
            });
            return;
          }
          const compactAt = answered + random() * options.maxStall + latency();
          at(compactAt, () => {
            if (step.compactTo > compacted) {
              compacted = step.compactTo;
              compactions.push({ at: compactAt, revision: step.compactTo });
            }
            finish(compactAt + latency());
          });
        });
      });
    };
    const start = random() * T;
    at(start, () => round(start));
  }

  while (queue.length > 0) {
    const next = queue.shift()!;
    if (next.at > options.duration + 10 * T) break;
    next.run();
  }
  const revisionAt = (time: number) => {
    let low = 0;
    let high = writes.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (writes[mid]!.at <= time) low = mid + 1;
      else high = mid;
    }
    return low === 0 ? 0 : writes[low - 1]!.revision;
  };
  return { claims, compactions, revisionAt, duration: options.duration };
}

describe('compaction rounds across replicas (seeded simulation)', () => {
  const maxLatency = 30;
  const maxStall = 50;

  it.each(Array.from({ length: 200 }, (_, i) => i + 1))('seed %i: one round per interval, an interval of history always kept, and progress', (seed) => {
    const replicas = 1 + (seed % 4);
    const crashes = seed % 3 === 0;
    const result = simulate(seed, { replicas, crashes, maxLatency, maxStall, duration: 40 * T });

    // Claims (rounds) are at least one interval apart, whichever replicas make them.
    for (let i = 1; i < result.claims.length; i++) expect(result.claims[i]! - result.claims[i - 1]!).toBeGreaterThanOrEqual(T);
    // Every compaction keeps every revision written in the interval before it.
    for (const { at, revision } of result.compactions) expect(revision).toBeLessThanOrEqual(result.revisionAt(at - T));
    // Compactions that move etcd forward are an interval apart, less at most one stall.
    for (let i = 1; i < result.compactions.length; i++) expect(result.compactions[i]!.at - result.compactions[i - 1]!.at).toBeGreaterThanOrEqual(T - maxStall - 2 * maxLatency);
    if (!crashes) {
      // While replicas run, a round is claimed at least every two intervals (plus message times).
      const bound = 2 * T + 4 * maxLatency + maxStall + 1;
      const times = [...result.claims, result.duration];
      expect(times[0]!).toBeLessThanOrEqual(T + bound);
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual(bound);
      expect(result.compactions.length).toBeGreaterThanOrEqual(15);
    } else {
      expect(result.compactions.length).toBeGreaterThan(0);
    }
  });
});

interface Recorded {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

function recordingLogger(): { logger: Logger; lines: Recorded[] } {
  const lines: Recorded[] = [];
  const log = (level: Recorded['level']) => (fields: object | string, message?: string) => {
    if (typeof fields === 'string') lines.push({ level, fields: {}, message: fields });
    else lines.push({ level, fields: fields as Record<string, unknown>, message: message ?? '' });
  };
  return { logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }, lines };
}

class FakeBackend implements CompactionBackend {
  revision = 100;
  roundKeyMod = 0;
  compacted = 0;
  compactError: Error | null = null;
  claimError: Error | null = null;
  recorded: LastCompaction[] = [];
  compactCalls: number[] = [];
  closed = false;

  async observe(): Promise<RoundAnswer> {
    return { claimed: false, revision: this.revision, keyModRevision: this.roundKeyMod };
  }
  async claim(ifModRevision: number): Promise<RoundAnswer> {
    if (this.claimError !== null) throw this.claimError;
    if (ifModRevision !== this.roundKeyMod) return { claimed: false, revision: this.revision, keyModRevision: this.roundKeyMod };
    this.roundKeyMod = ++this.revision;
    return { claimed: true, revision: this.revision, keyModRevision: this.revision };
  }
  async compact(revision: number): Promise<'compacted' | 'superseded'> {
    this.compactCalls.push(revision);
    if (this.compactError !== null) throw this.compactError;
    if (revision <= this.compacted) return 'superseded';
    this.compacted = revision;
    return 'compacted';
  }
  async record(last: LastCompaction): Promise<void> {
    this.recorded.push(last);
  }
  close(): void {
    this.closed = true;
  }
}

describe('EtcdCompactor rounds', () => {
  it('observes, waits an interval, then compacts to what it saw and logs it once at info', async () => {
    const backend = new FakeBackend();
    const { logger, lines } = recordingLogger();
    let now = 0;
    const compactor = new EtcdCompactor({ intervalMs: T, backend, logger, now: () => now, replica: 'cp-a' });
    expect(await compactor.runRound()).toEqual({ kind: 'observed' });
    backend.revision = 150;
    now = 500;
    expect(await compactor.runRound()).toEqual({ kind: 'waiting' });
    now = 1000;
    expect(await compactor.runRound()).toMatchObject({ kind: 'compacted', revision: 100 });
    expect(backend.compactCalls).toEqual([100]);
    expect(backend.recorded).toMatchObject([{ revision: 100, by: 'cp-a' }]);
    const info = lines.filter((line) => line.level === 'info');
    expect(info).toEqual([{ level: 'info', message: 'compacted etcd history', fields: { revision: 100, took_ms: 0, history_kept_s: 1 } }]);
    // The next candidate is the revision of its own claim.
    now = 2000;
    expect(await compactor.runRound()).toMatchObject({ kind: 'compacted', revision: 151 });
  });

  it('loses the round when another replica claimed one meanwhile, and compacts nothing', async () => {
    const backend = new FakeBackend();
    const { logger, lines } = recordingLogger();
    let now = 0;
    const a = new EtcdCompactor({ intervalMs: T, backend, logger, now: () => now });
    const b = new EtcdCompactor({ intervalMs: T, backend, logger, now: () => now });
    await a.runRound();
    now = 300;
    await b.runRound();
    now = 1000;
    expect(await a.runRound()).toMatchObject({ kind: 'compacted', revision: 100 });
    now = 1300;
    expect(await b.runRound()).toEqual({ kind: 'lost' });
    now = 2000;
    expect(await a.runRound()).toMatchObject({ kind: 'compacted' });
    now = 2300;
    expect(await b.runRound()).toEqual({ kind: 'lost' });
    expect(backend.compactCalls).toHaveLength(2);
    expect(lines.filter((line) => line.level === 'info')).toHaveLength(2);
  });

  it('treats a revision etcd already compacted past as done, and lets a failed compaction surface', async () => {
    const backend = new FakeBackend();
    const { logger, lines } = recordingLogger();
    let now = 0;
    const compactor = new EtcdCompactor({ intervalMs: T, backend, logger, now: () => now });
    await compactor.runRound();
    backend.compacted = 120; // etcd's own --auto-compaction went further
    now = 1000;
    expect(await compactor.runRound()).toEqual({ kind: 'superseded', revision: 100 });
    expect(lines.filter((line) => line.level === 'info')).toHaveLength(0);
    expect(backend.recorded).toHaveLength(0);
    backend.compactError = new Error('14 UNAVAILABLE: No connection established');
    now = 2000;
    await expect(compactor.runRound()).rejects.toThrow(/UNAVAILABLE/);
  });

  it('compacts without a claim while etcd refuses every write (NOSPACE), and says so at warn', async () => {
    const backend = new FakeBackend();
    const { logger, lines } = recordingLogger();
    let now = 0;
    const compactor = new EtcdCompactor({ intervalMs: T, backend, logger, now: () => now });
    await compactor.runRound();
    backend.revision = 180;
    backend.claimError = new Error('8 RESOURCE_EXHAUSTED: etcdserver: mvcc: database space exceeded');
    now = 1000;
    expect(await compactor.runRound()).toMatchObject({ kind: 'compacted', revision: 100 });
    expect(lines.filter((line) => line.level === 'warn')).toMatchObject([{ fields: { revision: 100 }, message: expect.stringMatching(/NOSPACE/) }]);
    // Its next candidate is what it observed after compacting, one interval later again.
    now = 1500;
    expect(await compactor.runRound()).toEqual({ kind: 'waiting' });
    now = 2000;
    expect(await compactor.runRound()).toMatchObject({ kind: 'compacted', revision: 180 });
    backend.claimError = new Error('14 UNAVAILABLE: No connection established');
    now = 3000;
    await expect(compactor.runRound()).rejects.toThrow(/UNAVAILABLE/);
    expect(backend.compactCalls).toEqual([100, 180]);
  });

  it('starts observing at once, follows its timer, and stops cleanly', async () => {
    const backend = new FakeBackend();
    const { logger } = recordingLogger();
    const compactor = new EtcdCompactor({ intervalMs: 50, backend, logger });
    compactor.start();
    await new Promise((resolve) => setTimeout(resolve, 400));
    await compactor.stop();
    expect(backend.compactCalls.length).toBeGreaterThanOrEqual(3);
    expect(backend.closed).toBe(true);
    const calls = backend.compactCalls.length;
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(backend.compactCalls).toHaveLength(calls);
  });
});

describe('KEYBRAKE_ETCD_COMPACTION_INTERVAL', () => {
  const good = {
    KEYBRAKE_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
    KEYBRAKE_DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/keybrake',
    KEYBRAKE_ADMIN_TOKEN: 'a'.repeat(32),
    KEYBRAKE_DATAPLANE_TOKEN: 'd'.repeat(32),
  };

  it('defaults to 5 minutes; 0 or off turns it off', () => {
    expect(compileControlPlaneConfig(good).etcdCompactionIntervalMs).toBe(300_000);
    expect(compileControlPlaneConfig({ ...good, KEYBRAKE_ETCD_COMPACTION_INTERVAL: '90s' }).etcdCompactionIntervalMs).toBe(90_000);
    for (const off of ['0', '0s', 'off', 'OFF']) expect(compileControlPlaneConfig({ ...good, KEYBRAKE_ETCD_COMPACTION_INTERVAL: off }).etcdCompactionIntervalMs).toBeNull();
  });

  it('names the variable when the value is bad', () => {
    expect(() => compileControlPlaneConfig({ ...good, KEYBRAKE_ETCD_COMPACTION_INTERVAL: 'hourly' })).toThrow(/^KEYBRAKE_ETCD_COMPACTION_INTERVAL: cannot parse duration "hourly"/);
    expect(() => compileControlPlaneConfig({ ...good, KEYBRAKE_ETCD_COMPACTION_INTERVAL: '-5m' })).toThrow(/^KEYBRAKE_ETCD_COMPACTION_INTERVAL: /);
  });
});

class FakeReader implements EtcdStatusReader {
  calls = 0;
  down = new Set<string>();
  last: LastCompaction | null = null;
  constructor(readonly endpoints: readonly string[]) {}
  async status(endpoint: string): Promise<EtcdMemberStatus> {
    this.calls++;
    if (this.down.has(endpoint)) throw new Error('14 UNAVAILABLE');
    return { dbSize: endpoint.endsWith('1') ? 4096 : 8192, dbSizeInUse: 2048, revision: 77 };
  }
  async lastCompaction(): Promise<LastCompaction | null> {
    return this.last;
  }
  close(): void {}
}

describe('etcd size gauges', () => {
  it('read etcd at most every 10 s, per member, and leave a member that does not answer absent without failing the scrape', async () => {
    const registry = new Registry();
    const reader = new FakeReader(['http://e1', 'http://e2']);
    let now = 0;
    const { logger, lines } = recordingLogger();
    new EtcdStatusMetrics({ registry, reader, logger, now: () => now });

    let text = await registry.metrics();
    expect(text).toContain('keybrake_etcd_db_size_bytes{endpoint="http://e1"} 4096');
    expect(text).toContain('keybrake_etcd_db_size_bytes{endpoint="http://e2"} 8192');
    expect(text).toContain('keybrake_etcd_db_size_in_use_bytes{endpoint="http://e1"} 2048');
    expect(text).toContain('keybrake_etcd_revision{endpoint="http://e2"} 77');
    // No compaction recorded yet: no sample (not 0).
    expect(text).not.toMatch(/^keybrake_etcd_compacted_revision /m);
    expect(text).not.toMatch(/^keybrake_etcd_last_compaction_timestamp_seconds /m);
    expect(reader.calls).toBe(2);

    reader.last = { revision: 1234, at: 1_700_000_000_000, took_ms: 3, by: 'cp' };
    reader.down.add('http://e2');
    now = 9_999;
    text = await registry.metrics();
    expect(reader.calls).toBe(2);
    expect(text).toContain('keybrake_etcd_db_size_bytes{endpoint="http://e2"} 8192');

    now = 10_000;
    text = await registry.metrics();
    expect(reader.calls).toBe(4);
    expect(text).toContain('keybrake_etcd_db_size_bytes{endpoint="http://e1"} 4096');
    expect(text).not.toContain('endpoint="http://e2"');
    expect(text).toMatch(/^keybrake_etcd_compacted_revision 1234$/m);
    expect(text).toMatch(/^keybrake_etcd_last_compaction_timestamp_seconds 1700000000$/m);
    expect(lines.filter((line) => line.level === 'warn')).toHaveLength(1);

    // Every member down: the scrape still answers, without etcd samples.
    reader.down.add('http://e1');
    now = 20_000;
    text = await registry.metrics();
    expect(text).not.toMatch(/^keybrake_etcd_db_size_bytes\{/m);
    expect(text).not.toMatch(/^keybrake_etcd_compacted_revision /m);
  });

  it('answers the scrape within its timeout when etcd hangs', async () => {
    const registry = new Registry();
    const reader: EtcdStatusReader = {
      endpoints: ['http://hung'],
      status: () => new Promise(() => {}),
      lastCompaction: () => new Promise(() => {}),
      close: () => {},
    };
    new EtcdStatusMetrics({ registry, reader, logger: recordingLogger().logger, timeoutMs: 100 });
    const started = Date.now();
    const text = await registry.metrics();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(text).toContain('# TYPE keybrake_etcd_db_size_bytes gauge');
    expect(text).not.toMatch(/^keybrake_etcd_db_size_bytes\{/m);
  });
});
