/**
 * The local audit spool. Every record is written (one JSON line) before the caller gets its
 * answer: answers wait in `afterWrite` until the lines appended in the same turn of the event
 * loop have gone out in one synchronous write (a group commit: one write per turn, not per call).
 * A written line is in the kernel's page cache, so it survives kill -9 of this process (not a
 * power cut: there is no fsync). Records stay until
 * the control plane acknowledges that PostgreSQL has them; on start, every segment left by an
 * earlier incarnation is replayed. Segments are deleted once every record in them is acked.
 * Pending records are kept as their spooled line, which is also what is shipped: a record is
 * serialised once, and nothing but a string per record waits in memory for its ack.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import { boundAuditRecord } from '../core/audit-record-bounds.js';
import type { AuditRecord } from '../gen/keybrake/v1/dataplane.js';

export interface AuditSpoolOptions {
  readonly dir: string;
  readonly incarnation: string;
  /** Above this many unacknowledged bytes the data plane stops forwarding. */
  readonly maxBytes: number;
  /** A segment is closed and a new one started past this size. */
  readonly segmentBytes?: number;
}

interface Segment {
  readonly path: string;
  readonly incarnation: string;
  lastSeq: number;
  bytes: number;
}

/** A spooled record not yet acknowledged: its line (JSON and a newline) and what acks name. */
export interface SpooledRecord {
  readonly line: string;
  readonly incarnation: string;
  readonly seq: number;
  readonly bytes: number;
}

const SEGMENT_NAME = /^([0-9a-f]+)\.(\d{12})\.jsonl$/;

export class AuditSpool {
  private readonly segments: Segment[] = [];
  private pending: SpooledRecord[] = [];
  private readonly acked = new Map<string, number>();
  private active: { fd: number; segment: Segment } | null = null;
  private nextSeq = 1;
  private unackedBytes = 0;
  private readonly segmentBytes: number;
  /** Lines appended but not yet written, and the answers waiting for them. */
  private unwritten: string[] = [];
  private waiting: ((error: Error | null) => void)[] = [];
  private writeScheduled = false;

  private constructor(private readonly options: AuditSpoolOptions) {
    this.segmentBytes = options.segmentBytes ?? 4 * 1024 * 1024;
  }

  /** Opens the spool directory and loads what earlier incarnations left unacknowledged. */
  static open(options: AuditSpoolOptions): AuditSpool {
    mkdirSync(options.dir, { recursive: true });
    const spool = new AuditSpool(options);
    const names = readdirSync(options.dir).filter((n) => SEGMENT_NAME.test(n)).sort();
    for (const name of names) {
      const [, incarnation = ''] = SEGMENT_NAME.exec(name)!;
      const path = join(options.dir, name);
      const segment: Segment = { path, incarnation, lastSeq: 0, bytes: 0 };
      // A line cut short by a crash can only be the last one, and its call was never answered.
      for (const line of readFileSync(path, 'utf8').split('\n')) {
        if (line === '') continue;
        let record: AuditRecord;
        try {
          record = JSON.parse(line) as AuditRecord;
        } catch {
          continue;
        }
        const bytes = Buffer.byteLength(line) + 1;
        spool.pending.push({ line: `${line}\n`, incarnation: record.incarnation, seq: record.seq, bytes });
        spool.unackedBytes += bytes;
        segment.lastSeq = Math.max(segment.lastSeq, record.seq);
        segment.bytes += bytes;
      }
      spool.segments.push(segment);
    }
    return spool;
  }

  /**
   * Numbers the record in place (its `seq` and `incarnation` are set here; the caller's draft
   * is not copied on the request path) and keeps its line for writing and shipping; `afterWrite`
   * or `flush` writes it.
   */
  append(record: AuditRecord): AuditRecord {
    // Every field storable, whatever a caller or a vendor put in it (core/audit-record-bounds.ts).
    boundAuditRecord(record);
    record.seq = this.nextSeq;
    record.incarnation = this.options.incarnation;
    const line = `${JSON.stringify(record)}\n`;
    const bytes = Buffer.byteLength(line);
    const active = this.activeSegment(bytes);
    this.unwritten.push(line);
    this.nextSeq++;
    active.segment.lastSeq = record.seq;
    active.segment.bytes += bytes;
    this.pending.push({ line, incarnation: record.incarnation, seq: record.seq, bytes });
    this.unackedBytes += bytes;
    return record;
  }

