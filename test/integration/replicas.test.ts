/**
 * Several control-plane replicas against one etcd: every write is an etcd transaction, so
 * replicas see each other's writes and concurrent changes do not lose one another.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { EtcdStore } from '../../control-plane/etcd-store.js';
import type { KeyRecord } from '../../control-plane/key-record.js';
import { KeyStatus, type KeySpec } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';

let stack: TestStack;
let a: TestControlPlane;
let b: TestControlPlane;

beforeAll(async () => {
  stack = await createTestStack();
  [a, b] = await Promise.all([startTestControlPlane(stack), startTestControlPlane(stack)]);
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

const spec = (label: string): KeySpec => ({
  vendor: 'twilio', label, allowedEndpoints: ['POST /2010-04-01/Accounts/*/Messages.json'], dailyCapMicros: 2_000_000, budgetMicros: 0, expiresInSeconds: 600, perCallEstimateMicros: 0,
});

describe('two replicas', () => {
  it('see each other’s keys and revocations', async () => {
    const { issued } = await a.client.issueKey({ spec: spec('replicas/1') });
    const id = issued!.key!.id;
    expect((await b.client.getKey({ id })).key?.status).toBe(KeyStatus.KEY_STATUS_ACTIVE);
    await b.client.revokeKey({ id });
    expect((await a.client.getKey({ id })).key?.status).toBe(KeyStatus.KEY_STATUS_REVOKED);
    expect((await a.http('GET', `/vault/keys/${id}`)).body.status).toBe('revoked');
  });

  it('issue concurrently without losing or duplicating keys', async () => {
    const calls = Array.from({ length: 20 }, (_, i) =>
      (i % 2 === 0 ? a : b).client.issueKeys({ specs: Array.from({ length: 40 }, (_, j) => spec(`replicas/concurrent/${i}/${j}`)) }),
    );
    const results = await Promise.all(calls);
    const ids = results.flatMap((r) => r.issued.map((k) => k.key!.id));
    expect(new Set(ids).size).toBe(800);
    const listed = await a.client.listKeys({ label: '', labelPrefix: 'replicas/concurrent/', vendor: '', status: 0, pageSize: 1000, pageToken: '' });
    expect(listed.keys).toHaveLength(800);
  });

  it('revoke the same key concurrently with one outcome', async () => {
    const { issued } = await a.client.issueKey({ spec: spec('replicas/race') });
    const id = issued!.key!.id;
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).client.revokeKey({ id })));
    const revokedAt = new Set(answers.map((r) => r.key?.revokedAt?.getTime()));
    expect(revokedAt.size).toBe(1);
  });
});

describe('batch writes that fail part-way', () => {
  it('leave nothing behind', async () => {
    const store = new EtcdStore({ endpoints: [stack.etcdEndpoint], prefix: `${stack.etcdPrefix}rollback/` });
    try {
      const record = (i: number): KeyRecord => ({
        id: `vk_rollback${String(i).padStart(9, '0')}`,
        keyHash: `hash-${i}`,
        vendor: 'stripe',
        label: 'rollback',
        allowedEndpoints: ['POST /v1/charges'],
        dailyCapMicros: 1,
        budgetMicros: 0,
        createdAtMs: 1,
        expiresAtMs: 2,
        revokedAtMs: null,
      });
      // A record that already exists makes the chunk holding its twin fail (etcd's compare),
      // after other chunks of the same batch were written.
      await store.createKeys([record(400)]);
      const batch = Array.from({ length: 500 }, (_, i) => record(i));
      await expect(store.createKeys(batch)).rejects.toThrow(/already exists/);
      const left: string[] = [];
      await store.walkKeys((page) => void left.push(...page.map(({ record }) => record.id)));
      expect(left).toEqual([record(400).id]);
      // The label index holds the one key that exists, and nothing of the rolled-back batch.
      const listed = await store.listKeyPage({ label: 'rollback', labelPrefix: '', after: null, limit: 1000, maxExamined: 1000, accept: () => true });
      expect(listed.records.map((r) => r.id)).toEqual([record(400).id]);
      expect(await store.findKeyIdByHash('hash-0')).toBeNull();
    } finally {
      store.close();
    }
  });
});
