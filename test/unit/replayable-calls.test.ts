import { describe, expect, it } from 'vitest';

import { GenerationalMap } from '../../core/generational-map.js';
import { PricedIntents } from '../../data-plane/priced-intents.js';
import { ReplayableCalls } from '../../data-plane/replayable-calls.js';

const credential = { secret: 'sk_test_a', accountSid: '' };
const HOUR = 3_600_000;

describe('ReplayableCalls', () => {
  it('knows a call by key, method, path and Idempotency-Key, for 23 hours', () => {
    const calls = new ReplayableCalls();
    calls.remember('vk_1', credential, 'POST', '/v1/charges', 'order-1', 0);
    expect(calls.has('vk_1', credential, 'POST', '/v1/charges', 'order-1', 23 * HOUR - 1)).toBe(true);
    expect(calls.has('vk_1', credential, 'POST', '/v1/charges', 'order-1', 23 * HOUR)).toBe(false);
    expect(calls.has('vk_2', credential, 'POST', '/v1/charges', 'order-1', 1)).toBe(false);
    expect(calls.has('vk_1', credential, 'POST', '/v1/refunds', 'order-1', 1)).toBe(false);
    expect(calls.has('vk_1', credential, 'POST', '/v1/charges', 'order-2', 1)).toBe(false);
  });

  it('forgets it when the Stripe credential was replaced (it may be another account)', () => {
    const calls = new ReplayableCalls();
    calls.remember('vk_1', credential, 'POST', '/v1/charges', 'order-1', 0);
    expect(calls.has('vk_1', { ...credential }, 'POST', '/v1/charges', 'order-1', 1)).toBe(false);
  });

  it('keeps at most its capacity, dropping the oldest', () => {
    const calls = new ReplayableCalls(2);
    for (const key of ['a', 'b', 'c']) calls.remember('vk_1', credential, 'POST', '/v1/charges', key, 0);
    expect(['a', 'b', 'c'].map((key) => calls.has('vk_1', credential, 'POST', '/v1/charges', key, 1))).toEqual([false, true, true]);
  });
});

describe('PricedIntents', () => {
  it('keeps the latest intents per key, counts each once, and drops the oldest generation whole', () => {
    const intents = new PricedIntents(4);
    for (const id of ['pi_1', 'pi_2', 'pi_2', 'pi_3']) intents.remember('vk_1', id, 100);
    expect(intents.size).toBe(3);
    expect(intents.pricedMicros('vk_1', 'pi_1')).toBe(100);
    expect(intents.pricedMicros('vk_2', 'pi_1')).toBeUndefined();
    for (const id of ['pi_4', 'pi_5']) intents.remember('vk_1', id, 200);
    expect(['pi_1', 'pi_2', 'pi_3', 'pi_4', 'pi_5'].map((id) => intents.pricedMicros('vk_1', id))).toEqual([undefined, undefined, 100, 200, 200]);
  });
});

describe('GenerationalMap', () => {
  it('keeps the newest half of its capacity at least, never more than its capacity', () => {
    const map = new GenerationalMap<number>(4);
    for (let i = 1; i <= 7; i++) map.set(`k${i}`, i);
    // Generations of 2: {k5, k6} then {k7}; k1-k4 are gone.
    expect([1, 2, 3, 4, 5, 6, 7].map((i) => map.get(`k${i}`))).toEqual([undefined, undefined, undefined, undefined, 5, 6, 7]);
    expect(map.size).toBe(3);
    map.set('k5', 50); // a newer value for an older entry
    expect(map.get('k5')).toBe(50);
    expect(map.size).toBe(3);
    map.clear();
    expect(map.has('k7')).toBe(false);
  });
});
