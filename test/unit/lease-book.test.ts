import { describe, expect, it } from 'vitest';

import { LeaseBook, type AccountRef } from '../../data-plane/lease-book.js';

const ACCOUNT: AccountRef = { keyId: 'vk_book000000000000000', window: 'life' };
const TTL_MS = 30_000;

/** A book holding a fresh grant of `micros`, asked for at time 0. */
function granted(micros: number): LeaseBook {
  const book = new LeaseBook({ dataplaneId: 'dp-1', incarnation: 'abc' });
  const [request] = book.requestFor(ACCOUNT, micros / 2, 0);
  if (request === undefined || !('leaseRequest' in request)) throw new Error('expected a lease request');
  const { leaseId, seq } = request.leaseRequest;
  book.onGrant({ keyId: ACCOUNT.keyId, window: ACCOUNT.window, leaseId, seq, grantedTotalMicros: micros, ttlMs: TTL_MS, short: false, refused: '', windowEndsAtUnixMs: 0 }, 1);
  return book;
}

describe('LeaseBook', () => {
  it('gives back a lease unused since its first call instead of extending it (a foreach branch’s key)', () => {
    const book = granted(1000);
    const attempt = book.reserve([ACCOUNT], 400, 10);
    if (!('reservation' in attempt)) throw new Error('expected room');
    book.settle(attempt.reservation, 400);
    // Due for extension (a third of the TTL before the deadline), the last call long ago.
    const outgoing = book.tick(20_000);
    expect(outgoing).toEqual([{ usageReport: expect.objectContaining({ reportedMicros: 400, close: true }) }]);
    expect(book.view(ACCOUNT)).toBeNull();
  });

  it('extends a lease in use', () => {
    const book = granted(1000);
    const attempt = book.reserve([ACCOUNT], 100, 19_000);
    if (!('reservation' in attempt)) throw new Error('expected room');
    book.settle(attempt.reservation, 100);
    expect(book.tick(20_000)).toEqual([{ leaseRequest: expect.objectContaining({ needTotalMicros: 0 }) }]);
  });

  it('never reuses a lease id: a late answer about a lease given back does not count towards the next', () => {
    const book = granted(1000);
    const [closed] = book.tick(20_000);
    if (closed === undefined || !('usageReport' in closed)) throw new Error('expected the lease given back');
    const [request] = book.requestFor(ACCOUNT, 100, 21_000);
    if (request === undefined || !('leaseRequest' in request)) throw new Error('expected a lease request');
    expect(request.leaseRequest.leaseId).not.toBe(closed.usageReport.leaseId);
    // The old lease's answer, late: ignored.
    book.onGrant({ keyId: ACCOUNT.keyId, window: ACCOUNT.window, leaseId: closed.usageReport.leaseId, seq: request.leaseRequest.seq + 1, grantedTotalMicros: 5000, ttlMs: TTL_MS, short: false, refused: '', windowEndsAtUnixMs: 0 }, 21_001);
    expect(book.view(ACCOUNT)?.granted).toBe(0);
  });
});
