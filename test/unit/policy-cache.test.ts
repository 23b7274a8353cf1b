/**
 * The data plane's policy cache: keys loaded when first presented (lookups batched, answered by
 * a scripted control plane), known-unknown and forged keys answered without a lookup, pushed
 * changes never undone by an older lookup, idle keys dropped, held keys looked up again on a new
 * stream, and nothing left behind by lookups that time out.
 */
import { createHmac, randomBytes } from 'node:crypto';

import { afterEach, describe, expect, it, vi } from 'vitest';

import { generateSecret, generateTaggedVaultKey, vaultKeyTagKey } from '../../core/secret-format.js';
import type { KeyPolicy } from '../../gen/keybrake/v1/dataplane.js';
import { PolicyCache, type Resolution } from '../../data-plane/policy-cache.js';

const pepper = randomBytes(32);
const tagKey = vaultKeyTagKey(pepper);
const hashOf = (vaultKey: string) => createHmac('sha256', pepper).update(vaultKey).digest('hex');

function policy(vaultKey: string, change: Partial<KeyPolicy> = {}): KeyPolicy {
  return {
    id: `vk_${hashOf(vaultKey).slice(0, 20)}`, keyHash: hashOf(vaultKey), vendor: 'stripe', label: 'l', allowedEndpoints: ['POST /v1/charges'],
    dailyCapMicros: 1_000_000, budgetMicros: 0, expiresAtUnixMs: Date.now() + 60_000, revoked: false, perCallEstimateMicros: 0, revision: 10, ...change,
  };
}

/** A cache whose lookups are recorded, not answered: the test answers them. */
function scripted() {
  const lookups: string[][] = [];
  const cache = new PolicyCache({ sendLookup: (hashes) => (lookups.push([...hashes]), true), lookupTimeoutMs: 2000, idleMs: 60_000 });
  cache.welcome(pepper, 0);
  cache.applySnapshot({ keys: [], secrets: [], revision: 1 }, 0);
  lookups.length = 0;
  return { cache, lookups };
}

const answerOf = async (resolution: Resolution) => {
  if (resolution.kind !== 'pending') return resolution.kind === 'key' ? resolution.key : resolution.kind;
  return resolution.answer;
};
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

afterEach(() => {
  vi.useRealTimers();
});

describe('PolicyCache: keys loaded on first sight', () => {
  it('looks up the keys presented in one turn in one message, then serves them without asking', async () => {
    const { cache, lookups } = scripted();
    const keys = Array.from({ length: 3 }, () => generateTaggedVaultKey(tagKey));
    const pending = keys.map((key) => cache.resolve(key, 0));
    expect(pending.map((p) => p.kind)).toEqual(['pending', 'pending', 'pending']);
    // The same key presented again while its lookup is out shares it.
    expect(cache.resolve(keys[0]!, 0).kind).toBe('pending');
    await nextTurn();
    expect(lookups).toEqual([keys.map(hashOf)]);
    cache.applyLookupResult({ keys: keys.map((key) => policy(key)), unknownKeyHashes: [], pricedIntents: [], failedKeyHashes: [] }, 1);
    expect((await Promise.all(pending.map(answerOf))).map((k) => (typeof k === 'string' ? k : k.policy.keyHash))).toEqual(keys.map(hashOf));
    expect(cache.resolve(keys[1]!, 2)).toMatchObject({ kind: 'key' });
    await nextTurn();
    expect(lookups).toHaveLength(1);
    expect(cache.keyCount).toBe(3);
  });

  it('remembers a key that does not exist, and asks no more about it', async () => {
    const { cache, lookups } = scripted();
    const key = generateTaggedVaultKey(tagKey);
    const first = cache.resolve(key, 0);
    await nextTurn();
    cache.applyLookupResult({ keys: [], unknownKeyHashes: [hashOf(key)], pricedIntents: [], failedKeyHashes: [] }, 1);
    expect(await answerOf(first)).toBe('unknown');
    for (let i = 0; i < 100; i++) expect(cache.resolve(key, 2).kind).toBe('unknown');
    await nextTurn();
    expect(lookups).toHaveLength(1);
  });

  it('refuses forged keys (valid checksum, no valid tag) without a lookup beyond a small rate, and malformed ones outright', async () => {
    const { cache, lookups } = scripted();
    const forged = Array.from({ length: 500 }, () => generateTaggedVaultKey(vaultKeyTagKey(randomBytes(32))));
    const kinds = forged.map((key) => cache.resolve(key, 0).kind);
    // Keys from before tags existed look the same: a handful per second may still be looked up.
    expect(kinds.filter((k) => k === 'pending').length).toBeLessThanOrEqual(20);
    expect(kinds.filter((k) => k === 'unknown').length).toBeGreaterThanOrEqual(480);
    expect(cache.resolve('kbv_not-a-key', 0).kind).toBe('malformed');
    expect(cache.resolve(`${generateSecret('vaultKey').slice(0, -1)}x`, 0).kind).toBe('malformed');
    await nextTurn();
    expect(lookups.flat().length).toBeLessThanOrEqual(20);
  });

  it('fails closed when a lookup cannot be sent, is answered as failed, or is not answered in time; nothing stays behind', async () => {
    vi.useFakeTimers();
    const { cache, lookups } = scripted();
    const late = cache.resolve(generateTaggedVaultKey(tagKey), 0);
    const failed = generateTaggedVaultKey(tagKey);
    const failedAnswer = cache.resolve(failed, 0);
    await vi.advanceTimersByTimeAsync(0);
    cache.applyLookupResult({ keys: [], unknownKeyHashes: [], pricedIntents: [], failedKeyHashes: [hashOf(failed)] }, 1);
    expect(await answerOf(failedAnswer)).toBe('unavailable');
    await vi.advanceTimersByTimeAsync(2000);
    expect(await answerOf(late)).toBe('unavailable');
    expect(cache.pendingLookups).toBe(0);
    expect(lookups).toHaveLength(1);
    const offline = new PolicyCache({ sendLookup: () => false });
    offline.welcome(pepper, 0);
    const refused = offline.resolve(generateTaggedVaultKey(tagKey), 0);
    await vi.advanceTimersByTimeAsync(0);
    expect(await answerOf(refused)).toBe('unavailable');
    expect(offline.pendingLookups).toBe(0);
  });

  it('lets at most 10,000 lookups wait at once', async () => {
    const { cache } = scripted();
    const kinds = Array.from({ length: 10_050 }, () => cache.resolve(generateTaggedVaultKey(tagKey), 0));
    expect(cache.pendingLookups).toBe(10_000);
    expect(await answerOf(kinds.at(-1)!)).toBe('unavailable');
  });
});

