import { describe, expect, it } from 'vitest';

import { CoalescedReads } from '../../core/coalesced-reads.js';

describe('CoalescedReads', () => {
  it('starts a lone read at once, and sends what arrives meanwhile as one read', async () => {
    const loads: string[][] = [];
    let release = () => {};
    const reads = new CoalescedReads<number>(async (keys) => {
      loads.push([...keys]);
      if (loads.length === 1) await new Promise<void>((resolve) => (release = resolve));
      return new Map(keys.map((k) => [k, k.length]));
    }, 1, 5);
    const first = reads.read(['a']);
    const waiting = [reads.read(['bb', 'a']), reads.read(['ccc']), reads.read(['dddd', 'eeeee', 'ffffff'])];
    expect(loads).toEqual([['a']]);
    release();
    expect((await first).get('a')).toBe(1);
    const [second, third, fourth] = await Promise.all(waiting);
    expect(second!.get('bb')).toBe(2);
    expect(third!.get('ccc')).toBe(3);
    expect(fourth!.get('ffffff')).toBe(6);
    // At most 5 keys per read: the first two waiting lookups (3 keys) together, the third (3 keys) after them.
    expect(loads).toEqual([['a'], ['bb', 'a', 'ccc'], ['dddd', 'eeeee', 'ffffff']]);
  });

  it('fails every lookup of a read that failed, and reads again for the next', async () => {
    let fail = true;
    const reads = new CoalescedReads<number>(async (keys) => {
      if (fail) throw new Error('etcd unavailable');
      return new Map(keys.map((k) => [k, 1]));
    });
    await expect(Promise.all([reads.read(['a']), reads.read(['b'])])).rejects.toThrow('etcd unavailable');
    fail = false;
    expect((await reads.read(['a'])).get('a')).toBe(1);
  });
});
