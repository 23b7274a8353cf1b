/**
 * The reserve stage's asynchronous side. Most calls reserve from a lease already held and
 * never wait; a call that finds too little asks the control plane for more and waits for the
 * answer (other calls on the same account wait for the same answer). When the ledger has no
 * room, one retry after a short pause gives other data planes time to hand back what they do
 * not use; after that the call is refused with 429.
 */
import { ProxyError } from './proxy-error.js';
import { accountId, type AccountRef, type Blocked, type LeaseBook, type Outgoing, type Reservation } from './lease-book.js';

export interface SpendGateOptions {
  readonly book: LeaseBook;
  /** Sends to the control plane; false when no stream is up. */
  readonly send: (messages: readonly Outgoing[]) => boolean;
  readonly now?: () => number;
  readonly wallNow?: () => number;
  /** How long a call may wait for a lease answer before it is refused with 503. */
  readonly answerTimeoutMs?: number;
  /** Pause before asking again after a "short" answer, for reclaims to land. */
  readonly reclaimPauseMs?: number;
}

export class SpendGate {
  private readonly waiters = new Map<string, (() => void)[]>();
  private readonly now: () => number;
  private readonly wallNow: () => number;
  private readonly answerTimeoutMs: number;
  private readonly reclaimPauseMs: number;

  constructor(private readonly options: SpendGateOptions) {
    this.now = options.now ?? (() => performance.now());
    this.wallNow = options.wallNow ?? Date.now;
    this.answerTimeoutMs = options.answerTimeoutMs ?? 2000;
    this.reclaimPauseMs = options.reclaimPauseMs ?? 150;
  }

  /**
   * Reserves `micros` on every account. Synchronous in the common case, the lease already holding
   * room for the call; a promise only when the control plane must be asked (or has refused).
   */
  reserve(refs: readonly AccountRef[], micros: number): Reservation | Promise<Reservation> {
    const attempt = this.options.book.reserve(refs, micros, this.now());
    return 'reservation' in attempt ? this.taken(attempt) : this.waitForRoom(refs, micros, attempt.blocked);
  }

  private taken(attempt: { reservation: Reservation; outgoing: Outgoing[] }): Reservation {
    if (attempt.outgoing.length > 0) this.options.send(attempt.outgoing);
    return attempt.reservation;
  }

  private async waitForRoom(refs: readonly AccountRef[], micros: number, firstBlock: Blocked): Promise<Reservation> {
    // Keep trying until an answer says the cap is short (429) or the control plane is silent
    // for too long (503). A call is never refused for the cap unless the ledger said so.
    const deadline = this.now() + this.answerTimeoutMs;
    let shortRounds = 0;
    for (let blocked = firstBlock; ; ) {
      if (blocked.reason === 'refused') throw refusal(blocked.refused);
      if (blocked.reason === 'short') {
        shortRounds++;
        if (shortRounds > 1) throw capExceeded(blocked.windowEndsAtMs, this.wallNow());
        // Other data planes are being asked to give back what they do not use: ask again shortly.
        await sleep(this.reclaimPauseMs);
      }
      const left = deadline - this.now();
      if (left <= 0) throw new ProxyError('control_plane_unavailable', `no lease answer from the control plane within ${this.answerTimeoutMs} ms; nothing was forwarded`);
      const messages = this.options.book.requestFor(blocked.account, micros, this.now());
      if (messages.length > 0 && !this.options.send(messages)) {
        throw new ProxyError('control_plane_unavailable', 'no leased budget left for this key and no control plane reachable; nothing was forwarded');
      }
      if (!(await this.answer(blocked.account, left))) {
        throw new ProxyError('control_plane_unavailable', `no lease answer from the control plane within ${this.answerTimeoutMs} ms; nothing was forwarded`);
      }
      const attempt = this.options.book.reserve(refs, micros, this.now());
      if ('reservation' in attempt) return this.taken(attempt);
      blocked = attempt.blocked;
    }
  }

  settle(reservation: Reservation, actualMicros: number): void {
    this.options.book.settle(reservation, actualMicros);
  }

  release(reservation: Reservation): void {
    this.options.book.release(reservation);
  }

  /** Called by the control-plane link after it applied a grant to the book. */
  answered(ref: AccountRef): void {
    const list = this.waiters.get(accountId(ref));
    if (list === undefined) return;
    this.waiters.delete(accountId(ref));
    for (const wake of list) wake();
  }

  private answer(ref: AccountRef, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const id = accountId(ref);
      const timer = setTimeout(() => {
        const list = this.waiters.get(id);
        if (list !== undefined) this.waiters.set(id, list.filter((w) => w !== wake));
        resolve(false);
      }, timeoutMs);
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const list = this.waiters.get(id) ?? [];
      list.push(wake);
      this.waiters.set(id, list);
    });
  }
}

function refusal(reason: string): ProxyError {
  switch (reason) {
    case 'key_revoked':
      return new ProxyError('vault_key_revoked', 'this vault key was revoked');
    case 'key_expired':
      return new ProxyError('vault_key_expired', 'this vault key has expired');
    case 'key_unknown':
      return new ProxyError('vault_key_invalid', 'unknown vault key');
    default:
      return new ProxyError('control_plane_unavailable', `the control plane refused a lease (${reason}); nothing was forwarded`);
  }
}

function capExceeded(windowEndsAtMs: number, wallNowMs: number): ProxyError {
  const retryAfterSeconds = windowEndsAtMs > 0 ? Math.max(1, Math.ceil((windowEndsAtMs - wallNowMs) / 1000)) : undefined;
  const detail = windowEndsAtMs > 0 ? `; the daily window resets at ${new Date(windowEndsAtMs).toISOString()}` : '';
  return new ProxyError('spend_cap_exceeded', `the vault key's cap has no room for this call${detail}`, retryAfterSeconds === undefined ? {} : { retryAfterSeconds });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
