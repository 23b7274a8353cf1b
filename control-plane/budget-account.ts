/**
 * The authoritative budget of one vault key in one window (a UTC day for a daily cap, or the
 * key's lifetime for a budget), and the pure rules that change it. etcd stores one account per
 * (key, window); every change is one of the functions below applied under a compare-and-swap.
 *
 * The invariant, checked after every change:  settled + atRisk + Σ outstanding(lease) <= cap
 * where outstanding = granted - reported. A data plane spends only within what it was granted,
 * so the money all data planes can accept never exceeds the cap.
 *
 * Every request names a lease (data plane, incarnation and an epoch the data plane bumps when it
 * gives a lease up for lost) and carries that holder's sequence number; a request with a sequence not above the lease's last one is a
 * retry or a duplicate and changes nothing. Amounts sent up are cumulative totals, not deltas,
 * so applying one twice is harmless too.
 */

export interface Lease {
  /** The data plane (KEYBRAKE_DATAPLANE_ID) holding it. */
  readonly holder: string;
  /** Total ever granted to this lease. */
  readonly grantedMicros: number;
  /** Total the holder has reported as spent (settled) from it. */
  readonly reportedMicros: number;
  /** After this (control-plane wall clock) the lease is expired: its unreported part is at risk. */
  readonly expiresAtMs: number;
  readonly lastSeq: number;
}

export interface BudgetAccount {
  readonly capMicros: number;
  /** Reported spend of leases that are gone (returned or expired) plus reported spend of live ones. */
  readonly settledMicros: number;
  /** Granted but never reported by a holder that vanished: counted as spent, never granted again. */
  readonly atRiskMicros: number;
  readonly leases: Readonly<Record<string, Lease>>;
  /** Bumped when a holder needs more than is unleased: other holders are asked to return what they do not use. */
  readonly reclaimSeq: number;
}

export function emptyAccount(capMicros: number): BudgetAccount {
  return { capMicros, settledMicros: 0, atRiskMicros: 0, leases: {}, reclaimSeq: 0 };
}

export function outstandingMicros(account: BudgetAccount): number {
  let total = 0;
  for (const lease of Object.values(account.leases)) total += lease.grantedMicros - lease.reportedMicros;
  return total;
}

export function activeHolders(account: BudgetAccount): number {
  return new Set(Object.values(account.leases).map((lease) => lease.holder)).size;
}

/** What can still be granted. */
export function unleasedMicros(account: BudgetAccount): number {
  return account.capMicros - account.settledMicros - account.atRiskMicros - outstandingMicros(account);
}

export interface LeaseRequest {
  readonly leaseId: string;
  readonly holder: string;
  readonly seq: number;
  /** The granted total the holder would like (absolute, so a retry asks for the same thing). */
  readonly wantTotalMicros: number;
  /** The smallest grant worth having: the call waiting for it. 0 for a prefetch or an extension. */
  readonly needTotalMicros: number;
  /** Cumulative spend the holder has settled from this lease. */
  readonly reportedMicros: number;
  readonly nowMs: number;
  readonly ttlMs: number;
}

export interface LeaseOutcome {
  readonly account: BudgetAccount;
  readonly lease: Lease;
  /** True when the holder's need could not be met even after granting everything unleased. */
  readonly short: boolean;
}

/**
 * Grants up to the wanted total, extends the lease's expiry, and settles the reported spend.
 * Near the cap a holder gets at most a fair share of what is left (but always its need, if
 * there is room for it), so one busy holder cannot strand the budget.
 */
