import { describe, expect, it, vi } from 'vitest';

import { PolicyCache } from '../../data-plane/policy-cache.js';

describe('PolicyCache.nextKeyUpdate', () => {
  it('leaves nothing behind when a wait times out (an unknown key costs no memory after its answer)', async () => {
    vi.useFakeTimers();
    try {
      const cache = new PolicyCache();
      const waits = Array.from({ length: 50 }, () => cache.nextKeyUpdate(250));
      expect(cache.keyWaiterCount).toBe(50);
      await vi.advanceTimersByTimeAsync(250);
      await Promise.all(waits);
      expect(cache.keyWaiterCount).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('wakes every waiter at the next key update, and lets no more than 1,000 wait at once', async () => {
    vi.useFakeTimers();
    try {
      const cache = new PolicyCache();
      const waits = Array.from({ length: 1200 }, () => cache.nextKeyUpdate(250));
      expect(cache.keyWaiterCount).toBe(1000);
      let settled = 0;
      for (const wait of waits) void wait.then(() => settled++);
      await vi.advanceTimersByTimeAsync(0);
      // The 200 beyond the bound did not wait at all.
      expect(settled).toBe(200);
      cache.applyKey(
        { id: 'vk_x', keyHash: 'h', vendor: 'stripe', label: '', allowedEndpoints: ['POST /v1/charges'], dailyCapMicros: 1, budgetMicros: 0, perCallEstimateMicros: 0, expiresAtUnixMs: Date.now() + 60_000, revoked: false },
        1,
        0,
      );
      await vi.advanceTimersByTimeAsync(0);
      expect(settled).toBe(1200);
      expect(cache.keyWaiterCount).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
