import { describe, expect, it } from 'vitest';

import { MemoryBudgetLedger } from '../../control-plane/budget-ledger.js';
import { LeaseService } from '../../control-plane/lease-service.js';
import { silentLogger } from '../../core/logger.js';
import type { KeyPolicy, LeaseRequest } from '../../gen/keybrake/v1/dataplane.js';

const policy = async (id: string): Promise<KeyPolicy> => ({
  id, keyHash: 'h', vendor: 'stripe', label: '', allowedEndpoints: [], dailyCapMicros: 0, budgetMicros: 100_000_000, expiresAtUnixMs: 1e15, revoked: false, perCallEstimateMicros: 0, revision: 0,
});
const request = (keyId: string): LeaseRequest => ({
  keyId, window: 'life', leaseId: 'dp-1/inc/0', seq: 1, wantTotalMicros: 10_000_000, needTotalMicros: 10_000_000, reportedMicros: 0,
});

/** A ledger that counts full reads (walks) and the pages they read. */
class CountingLedger extends MemoryBudgetLedger {
  fullReads = 0;
  pages = 0;
  override async walkAccounts(visit: Parameters<MemoryBudgetLedger['walkAccounts']>[0]) {
    this.fullReads++;
    return super.walkAccounts((page) => {
      this.pages++;
      return visit(page);
    });
  }
}

describe('LeaseService.sweep', () => {
  it('reads the whole ledger only now and then, and still expires a silent holder on time', async () => {
    const ledger = new CountingLedger({ pageSize: 20 });
    let now = 1_000_000;
    const service = new LeaseService({ ledger, keyPolicy: policy, ttlMs: 3000, expiryMarginMs: 1000, logger: silentLogger, now: () => now, fullSweepIntervalMs: 600_000 });
    // Many idle accounts (the ledger of yesterday's keys), and one lease granted through this service.
    for (let i = 0; i < 50; i++) await ledger.update(`vk_idle${i}`, 'life', () => ({ capMicros: 1, settledMicros: 1, atRiskMicros: 0, leases: {}, reclaimSeq: 0 }), (a) => ({ ...a }));
    await service.sweep();
    expect(ledger.fullReads).toBe(1);
    // 50 accounts, 20 a page.
    expect(ledger.pages).toBe(3);
    const grant = await service.handleLeaseRequest('dp-1', request('vk_busy'));
    expect(grant.grantedTotalMicros).toBe(10_000_000);

    now += 3000; // at the deadline: within the margin
    expect(await service.sweep()).toBe(0);
    now += 1001; // past deadline + margin
    expect(await service.sweep()).toBe(1);
    expect((await ledger.read('vk_busy', 'life'))!.atRiskMicros).toBe(10_000_000);
    expect(ledger.fullReads).toBe(1);

    now += 600_000;
    await service.sweep();
    expect(ledger.fullReads).toBe(2);
  });

  it('finds a lease on any page of the full read', async () => {
    const ledger = new CountingLedger({ pageSize: 7 });
    let now = 1_000_000;
    const service = new LeaseService({ ledger, keyPolicy: policy, ttlMs: 3000, expiryMarginMs: 1000, logger: silentLogger, now: () => now });
    for (let i = 0; i < 30; i++) await ledger.update(`vk_idle${String(i).padStart(2, '0')}`, 'life', () => ({ capMicros: 1, settledMicros: 1, atRiskMicros: 0, leases: {}, reclaimSeq: 0 }), (a) => ({ ...a }));
    // Granted by another replica this one never heard from: it sorts after every idle account.
    await ledger.update('vk_zz_leased', 'life', () => ({ capMicros: 100_000_000, settledMicros: 0, atRiskMicros: 0, leases: {}, reclaimSeq: 0 }), (a) => ({
      ...a, leases: { 'dp-9/inc/0': { holder: 'dp-9', grantedMicros: 5_000_000, reportedMicros: 0, expiresAtMs: now + 3000, lastSeq: 1 } },
    }));
    now += 5000;
    expect(await service.sweep()).toBe(1);
    expect(ledger.pages).toBe(5);
    expect((await ledger.read('vk_zz_leased', 'life'))!.atRiskMicros).toBe(5_000_000);
  });

  it("learns of another replica's lease from the ledger watch", async () => {
    const ledger = new MemoryBudgetLedger();
    let now = 1_000_000;
    const make = () => new LeaseService({ ledger, keyPolicy: policy, ttlMs: 3000, expiryMarginMs: 1000, logger: silentLogger, now: () => now });
    const [granting, sweeping] = [make(), make()];
    await sweeping.sweep(); // its full read happens before the lease exists
    const stop = await ledger.watch((stored) => sweeping.observe(stored));
    await granting.handleLeaseRequest('dp-1', request('vk_other'));
    now += 5000;
    expect(await sweeping.sweep()).toBe(1);
    await stop();
  });
});