export function requestLease(account: BudgetAccount, request: LeaseRequest, activeHolders: number): LeaseOutcome {
  const id = request.leaseId;
  const existing = account.leases[id];
  if (existing !== undefined && request.seq <= existing.lastSeq) return { account, lease: existing, short: false };

  const reported = clampReport(existing, request.reportedMicros);
  const base: Lease = existing ?? { holder: request.holder, grantedMicros: 0, reportedMicros: 0, expiresAtMs: 0, lastSeq: 0 };
  const settledDelta = reported - base.reportedMicros;
  let next: BudgetAccount = { ...account, settledMicros: account.settledMicros + settledDelta, leases: { ...account.leases, [id]: { ...base, reportedMicros: reported } } };

  const current = next.leases[id]!;
  const room = unleasedMicros(next);
  const wanted = Math.max(0, request.wantTotalMicros - current.grantedMicros);
  const needed = Math.max(0, request.needTotalMicros - current.grantedMicros);
  const fairShare = Math.floor(room / Math.max(1, activeHolders));
  // Plenty left: grant what is wanted. Getting tight: a fair share, but never less than the need.
  const tight = wanted > fairShare;
  let grant = tight ? Math.max(Math.min(needed, room), Math.min(wanted, fairShare)) : wanted;
  grant = Math.max(0, Math.min(grant, room));
  const short = needed > room;

  const lease: Lease = { ...current, grantedMicros: current.grantedMicros + grant, expiresAtMs: request.nowMs + request.ttlMs, lastSeq: request.seq };
  // Short while others sit on unspent grants: ask them (through every control plane's watch) to give some back.
  const othersOutstanding = outstandingMicros(next) - (current.grantedMicros - current.reportedMicros);
  const reclaimSeq = short && othersOutstanding > 0 ? next.reclaimSeq + 1 : next.reclaimSeq;
  next = { ...next, leases: { ...next.leases, [id]: lease }, reclaimSeq };
  return { account: next, lease, short };
}

export interface ReportRequest {
  readonly leaseId: string;
  readonly seq: number;
  readonly reportedMicros: number;
  /** The grant the holder keeps; the rest goes back (a return). null keeps the grant as is. */
  readonly keepTotalMicros: number | null;
  /** True when the holder is done with the lease (clean shutdown, idle, key revoked). */
  readonly close: boolean;
}

/** Settles reported spend and gives back what the holder no longer needs. */
export function reportUsage(account: BudgetAccount, request: ReportRequest): BudgetAccount {
  const id = request.leaseId;
  const existing = account.leases[id];
  if (existing === undefined || request.seq <= existing.lastSeq) return account;
  const reported = clampReport(existing, request.reportedMicros);
  const settledMicros = account.settledMicros + (reported - existing.reportedMicros);
  if (request.close) {
    const { [id]: _closed, ...rest } = account.leases;
    return { ...account, settledMicros, leases: rest };
  }
  const keep = request.keepTotalMicros === null ? existing.grantedMicros : Math.max(reported, Math.min(existing.grantedMicros, request.keepTotalMicros));
  return { ...account, settledMicros, leases: { ...account.leases, [id]: { ...existing, reportedMicros: reported, grantedMicros: keep, lastSeq: request.seq } } };
}

/**
 * Leases whose holders went silent past their expiry (plus a margin for clock drift): what they
 * never reported stays counted, as at-risk spend, and is never granted again automatically.
 */
export function expireLeases(account: BudgetAccount, nowMs: number, marginMs: number): BudgetAccount {
  let changed = false;
  let atRiskMicros = account.atRiskMicros;
  const leases: Record<string, Lease> = {};
  for (const [id, lease] of Object.entries(account.leases)) {
    if (nowMs > lease.expiresAtMs + marginMs) {
      atRiskMicros += lease.grantedMicros - lease.reportedMicros;
      changed = true;
      // Its reported part is already in settledMicros.
    } else {
      leases[id] = lease;
    }
  }
  return changed ? { ...account, atRiskMicros, leases } : account;
}

export function checkInvariant(account: BudgetAccount): void {
  if (unleasedMicros(account) < 0) {
    throw new Error(`budget invariant broken: cap ${account.capMicros} < settled ${account.settledMicros} + at risk ${account.atRiskMicros} + outstanding ${outstandingMicros(account)}`);
  }
  for (const [id, lease] of Object.entries(account.leases)) {
    if (lease.reportedMicros > lease.grantedMicros) throw new Error(`lease ${id} reported ${lease.reportedMicros} > granted ${lease.grantedMicros}`);
  }
}

/** A holder can never have spent more than it was granted, nor less than it said before. */
function clampReport(lease: Lease | undefined, reported: number): number {
  if (lease === undefined) return 0;
  return Math.max(lease.reportedMicros, Math.min(reported, lease.grantedMicros));
}