  /**
   * Calls `done` once every record appended so far is written: at the end of this turn of the
   * event loop, together with whatever else was appended in it. `done` gets the write's error, if
   * it failed (the records are still shipped from memory).
   */
  afterWrite(done: (error: Error | null) => void): void {
    this.waiting.push(done);
    if (this.writeScheduled) return;
    this.writeScheduled = true;
    setImmediate(() => {
      this.writeScheduled = false;
      let failure: Error | null = null;
      try {
        this.flush();
      } catch (error) {
        failure = error instanceof Error ? error : new Error(String(error));
      }
      const waiting = this.waiting;
      this.waiting = [];
      // Callbacks must not throw; if one does, the others in this batch still get their turn.
      for (const callback of waiting) {
        try {
          callback(failure);
        } catch (error) {
          process.emitWarning(`an audit afterWrite callback threw: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    });
  }

  /** Writes every appended line now, in one write. Throws if the write fails (those lines are not retried). */
  flush(): void {
    if (this.unwritten.length === 0 || this.active === null) return;
    const text = this.unwritten.length === 1 ? this.unwritten[0]! : this.unwritten.join('');
    this.unwritten = [];
    writeSync(this.active.fd, text);
  }

  /** Past half of what it may hold: refusals that name no known key stop getting records of their own. */
  isHalfFull(): boolean {
    return this.unackedBytes * 2 >= this.options.maxBytes;
  }

  /** True when forwarding must stop: the spool holds as much unacknowledged audit as it may. */
  isFull(): boolean {
    return this.unackedBytes >= this.options.maxBytes;
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  get pendingBytes(): number {
    return this.unackedBytes;
  }

  /** Records not yet acknowledged, oldest first, from `offset`. */
  unacked(offset: number, limit: number): readonly SpooledRecord[] {
    return this.pending.slice(offset, offset + limit);
  }

  /** PostgreSQL has every record of `incarnation` up to `upToSeq`: forget them. Returns how many were dropped. */
  ack(incarnation: string, upToSeq: number): number {
    if (upToSeq <= (this.acked.get(incarnation) ?? 0)) return 0;
    this.acked.set(incarnation, upToSeq);
    const isDone = (entry: SpooledRecord) => entry.incarnation === incarnation && entry.seq <= upToSeq;
    // Acks nearly always cover the oldest records: drop them from the front. Only while an
    // earlier incarnation's replayed records sit in front is a full pass needed.
    let front = 0;
    while (front < this.pending.length && isDone(this.pending[front]!)) this.unackedBytes -= this.pending[front++]!.bytes;
    let dropped = front;
    if (front > 0) this.pending.splice(0, front);
    const head = this.pending[0];
    if (head !== undefined && head.incarnation !== incarnation && this.pending.some(isDone)) {
      const before = this.pending.length;
      this.pending = this.pending.filter((entry) => {
        if (isDone(entry)) this.unackedBytes -= entry.bytes;
        return !isDone(entry);
      });
      dropped += before - this.pending.length;
    }
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const segment = this.segments[i]!;
      if (segment.incarnation !== incarnation || segment.lastSeq > upToSeq || this.active?.segment === segment) continue;
      unlinkSync(segment.path);
      this.segments.splice(i, 1);
    }
    return dropped;
  }

  close(): void {
    this.flush();
    if (this.active !== null) closeSync(this.active.fd);
    this.active = null;
  }

  private activeSegment(nextBytes: number): { fd: number; segment: Segment } {
    if (this.active !== null && this.active.segment.bytes + nextBytes <= this.segmentBytes) return this.active;
    if (this.active !== null) {
      // What was appended belongs in the segment being closed.
      this.flush();
      closeSync(this.active.fd);
      const closed = this.active.segment;
      this.active = null;
      // A closed segment whose records were all acked while it was active can go now.
      if (closed.lastSeq <= (this.acked.get(closed.incarnation) ?? 0)) {
        unlinkSync(closed.path);
        this.segments.splice(this.segments.indexOf(closed), 1);
      }
    }
    const path = join(this.options.dir, `${this.options.incarnation}.${String(this.nextSeq).padStart(12, '0')}.jsonl`);
    const fd = openSync(path, 'a', 0o600);
    const segment: Segment = { path, incarnation: this.options.incarnation, lastSeq: 0, bytes: fstatSync(fd).size };
    this.segments.push(segment);
    this.active = { fd, segment };
    return this.active;
  }
}
