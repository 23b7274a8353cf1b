import { describe, expect, it } from 'vitest';

import { AccountWriter } from '../../control-plane/account-writer.js';
import { emptyAccount, type BudgetAccount } from '../../control-plane/budget-account.js';
import { MemoryBudgetLedger, type AccountUpdate, type AccountWrite } from '../../control-plane/budget-ledger.js';

/** Adds `micros` to settled spend: each change is visible in the account it leaves. */
const settle = (keyId: string, micros: number, initial: boolean = true): AccountUpdate => ({
  keyId,
  window: 'life',
  initial: initial ? () => emptyAccount(1_000_000) : null,
  change: (account: BudgetAccount) => ({ ...account, settledMicros: account.settledMicros + micros }),
});

/** A memory ledger that records each batch's accounts and can hold a batch until released. */
class RecordingLedger extends MemoryBudgetLedger {
  readonly batches: string[][] = [];
  hold: Promise<void> | null = null;
  failNext = false;
  override async updateMany(updates: readonly AccountUpdate[]): Promise<AccountWrite[]> {
    this.batches.push(updates.map((u) => u.keyId));
    if (this.hold !== null) await this.hold;
    if (this.failNext) {
      this.failNext = false;
      throw new Error('etcd unavailable');
    }
    return super.updateMany(updates);
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('AccountWriter', () => {
  it('writes many accounts per batch, at most batchSize each', async () => {
    const ledger = new RecordingLedger();
    const writer = new AccountWriter({ ledger, batchSize: 100 });
    const accounts = await Promise.all(Array.from({ length: 250 }, (_, i) => writer.write(settle(`k${i}`, i), 'routine')));
    expect(accounts.map((a) => a?.settledMicros)).toEqual(Array.from({ length: 250 }, (_, i) => i));
    expect(ledger.batches.map((b) => b.length)).toEqual([100, 100, 50]);
    expect(writer.batches).toBe(3);
  });

  it('applies one account’s changes in the order they came, each caller seeing the account its change left', async () => {
    const ledger = new RecordingLedger();
    const writer = new AccountWriter({ ledger });
    const held = gate();
    ledger.hold = held.promise;
    const first = writer.write(settle('k', 1), 'routine');
    await new Promise((resolve) => setImmediate(resolve));
    // The account is being written: these wait for the next batch, and go in it together.
    const later = [writer.write(settle('k', 10), 'routine'), writer.write(settle('k', 100), 'urgent')];
    ledger.hold = null;
    held.open();
    expect((await first)?.settledMicros).toBe(1);
    expect((await Promise.all(later)).map((a) => a?.settledMicros)).toEqual([11, 111]);
    expect(ledger.batches).toEqual([['k'], ['k']]);
  });

  it('puts changes to accounts in use (urgent) ahead of first grants and reports', async () => {
    const ledger = new RecordingLedger();
    const writer = new AccountWriter({ ledger, batchSize: 2, parallelBatches: 1 });
    const held = gate();
    ledger.hold = held.promise;
    const all = [writer.write(settle('r0', 1), 'routine')];
    await new Promise((resolve) => setImmediate(resolve));
    all.push(writer.write(settle('r1', 1), 'routine'), writer.write(settle('r2', 1), 'routine'), writer.write(settle('u1', 1), 'urgent'));
    // A routine change to an account then made urgent rides with it, in order.
    all.push(writer.write(settle('r2', 1), 'urgent'));
    ledger.hold = null;
    held.open();
    await Promise.all(all);
    expect(ledger.batches).toEqual([['r0'], ['u1', 'r2'], ['r1']]);
    expect((await ledger.read('r2', 'life'))?.settledMicros).toBe(2);
  });

  it('fails a batch’s callers when the ledger fails, and goes on with the next batch', async () => {
    const ledger = new RecordingLedger();
    const writer = new AccountWriter({ ledger });
    ledger.failNext = true;
    await expect(Promise.all([writer.write(settle('a', 1), 'routine'), writer.write(settle('b', 1), 'routine')])).rejects.toThrow('etcd unavailable');
    expect((await writer.write(settle('a', 5), 'routine'))?.settledMicros).toBe(5);
  });

  it('fails only the account whose change breaks, and creates nothing for a change without an initial account', async () => {
    const ledger = new RecordingLedger();
    const writer = new AccountWriter({ ledger });
    const breaking: AccountUpdate = { keyId: 'bad', window: 'life', initial: () => emptyAccount(10), change: (a) => ({ ...a, settledMicros: 11 }) };
    const [bad, good, absent] = await Promise.allSettled([writer.write(breaking, 'routine'), writer.write(settle('good', 1), 'routine'), writer.write(settle('absent', 1, false), 'routine')]);
    expect(bad.status).toBe('rejected');
    expect(good).toMatchObject({ status: 'fulfilled', value: { settledMicros: 1 } });
    expect(absent).toEqual({ status: 'fulfilled', value: null });
    expect(await ledger.read('absent', 'life')).toBeNull();
    expect(await ledger.read('bad', 'life')).toBeNull();
  });
});

describe('MemoryBudgetLedger.updateMany', () => {
  it('reads again and re-applies when an account changed between a batch’s read and its write', async () => {
    let interleave: (() => Promise<void>) | null = null;
    const ledger: MemoryBudgetLedger = new MemoryBudgetLedger({
      betweenReadAndWrite: async () => {
        const once = interleave;
        interleave = null;
        await once?.();
      },
    });
    await ledger.update('x', 'life', () => emptyAccount(100), (a) => ({ ...a, settledMicros: 1 }));
    // Another writer gets in between the batch's read and its write.
    interleave = async () => {
      await ledger.update('x', 'life', () => emptyAccount(100), (a) => ({ ...a, settledMicros: a.settledMicros + 10 }));
    };
    const [x, y] = await ledger.updateMany([settle('x', 100 - 11 - 50), settle('y', 7)]);
    // Applied once, on the account as the other writer left it: 1 + 10 + 39.
    expect(x).toEqual({ account: expect.objectContaining({ settledMicros: 50 }) });
    expect(y).toEqual({ account: expect.objectContaining({ settledMicros: 7 }) });
    expect(ledger.transactions).toBe(3);
  });

  it('refuses a batch that names one account twice', async () => {
    await expect(new MemoryBudgetLedger().updateMany([settle('x', 1), settle('x', 2)])).rejects.toThrow('names one account twice');
  });
});
