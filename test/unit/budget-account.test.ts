import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  checkInvariant,
  emptyAccount,
  expireLeases,
  outstandingMicros,
  reportUsage,
  requestLease,
  unleasedMicros,
  type BudgetAccount,
} from '../../control-plane/budget-account.js';

const ask = (account: BudgetAccount, leaseId: string, seq: number, want: number, need = 0, reported = 0, nowMs = 0) =>
  requestLease(account, { leaseId, holder: leaseId.split('/')[0]!, seq, wantTotalMicros: want, needTotalMicros: need, reportedMicros: reported, nowMs, ttlMs: 30_000 }, 1);

describe('budget accounts', () => {
  it('grants what is wanted while there is room, and never more than the cap', () => {
    const first = ask(emptyAccount(1000), 'dp1/a/1', 1, 400);
    expect(first.lease.grantedMicros).toBe(400);
    const second = ask(first.account, 'dp2/a/1', 1, 900, 700);
    expect(second.lease.grantedMicros).toBe(600);
    expect(second.short).toBe(true);
    expect(unleasedMicros(second.account)).toBe(0);
    expect(second.account.reclaimSeq).toBe(1);
  });

  it('ignores a retried or reordered request (same or lower seq)', () => {
    const once = ask(emptyAccount(1000), 'dp1/a/1', 5, 300).account;
    const again = ask(once, 'dp1/a/1', 5, 900).account;
    const older = ask(once, 'dp1/a/1', 4, 900).account;
    expect(again).toBe(once);
    expect(older).toBe(once);
  });

  it('settles cumulative reports once, however often they arrive', () => {
    let account = ask(emptyAccount(1000), 'dp1/a/1', 1, 500).account;
    account = reportUsage(account, { leaseId: 'dp1/a/1', seq: 2, reportedMicros: 200, keepTotalMicros: null, close: false });
    account = reportUsage(account, { leaseId: 'dp1/a/1', seq: 3, reportedMicros: 200, keepTotalMicros: null, close: false });
    account = reportUsage(account, { leaseId: 'dp1/a/1', seq: 2, reportedMicros: 450, keepTotalMicros: null, close: false });
    expect(account.settledMicros).toBe(200);
    expect(outstandingMicros(account)).toBe(300);
  });

  it('clamps a report to the grant (a holder cannot spend what it was not given)', () => {
    let account = ask(emptyAccount(1000), 'dp1/a/1', 1, 100).account;
    account = reportUsage(account, { leaseId: 'dp1/a/1', seq: 2, reportedMicros: 5000, keepTotalMicros: null, close: false });
    expect(account.settledMicros).toBe(100);
  });

  it('gives back what a holder does not keep, and everything unspent on close', () => {
    let account = ask(emptyAccount(1000), 'dp1/a/1', 1, 800).account;
    account = reportUsage(account, { leaseId: 'dp1/a/1', seq: 2, reportedMicros: 100, keepTotalMicros: 300, close: false });
    expect(account.leases['dp1/a/1']?.grantedMicros).toBe(300);
    expect(unleasedMicros(account)).toBe(700);
    account = reportUsage(account, { leaseId: 'dp1/a/1', seq: 3, reportedMicros: 250, keepTotalMicros: null, close: true });
    expect(account.leases).toEqual({});
    expect(account.settledMicros).toBe(250);
    expect(unleasedMicros(account)).toBe(750);
  });

  it('counts an expired lease’s unreported grant at risk, for good', () => {
    let account = ask(emptyAccount(1000), 'dp1/a/1', 1, 600, 0, 0, 0).account;
    account = reportUsage(account, { leaseId: 'dp1/a/1', seq: 2, reportedMicros: 100, keepTotalMicros: null, close: false });
    expect(expireLeases(account, 30_000 + 5_000, 5_000)).toBe(account);
    account = expireLeases(account, 30_000 + 5_001, 5_000);
    expect(account).toMatchObject({ settledMicros: 100, atRiskMicros: 500, leases: {} });
    expect(unleasedMicros(account)).toBe(400);
    // A late report from the vanished holder changes nothing.
    expect(reportUsage(account, { leaseId: 'dp1/a/1', seq: 3, reportedMicros: 600, keepTotalMicros: null, close: true })).toBe(account);
  });

  it('shares what is left fairly near the cap, but always meets a need that fits', () => {
    let account = ask(emptyAccount(1000), 'dp1/a/1', 1, 700).account;
    const tight = requestLease(account, { leaseId: 'dp2/a/1', holder: 'dp2', seq: 1, wantTotalMicros: 300, needTotalMicros: 50, reportedMicros: 0, nowMs: 0, ttlMs: 1 }, 2);
    expect(tight.lease.grantedMicros).toBe(150);
    account = tight.account;
    const need = requestLease(account, { leaseId: 'dp3/a/1', holder: 'dp3', seq: 1, wantTotalMicros: 150, needTotalMicros: 140, reportedMicros: 0, nowMs: 0, ttlMs: 1 }, 3);
    expect(need.lease.grantedMicros).toBe(140);
  });

  it('keeps the invariant under any sequence of operations', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('ask' as const), holder: fc.integer({ min: 0, max: 3 }), seq: fc.integer({ min: 0, max: 30 }), want: fc.integer({ min: 0, max: 2000 }), need: fc.integer({ min: 0, max: 2000 }), reported: fc.integer({ min: 0, max: 2000 }), now: fc.integer({ min: 0, max: 100_000 }) }),
      fc.record({ kind: fc.constant('report' as const), holder: fc.integer({ min: 0, max: 3 }), seq: fc.integer({ min: 0, max: 30 }), reported: fc.integer({ min: 0, max: 2000 }), keep: fc.option(fc.integer({ min: 0, max: 2000 })), close: fc.boolean() }),
      fc.record({ kind: fc.constant('expire' as const), now: fc.integer({ min: 0, max: 100_000 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        let account = emptyAccount(1000);
        for (const o of ops) {
          if (o.kind === 'ask') {
            account = requestLease(account, { leaseId: `dp${o.holder}/x/1`, holder: `dp${o.holder}`, seq: o.seq, wantTotalMicros: o.want, needTotalMicros: o.need, reportedMicros: o.reported, nowMs: o.now, ttlMs: 10_000 }, 2).account;
          } else if (o.kind === 'report') {
            account = reportUsage(account, { leaseId: `dp${o.holder}/x/1`, seq: o.seq, reportedMicros: o.reported, keepTotalMicros: o.keep, close: o.close });
          } else {
            account = expireLeases(account, o.now, 1000);
          }
          // Throws when settled + at risk + outstanding exceed the cap, or a lease reported more than it was granted.
          checkInvariant(account);
        }
      }),
      { numRuns: 500 },
    );
  });
});
