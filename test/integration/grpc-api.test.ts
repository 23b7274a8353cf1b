/**
 * The gRPC OperatorService and the standard health service, over real connections.
 */
import { credentials, makeClientConstructor, status, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createOperatorClient } from '../../cli/operator-client.js';
import { KeyStatus, TokenRole, type KeySpec, type ListKeysRequest, type QueryAuditRequest } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';

let cp: TestControlPlane;

beforeAll(async () => {
  cp = await startTestControlPlane(await createTestStack());
});
afterAll(async () => {
  await cp?.stop();
});

const spec = (label: string, change: Partial<KeySpec> = {}): KeySpec => ({
  vendor: 'stripe',
  label,
  allowedEndpoints: ['POST /v1/charges'],
  dailyCapMicros: 10_990_000,
  budgetMicros: 0,
  expiresInSeconds: 7200,
  perCallEstimateMicros: 0,
  ...change,
});

async function grpcError(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error('expected the call to fail');
}

describe('OperatorService', () => {
  it('issues, gets, lists and revokes', async () => {
    const { issued } = await cp.client.issueKey({ spec: spec('grpc/one') });
    expect(issued?.vaultKey).toMatch(/^kbv_/);
    const id = issued!.key!.id;
    const { key } = await cp.client.getKey({ id });
    expect(key).toMatchObject({ id, vendor: 'stripe', label: 'grpc/one', status: KeyStatus.KEY_STATUS_ACTIVE, dailyCapMicros: 10_990_000 });
    expect(key?.expiresAt?.getTime()).toBe(key!.createdAt!.getTime() + 7200 * 1000);
    const listed = await cp.client.listKeys({ label: 'grpc/one', labelPrefix: '', vendor: '', status: 0, pageSize: 0, pageToken: '' });
    expect(listed.keys.map((k) => k.id)).toEqual([id]);
    const revoked = await cp.client.revokeKey({ id });
    expect(revoked.key?.status).toBe(KeyStatus.KEY_STATUS_REVOKED);
  });

  it('issues a batch, one distinct key per spec, in order', async () => {
    const specs = Array.from({ length: 300 }, (_, i) => spec(`grpc-batch/branch-${i}`));
    const { issued } = await cp.client.issueKeys({ specs });
    expect(issued).toHaveLength(300);
    expect(new Set(issued.map((i) => i.vaultKey)).size).toBe(300);
    expect(issued.map((i) => i.key?.label)).toEqual(specs.map((s) => s.label));
    const listed = await cp.client.listKeys({ label: '', labelPrefix: 'grpc-batch/', vendor: '', status: 0, pageSize: 1000, pageToken: '' });
    expect(listed.keys).toHaveLength(300);
  });

  it('writes nothing from a batch with one bad spec, and names it', async () => {
    const specs = Array.from({ length: 200 }, (_, i) => spec(`grpc-bad-batch/${i}`));
    specs[137] = spec('grpc-bad-batch/137', { allowedEndpoints: ['POST /v1/charges/'] });
    const error = await grpcError(cp.client.issueKeys({ specs }));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toMatch(/^specs\[137\]\.allowed_endpoints\[0\]: /);
    const listed = await cp.client.listKeys({ label: '', labelPrefix: 'grpc-bad-batch/', vendor: '', status: 0, pageSize: 0, pageToken: '' });
    expect(listed.keys).toHaveLength(0);
  });

  it('maps errors to gRPC status codes', async () => {
    expect((await grpcError(cp.client.getKey({ id: 'vk_00000000000000000000' }))).code).toBe(status.NOT_FOUND);
    expect((await grpcError(cp.client.issueKey({ spec: spec('x', { vendor: 'paypal' }) }))).details).toMatch(/^vendor: unknown vendor/);
    const anonymous = createOperatorClient(cp.grpcAddress, undefined);
    const wrong = createOperatorClient(cp.grpcAddress, 'kbo_wrong');
    try {
      expect((await grpcError(anonymous.listKeys({ label: '', labelPrefix: '', vendor: '', status: 0, pageSize: 0, pageToken: '' }))).code).toBe(status.UNAUTHENTICATED);
      expect((await grpcError(wrong.issueKey({ spec: spec('x') }))).code).toBe(status.UNAUTHENTICATED);
    } finally {
      anonymous.close();
      wrong.close();
    }
    const name = `auditor ${Date.now()}`;
    const { token } = await cp.client.createToken({ role: TokenRole.TOKEN_ROLE_AUDITOR, name });
    const auditor = createOperatorClient(cp.grpcAddress, token);
    try {
      expect((await grpcError(auditor.issueKey({ spec: spec('x') }))).code).toBe(status.PERMISSION_DENIED);
      expect((await grpcError(auditor.listTokens({}))).code).toBe(status.PERMISSION_DENIED);
      const { tokens } = await cp.client.listTokens({});
      const mine = tokens.find((t) => t.name === name)!;
      expect(mine.role).toBe(TokenRole.TOKEN_ROLE_AUDITOR);
      expect((await cp.client.revokeToken({ id: mine.id })).token?.id).toBe(mine.id);
      expect((await grpcError(auditor.listKeys({ label: '', labelPrefix: '', vendor: '', status: 0, pageSize: 1, pageToken: '' }))).code).toBe(status.UNAUTHENTICATED);
      expect((await grpcError(cp.client.revokeToken({ id: mine.id }))).code).toBe(status.NOT_FOUND);
    } finally {
      auditor.close();
    }
  });
});

