/**
 * etcd keeps every revision of every key until its history is compacted: every lease grant, usage
 * report and key write stays on disk, and etcd's quota (2 GB by default) stops every write once
 * the database reaches it. The control plane compacts that history itself, as the Kubernetes API
 * server does, keeping one interval of history so a watch that reconnects can resume.
 *
 * Coordination, with any number of replicas (and of installations sharing the etcd: compaction is
 * global to the cluster, so the coordination keys sit outside every KEYBRAKE_ETCD_PREFIX, which
 * always starts with "/"):
 *
 * - Each replica remembers, from its previous round, the mod_revision it saw on the round key and
 *   etcd's revision at that moment (its candidate), and when it received that answer.
 * - One interval later it claims a round: a transaction that writes the round key only if its
 *   mod_revision is still the one it saw. If that succeeds, no replica claimed a round in the
 *   whole interval, and it compacts to its candidate, which is at least one interval old.
 *   Otherwise it learns the key's new mod_revision and the current revision, and compacts nothing.
 * - So two claimed rounds are at least one interval apart, whichever replicas claim them (their
 *   compactions too, give or take the moments between a claim and its compaction call), and each
 *   compaction keeps at least one interval of history (between one and two in practice); while
 *   any replica runs, a round is claimed at least every two intervals. No clocks are compared
 *   across machines: each replica measures its own interval with its monotonic clock.
 * - Under etcd's NOSPACE alarm the claim (a write) is refused; each replica then compacts to its
 *   own candidate unclaimed (the window still holds) until an operator clears the alarm.
 * - Nothing is held: a replica that dies after claiming a round just skips that round's
 *   compaction; the next claim compacts further. There is no lock to expire, and a replica that
 *   stalls (a long GC, a partition) only compacts an older revision, which keeps more history.
 *   Compacting to a revision etcd has already compacted past (another round, or etcd's own
 *   --auto-compaction) is refused by etcd and harmless.
 *
 * Compaction is logical here (`physical: false`, as in Kubernetes): the old revisions are gone for
 * reads and watches when the call returns, and etcd frees their pages in the background. Nothing
 * in Keybrake depends on that having finished, and waiting for it on a large database would hold
 * the call for a long time. The space freed is reused by etcd but the file does not shrink:
 * `etcdctl defrag` stays an operator task.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';

import { Etcd3 } from 'etcd3';

import type { Logger } from '../core/logger.js';

/** Claimed each round (compare-and-swap on its mod_revision). Outside every Keybrake prefix. */
export const COMPACTION_ROUND_KEY = 'keybrake.compaction/round';
/** The last compaction made: revision, time, duration, replica. Read for /metrics. */
export const COMPACTION_LAST_KEY = 'keybrake.compaction/last';

/** What one replica remembers between rounds. */
export interface CompactionMemory {
  /** mod_revision of the round key when this replica last read or wrote it (0: the key was absent). */
  readonly seenModRevision: number;
  /** etcd's revision in that answer: what this replica compacts to when it next claims a round. */
  readonly candidateRevision: number;
  /** When that answer arrived (this process's monotonic clock, ms). */
  readonly observedAtMs: number;
}

export type CompactionStep =
  /** No memory yet (just started, or every round so far failed): read the round key, compact nothing. */
  | { readonly kind: 'observe' }
  /** The candidate is younger than one interval: wait `delayMs`, then plan again. */
  | { readonly kind: 'wait'; readonly delayMs: number }
  /** Claim the round if the round key still has `ifModRevision`; if claimed, compact to `compactTo`. */
  | { readonly kind: 'claim'; readonly ifModRevision: number; readonly compactTo: number };

/** The scheduling decision: what one replica does now, given what it saw at its last round. */
export function planCompaction(memory: CompactionMemory | null, nowMs: number, intervalMs: number): CompactionStep {
  if (memory === null) return { kind: 'observe' };
  const dueAtMs = memory.observedAtMs + intervalMs;
  if (nowMs < dueAtMs) return { kind: 'wait', delayMs: dueAtMs - nowMs };
  return { kind: 'claim', ifModRevision: memory.seenModRevision, compactTo: memory.candidateRevision };
}

/** How long a replica waits after a round (or a failed one) before the next. */
export function nextRoundDelayMs(memory: CompactionMemory | null, nowMs: number, intervalMs: number): number {
  const step = planCompaction(memory, nowMs, intervalMs);
  return step.kind === 'wait' ? step.delayMs : intervalMs;
}

/** What etcd answered to an observation or a claim. */
export interface RoundAnswer {
  /** Whether this replica's claim was written (false for an observation). */
  readonly claimed: boolean;
  /** The store revision in the answer's header (after the claim's write, when claimed). */
  readonly revision: number;
  /** The round key's mod_revision as read, when not claimed (0: absent). */
  readonly keyModRevision: number;
}