describe('PolicyCache: changes', () => {
  it('never lets a lookup answered from an older read undo a revocation pushed meanwhile', async () => {
    const { cache } = scripted();
    const key = generateTaggedVaultKey(tagKey);
    const pending = cache.resolve(key, 0);
    await nextTurn();
    // The revocation commits (revision 12) after the control plane read the key (revision 10)…
    cache.applyKey(policy(key, { revoked: true, revision: 12 }), 12, 1);
    // …and its answer arrives after the push.
    cache.applyLookupResult({ keys: [policy(key, { revision: 10 })], unknownKeyHashes: [], pricedIntents: [], failedKeyHashes: [] }, 2);
    const answer = await answerOf(pending);
    expect(typeof answer !== 'string' && answer.policy.revoked).toBe(true);
    expect(cache.peek(key)?.policy.revoked).toBe(true);
  });

  it('applies changes to held keys, ignores older ones, and forgets removed keys as unknown', async () => {
    const { cache, lookups } = scripted();
    const key = generateTaggedVaultKey(tagKey);
    cache.resolve(key, 0);
    await nextTurn();
    cache.applyLookupResult({ keys: [policy(key)], unknownKeyHashes: [], pricedIntents: [], failedKeyHashes: [] }, 1);
    cache.applyKey(policy(key, { revoked: true, revision: 11 }), 11, 2);
    cache.applyKey(policy(key, { revoked: false, revision: 9 }), 9, 3);
    expect(cache.peek(key)?.policy.revoked).toBe(true);
    cache.applyKeyRemoval(policy(key).id, hashOf(key), 13, 4);
    expect(cache.peek(key)).toBeNull();
    expect(cache.resolve(key, 5).kind).toBe('unknown');
    await nextTurn();
    expect(lookups).toHaveLength(1);
  });

  it('looks up again every key it holds when a new stream delivers its snapshot', async () => {
    const { cache, lookups } = scripted();
    const keys = [generateTaggedVaultKey(tagKey), generateTaggedVaultKey(tagKey)];
    for (const key of keys) cache.resolve(key, 0);
    await nextTurn();
    cache.applyLookupResult({ keys: keys.map((key) => policy(key)), unknownKeyHashes: [], pricedIntents: [], failedKeyHashes: [] }, 1);
    lookups.length = 0;
    cache.applySnapshot({ keys: [], secrets: [], revision: 20 }, 2);
    await nextTurn();
    expect(lookups.flat().sort()).toEqual(keys.map(hashOf).sort());
  });

  it('drops keys idle for longer than the idle time', async () => {
    const { cache } = scripted();
    const [busy, idle] = [generateTaggedVaultKey(tagKey), generateTaggedVaultKey(tagKey)];
    cache.resolve(busy, 0);
    cache.resolve(idle, 0);
    await nextTurn();
    cache.applyLookupResult({ keys: [policy(busy), policy(idle)], unknownKeyHashes: [], pricedIntents: [], failedKeyHashes: [] }, 0);
    cache.resolve(busy, 50_000);
    expect(cache.sweepIdle(70_000)).toBe(1);
    expect(cache.peek(busy)).not.toBeNull();
    expect(cache.peek(idle)).toBeNull();
    expect(cache.keyCount).toBe(1);
  });

  it('forgets everything when the pepper changes', async () => {
    const { cache } = scripted();
    const key = generateTaggedVaultKey(tagKey);
    cache.resolve(key, 0);
    await nextTurn();
    cache.applyLookupResult({ keys: [policy(key)], unknownKeyHashes: [], pricedIntents: [], failedKeyHashes: [] }, 0);
    cache.welcome(randomBytes(32), 1);
    expect(cache.keyCount).toBe(0);
  });
});