describe('QueryAudit and ListKeys check every filter (the checks the HTTP API shares)', () => {
  const audit = (change: Partial<QueryAuditRequest>): QueryAuditRequest => ({
    idempotencyKey: '', label: '', keyId: '', vendor: '', since: undefined, until: undefined, limit: 0, cursor: '', vendorObjectId: '', decision: '', ...change,
  });
  const list = (change: Partial<ListKeysRequest>): ListKeysRequest => ({ label: '', labelPrefix: '', vendor: '', status: 0, pageSize: 0, pageToken: '', ...change });
  const cursor = (parts: unknown[]) => Buffer.from(JSON.stringify(parts)).toString('base64url');

  it.each<[string, Partial<QueryAuditRequest>, RegExp]>([
    // Each of these used to reach PostgreSQL and come back INTERNAL.
    ['a NUL in the label', { label: 'a\u0000' }, /^label: must not contain NUL/],
    ['a NUL in the idempotency key', { idempotencyKey: '\u0000' }, /^idempotency_key: must not contain NUL/],
    ['a NUL in the key id', { keyId: 'vk_\u0000' }, /^key_id: must not contain NUL/],
    ['a NUL in the vendor object id', { vendorObjectId: '\u0000' }, /^vendor_object_id: must not contain NUL/],
    ['a NUL in the decision', { decision: 'allowed\u0000' }, /^decision: must be allowed or denied/],
    ['a time after 9999', { until: new Date(Date.UTC(20_000, 0, 1)) }, /^until: must be a time from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z/],
    ['a time before 1970', { since: new Date(Date.UTC(1960, 0, 1)) }, /^since: must be a time from 1970/],
    ['a cursor holding a NUL', { cursor: cursor(['1', 'dp\u0000', 'x', 1]) }, /^cursor: is not a cursor this API returned/],
    ['a cursor past bigint', { cursor: cursor(['9999999999999999999', 'dp', 'x', 1]) }, /^cursor: is not a cursor this API returned/],
    ['a cursor with a seq of 1e300', { cursor: cursor(['1', 'dp', 'x', 1e300]) }, /^cursor: is not a cursor this API returned/],
    // Bounds.
    ['a label over 200 characters', { label: 'l'.repeat(201) }, /^label: longer than 200 characters/],
    ['an idempotency key over 255 characters', { idempotencyKey: 'i'.repeat(256) }, /^idempotency_key: longer than 255 characters/],
    ['a key id over 64 characters', { keyId: 'k'.repeat(65) }, /^key_id: longer than 64 characters/],
    ['a vendor object id over 255 characters', { vendorObjectId: 'o'.repeat(256) }, /^vendor_object_id: longer than 255 characters/],
    ['a cursor over 1024 characters', { cursor: 'c'.repeat(1025) }, /^cursor: /],
    ['a negative limit', { limit: -1 }, /^limit: must be 1 to 1000/],
    ['an unknown decision', { decision: 'maybe' }, /^decision: must be allowed or denied, got "maybe"/],
  ])('QueryAudit refuses %s with INVALID_ARGUMENT naming the field', async (_name, change, message) => {
    const error = await grpcError(cp.client.queryAudit(audit(change)));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toMatch(message);
  });

  it('QueryAudit takes the edges of each range', async () => {
    const edges = await cp.client.queryAudit(audit({ label: 'l'.repeat(200), idempotencyKey: 'i'.repeat(255), since: new Date(0), until: new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999)), limit: 1000 }));
    expect(edges.entries).toEqual([]);
  });

  it.each<[string, Partial<ListKeysRequest>, RegExp]>([
    ['a NUL in the label', { label: '\u0000' }, /^label: must not contain NUL/],
    ['a label prefix over 200 characters', { labelPrefix: 'p'.repeat(201) }, /^label_prefix: longer than 200 characters/],
    ['a page token of another shape', { pageToken: cursor([1, 'not-a-key']) }, /^page_token: is not a token this API returned/],
    ['a page token that is not base64url', { pageToken: '%%%' }, /^page_token: is not a token this API returned/],
    ['a page size over 1000', { pageSize: 1001 }, /^page_size: must be 1 to 1000/],
  ])('ListKeys refuses %s with INVALID_ARGUMENT naming the field', async (_name, change, message) => {
    const error = await grpcError(cp.client.listKeys(list(change)));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toMatch(message);
  });

  it('refuses a token name or a vendor secret no one could mean', async () => {
    expect((await grpcError(cp.client.createToken({ role: TokenRole.TOKEN_ROLE_AUDITOR, name: 'a\u0000b' }))).details).toBe('name: must not contain control characters');
    expect((await grpcError(cp.client.setVendorCredential({ vendor: 'stripe', secret: 'sk_test_\u0000', accountSid: '' }))).details).toMatch(/^secret: must be printable ASCII/);
  });
});

describe('grpc.health.v1', () => {
  it('reports SERVING for the server and the operator service', async () => {
    const HealthClient = makeClientConstructor(healthService, 'grpc.health.v1.Health');
    const health = new HealthClient(cp.grpcAddress, credentials.createInsecure()) as InstanceType<typeof HealthClient> & {
      check(request: { service: string }, callback: (error: ServiceError | null, response?: { status?: string | number }) => void): void;
    };
    try {
      for (const service of ['', 'keybrake.v1.OperatorService']) {
        const answer = await new Promise<{ status?: string | number }>((resolve, reject) =>
          health.check({ service }, (error, response) => (error ? reject(error) : resolve(response ?? {}))),
        );
        expect(answer.status).toBe('SERVING');
      }
    } finally {
      health.close();
    }
  });
});