/** What a replica remembers after a round's answer arrived at `atMs`. */
export function rememberRound(answer: RoundAnswer, atMs: number): CompactionMemory {
  return {
    // A claim's write is the transaction's only write: its mod_revision is the header's revision.
    seenModRevision: answer.claimed ? answer.revision : answer.keyModRevision,
    candidateRevision: answer.revision,
    observedAtMs: atMs,
  };
}

/** The value of COMPACTION_LAST_KEY. */
export interface LastCompaction {
  readonly revision: number;
  /** Wall-clock time the compaction was made, ms since the epoch. */
  readonly at: number;
  readonly took_ms: number;
  readonly by: string;
}

/** The etcd calls a compactor makes; EtcdCompactionBackend in production, fakes in unit tests. */
export interface CompactionBackend {
  observe(): Promise<RoundAnswer>;
  claim(ifModRevision: number, by: string): Promise<RoundAnswer>;
  /** 'superseded' when etcd has already compacted past `revision`. */
  compact(revision: number): Promise<'compacted' | 'superseded'>;
  /** Records the compaction in COMPACTION_LAST_KEY unless a later one is recorded already. */
  record(last: LastCompaction): Promise<void>;
  close(): void;
}

/** etcd's answer for a revision compaction has removed (a read, or a compaction to an older revision). */
export function isCompactedError(error: unknown): boolean {
  return /required revision has been compacted/i.test(error instanceof Error ? error.message : String(error));
}

/** One call's budget: etcd answers in milliseconds; a compaction of a large history may take seconds. */
const CALL_TIMEOUT_MS = 10_000;
const COMPACT_TIMEOUT_MS = 60_000;
const STOP_WAIT_MS = 2_000;

/** etcd's answer to any write while its NOSPACE alarm is raised (its database reached --quota-backend-bytes). */
export function isNoSpaceError(error: unknown): boolean {
  return /database space exceeded/i.test(error instanceof Error ? error.message : String(error));
}

export class EtcdCompactionBackend implements CompactionBackend {
  /** Claims and records (writes). */
  private readonly client: Etcd3;
  /**
   * Observations and compactions. A client of its own: after a refused write (NOSPACE) the etcd3
   * client stops calling that member for a few seconds (its circuit breaker), and compaction is
   * what etcd still accepts then, and what it needs.
   */
  private readonly compactClient: Etcd3;

  constructor(endpoints: readonly string[]) {
    this.client = new Etcd3({ hosts: [...endpoints], dialTimeout: 3000 });
    this.compactClient = new Etcd3({ hosts: [...endpoints], dialTimeout: 3000 });
  }

  async observe(): Promise<RoundAnswer> {
    const answer = await this.compactClient.get(COMPACTION_ROUND_KEY).options(deadline(CALL_TIMEOUT_MS)).exec();
    return { claimed: false, revision: Number(answer.header.revision), keyModRevision: Number(answer.kvs[0]?.mod_revision ?? 0) };
  }

  async claim(ifModRevision: number, by: string): Promise<RoundAnswer> {
    const answer = await this.client
      .if(COMPACTION_ROUND_KEY, 'Mod', '==', ifModRevision)
      .then(this.client.put(COMPACTION_ROUND_KEY).value(JSON.stringify({ by, at: Date.now() })))
      .else(this.client.get(COMPACTION_ROUND_KEY))
      .options(deadline(CALL_TIMEOUT_MS))
      .commit();
    const revision = Number(answer.header.revision);
    if (answer.succeeded) return { claimed: true, revision, keyModRevision: revision };
    return { claimed: false, revision, keyModRevision: Number(answer.responses[0]?.response_range.kvs[0]?.mod_revision ?? 0) };
  }

  async compact(revision: number): Promise<'compacted' | 'superseded'> {
    try {
      await this.compactClient.kv.compact({ revision: String(revision), physical: false }, deadline(COMPACT_TIMEOUT_MS));
      return 'compacted';
    } catch (error) {
      if (isCompactedError(error)) return 'superseded';
      throw error;
    }
  }

  async record(last: LastCompaction): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await this.client.get(COMPACTION_LAST_KEY).options(deadline(CALL_TIMEOUT_MS)).exec();
      const kv = current.kvs[0];
      const recorded = kv === undefined ? null : readLastCompaction(kv.value.toString('utf8'));
      if (recorded !== null && recorded.revision >= last.revision) return;
      const written = await this.client
        .if(COMPACTION_LAST_KEY, 'Mod', '==', Number(kv?.mod_revision ?? 0))
        .then(this.client.put(COMPACTION_LAST_KEY).value(JSON.stringify(last)))
        .options(deadline(CALL_TIMEOUT_MS))
        .commit();
      if (written.succeeded) return;
    }
  }

  close(): void {
    this.client.close();
    this.compactClient.close();
  }
}

/** COMPACTION_LAST_KEY's value, or null if it is not one. */
export function readLastCompaction(text: string): LastCompaction | null {
  try {
    const value = JSON.parse(text) as Partial<LastCompaction>;
    if (typeof value.revision !== 'number' || typeof value.at !== 'number') return null;
    return { revision: value.revision, at: value.at, took_ms: Number(value.took_ms ?? 0), by: String(value.by ?? '') };
  } catch {
    return null;
  }
}

function deadline(ms: number): { deadline: number } {
  return { deadline: Date.now() + ms };
}

export type RoundResult =
  | { readonly kind: 'observed' }
  | { readonly kind: 'waiting' }
  /** Another replica claimed a round within this one's interval. */
  | { readonly kind: 'lost' }
  | { readonly kind: 'compacted'; readonly revision: number; readonly tookMs: number }
  /** Claimed, but etcd had already compacted past the candidate. */
  | { readonly kind: 'superseded'; readonly revision: number };

export interface EtcdCompactorOptions {
  /** KEYBRAKE_ETCD_COMPACTION_INTERVAL: history kept, and the time between compactions. */
  readonly intervalMs: number;
  readonly backend: CompactionBackend;
  readonly logger: Logger;
  /** Monotonic milliseconds (performance.now by default). */
  readonly now?: () => number;
  /** This replica's name in COMPACTION_ROUND_KEY / COMPACTION_LAST_KEY (host, pid and a random suffix by default). */
  readonly replica?: string;
}

export class EtcdCompactor {
  private readonly now: () => number;
  private readonly replica: string;
  private memory: CompactionMemory | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private stopped = false;

  constructor(private readonly options: EtcdCompactorOptions) {
    this.now = options.now ?? (() => performance.now());
    this.replica = options.replica ?? `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
  }

  /** Observes now (compacting nothing), then claims a round every interval. */
  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    // A round in flight gets a moment to finish; an unreachable etcd must not hold up shutdown.
    let wait: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise((resolve) => (wait = setTimeout(resolve, STOP_WAIT_MS)))]);
    clearTimeout(wait);
    this.options.backend.close();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.runRound()
        .catch((error: unknown) => {
          this.options.logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'etcd compaction round failed; trying again next interval');
        })
        .finally(() => {
          this.running = null;
          this.schedule(nextRoundDelayMs(this.memory, this.now(), this.options.intervalMs));
        });
    }, delayMs);
    this.timer.unref();
  }

  /** One round: observe, wait, lose, or claim and compact. Exposed for tests. */
  async runRound(): Promise<RoundResult> {
    const step = planCompaction(this.memory, this.now(), this.options.intervalMs);
    const { backend, logger } = this.options;
    if (step.kind === 'wait') return { kind: 'waiting' };
    if (step.kind === 'observe') {
      const answer = await backend.observe();
      this.memory = rememberRound(answer, this.now());
      return { kind: 'observed' };
    }
    const observedAtMs = this.memory!.observedAtMs;
    let answer: RoundAnswer;
    try {
      answer = await backend.claim(step.ifModRevision, this.replica);
    } catch (error) {
      if (!isNoSpaceError(error)) throw error;
      return this.compactWithoutClaim(step.compactTo, observedAtMs);
    }
    this.memory = rememberRound(answer, this.now());
    if (!answer.claimed) {
      logger.debug({ next_candidate: answer.revision }, 'another replica claimed this etcd compaction round');
      return { kind: 'lost' };
    }
    const started = this.now();
    const outcome = await backend.compact(step.compactTo);
    const tookMs = Math.round(this.now() - started);
    if (outcome === 'superseded') {
      logger.debug({ revision: step.compactTo }, 'etcd history was already compacted past this revision');
      return { kind: 'superseded', revision: step.compactTo };
    }
    logger.info({ revision: step.compactTo, took_ms: tookMs, history_kept_s: Math.round((started - observedAtMs) / 1000) }, 'compacted etcd history');
    await backend.record({ revision: step.compactTo, at: Date.now(), took_ms: tookMs, by: this.replica }).catch((error: unknown) => {
      logger.debug({ err: error instanceof Error ? error.message : String(error) }, 'could not record the etcd compaction (the metric lags until the next one)');
    });
    return { kind: 'compacted', revision: step.compactTo, tookMs };
  }

  /**
   * Under etcd's NOSPACE alarm every write is refused, the claim included, but compaction is
   * still accepted, and is the first step out. Each replica then compacts to its own candidate
   * (still at least one interval old, so the window holds; only the one-per-interval economy is
   * lost) until an operator has defragmented and disarmed the alarm.
   */
  private async compactWithoutClaim(compactTo: number, observedAtMs: number): Promise<RoundResult> {
    const { backend, logger } = this.options;
    const started = this.now();
    const outcome = await backend.compact(compactTo);
    const tookMs = Math.round(this.now() - started);
    this.memory = rememberRound(await backend.observe(), this.now());
    if (outcome === 'superseded') return { kind: 'superseded', revision: compactTo };
    logger.warn(
      { revision: compactTo, took_ms: tookMs, history_kept_s: Math.round((started - observedAtMs) / 1000) },
      'compacted etcd history without claiming a round: etcd is out of space (NOSPACE alarm); defragment every member, then etcdctl alarm disarm',
    );
    return { kind: 'compacted', revision: compactTo, tookMs };
  }
}
