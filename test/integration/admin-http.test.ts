/**
 * The HTTP admin API against a real control plane, etcd and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTestStack, startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';

let cp: TestControlPlane;

beforeAll(async () => {
  cp = await startTestControlPlane(await createTestStack());
});
afterAll(async () => {
  await cp?.stop();
});

const seedBody = {
  vendor: 'stripe',
  daily_usd_cap: 300.0,
  allowed_endpoints: ['POST /v1/payment_intents'],
  expires_in: '4h',
  agent_run_label: 'metaflow/1234',
};

async function keyCount(): Promise<number> {
  const response = await cp.http('GET', '/vault/keys?limit=1000');
  return response.body.keys.length;
}

describe('issuing a key', () => {
  it('returns the secret once, with the policy and money in micros and USD', async () => {
    const before = Date.now();
    const { status, body } = await cp.http('POST', '/vault/keys', { body: seedBody });
    expect(status).toBe(201);
    expect(body.vault_key).toMatch(/^kbv_[0-9A-Za-z]{42}$/);
    expect(body).toMatchObject({
      vendor: 'stripe',
      label: 'metaflow/1234',
      status: 'active',
      allowed_endpoints: ['POST /v1/payment_intents'],
      daily_usd_cap: '300.00',
      cap_micros: 300_000_000,
      spent_micros: 0,
      remaining_micros: 300_000_000,
      spent_usd: '0.00',
    });
    const expiresAt = Date.parse(body.expires_at);
    expect(expiresAt - before).toBeGreaterThanOrEqual(4 * 3600 * 1000 - 1000);
    expect(expiresAt - before).toBeLessThanOrEqual(4 * 3600 * 1000 + 5000);

    const fetched = await cp.http('GET', `/vault/keys/${body.id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body.id).toBe(body.id);
    expect(JSON.stringify(fetched.body)).not.toContain(body.vault_key);
    expect(fetched.body.vault_key).toBeUndefined();
  });

  it('accepts the /admin/vault_keys spelling of the second seed document', async () => {
    const { status, body } = await cp.http('POST', '/admin/vault_keys', {
      body: { label: 'metaflow-2026-07-cus_aaa', vendor: 'stripe', allowed_endpoints: ['POST /v1/charges'], daily_usd_cap: 10.99, expires_in_seconds: 7200 },
    });
    expect(status).toBe(201);
    expect(body).toMatchObject({ label: 'metaflow-2026-07-cus_aaa', daily_cap_micros: 10_990_000, daily_usd_cap: '10.99' });
  });

  it.each<[string, unknown, number, string, RegExp]>([
    ['an unknown vendor', { ...seedBody, vendor: 'paypal' }, 422, 'invalid_argument', /^vendor: unknown vendor "paypal"/],
    ['a malformed endpoint pattern', { ...seedBody, allowed_endpoints: ['POST /v1//charges'] }, 422, 'invalid_argument', /^allowed_endpoints\[0\]: /],
    ['a zero cap', { ...seedBody, daily_usd_cap: 0 }, 422, 'invalid_argument', /^daily_usd_cap: must be greater than 0/],
    ['a negative cap', { ...seedBody, daily_usd_cap: -1 }, 422, 'invalid_argument', /^daily_usd_cap: /],
    ['a cap that is not a number', { ...seedBody, daily_usd_cap: 'ten' }, 422, 'invalid_argument', /^daily_usd_cap: /],
    ['an unparseable duration', { ...seedBody, expires_in: 'soon' }, 422, 'invalid_argument', /^expires_in: cannot parse duration/],
    ['a label over 200 characters', { ...seedBody, agent_run_label: 'x'.repeat(201) }, 422, 'invalid_argument', /^label: longer than 200/],
    ['no cap at all', { vendor: 'stripe', allowed_endpoints: ['POST /v1/charges'] }, 422, 'invalid_argument', /^daily_usd_cap: a cap is required/],
  ])('refuses %s with a clear error and writes nothing', async (_name, body, status, code, message) => {
    const before = await keyCount();
    const response = await cp.http('POST', '/vault/keys', { body });
    expect(response.status).toBe(status);
    expect(response.body.error.code).toBe(code);
    expect(response.body.error.message).toMatch(message);
    expect(await keyCount()).toBe(before);
  });

  it('refuses a body that is not JSON with 400', async () => {
    const response = await cp.http('POST', '/vault/keys', { rawBody: '{"vendor": "stripe",' });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'malformed_request' });
    expect(response.body.error.message).toMatch(/^body: not valid JSON/);
  });
});

describe('authentication and roles', () => {
  it('refuses a missing or wrong token with 401', async () => {
    expect((await cp.http('POST', '/vault/keys', { body: seedBody, token: null })).status).toBe(401);
    const wrong = await cp.http('GET', '/vault/keys', { token: 'kbo_not-a-real-token' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('unauthenticated');
    expect((await cp.http('GET', '/vault/keys', { token: `${cp.config.adminToken}x` })).status).toBe(401);
  });

  it('lets an issuer issue and revoke but not manage credentials or tokens', async () => {
    const created = await cp.http('POST', '/tokens', { body: { role: 'issuer', name: 'pipeline scheduler' } });
    expect(created.status).toBe(201);
    expect(created.body.token).toMatch(/^kbo_/);
    const issuer = created.body.token as string;

    const issued = await cp.http('POST', '/vault/keys', { body: seedBody, token: issuer });
    expect(issued.status).toBe(201);
    expect((await cp.http('POST', `/vault/keys/${issued.body.id}/revoke`, { token: issuer })).status).toBe(200);
    const forbidden = await cp.http('PUT', '/vendors/stripe/credential', { body: { secret: 'sk_test_x' }, token: issuer });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error).toMatchObject({ code: 'permission_denied' });
    expect((await cp.http('POST', '/tokens', { body: { role: 'admin' }, token: issuer })).status).toBe(403);
    expect((await cp.http('DELETE', `/vault/keys/${issued.body.id}`, { token: issuer })).status).toBe(403);
  });

  it('lets an auditor read keys but not issue or revoke', async () => {
    const auditor = (await cp.http('POST', '/tokens', { body: { role: 'auditor' } })).body.token as string;
    const before = await keyCount();
    const refused = await cp.http('POST', '/vault/keys', { body: seedBody, token: auditor });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toMatch(/role auditor may not keys issue/);
    expect(await keyCount()).toBe(before);
    expect((await cp.http('GET', '/vault/keys', { token: auditor })).status).toBe(200);
    const someKey = (await cp.http('GET', '/vault/keys?limit=1')).body.keys[0];
    expect((await cp.http('POST', `/vault/keys/${someKey.id}/revoke`, { token: auditor })).status).toBe(403);
  });

  it('refuses an unknown role naming the field', async () => {
    const response = await cp.http('POST', '/tokens', { body: { role: 'root' } });
    expect(response.status).toBe(422);
    expect(response.body.error.message).toMatch(/^role: must be admin, issuer or auditor/);
  });

  it('lists tokens without their secrets and revokes one: its next call is refused', async () => {
    const created = await cp.http('POST', '/tokens', { body: { role: 'issuer', name: 'leaked laptop' } });
    const secret = created.body.token as string;
    expect((await cp.http('GET', '/vault/keys?limit=1', { token: secret })).status).toBe(200);

    const listed = await cp.http('GET', '/tokens');
    expect(listed.status).toBe(200);
    expect(listed.body.tokens).toContainEqual({ id: created.body.id, name: 'leaked laptop', role: 'issuer', created_at: created.body.created_at });
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    expect((await cp.http('GET', '/tokens', { token: secret })).status).toBe(403);
    expect((await cp.http('DELETE', `/tokens/${created.body.id}`, { token: secret })).status).toBe(403);

    const revoked = await cp.http('DELETE', `/tokens/${created.body.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: created.body.id, revoked: true });
    const refused = await cp.http('GET', '/vault/keys?limit=1', { token: secret });
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('unauthenticated');
    expect((await cp.http('GET', '/tokens')).body.tokens.map((t: { id: string }) => t.id)).not.toContain(created.body.id);

    // Again, or a malformed id: a clear error, nothing changes.
    const again = await cp.http('DELETE', `/tokens/${created.body.id}`);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('not_found');
    const malformed = await cp.http('DELETE', '/tokens/not-a-token');
    expect(malformed.status).toBe(422);
    expect(malformed.body.error.message).toMatch(/^id: /);
  });
});

describe('listing, revoking and deleting', () => {
  it('filters by label, vendor and status, newest first, with a cursor', async () => {
    const label = `metaflow/list-${Date.now()}`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const vendor = i % 2 === 0 ? 'stripe' : 'resend';
      const endpoints = vendor === 'stripe' ? ['POST /v1/charges'] : ['POST /emails'];
      const { body } = await cp.http('POST', '/vault/keys', { body: { vendor, label, allowed_endpoints: endpoints, budget_usd: 1 } });
      ids.push(body.id);
    }
    const all = await cp.http('GET', `/vault/keys?label=${encodeURIComponent(label)}`);
    expect(all.body.keys.map((k: { id: string }) => k.id).sort()).toEqual([...ids].sort());
    const stripe = await cp.http('GET', `/vault/keys?label=${encodeURIComponent(label)}&vendor=stripe`);
    expect(stripe.body.keys).toHaveLength(3);

    await cp.http('POST', `/vault/keys/${ids[1]}/revoke`);
    const revoked = await cp.http('GET', `/vault/keys?label=${encodeURIComponent(label)}&status=revoked`);
    expect(revoked.body.keys.map((k: { id: string }) => k.id)).toEqual([ids[1]]);
    expect(revoked.body.keys[0].revoked_at).not.toBeNull();

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { keys: { id: string; created_at: string }[]; next_cursor: string | null } } = await cp.http(
        'GET',
        `/vault/keys?label=${encodeURIComponent(label)}&limit=2${cursor === null ? '' : `&cursor=${cursor}`}`,
      );
      expect(page.body.keys.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.keys.map((k) => k.id));
      cursor = page.body.next_cursor;
    } while (cursor !== null);
    expect(seen.sort()).toEqual([...ids].sort());
  });

  it('revokes idempotently and deletes', async () => {
    const { body } = await cp.http('POST', '/vault/keys', { body: seedBody });
    const first = await cp.http('POST', `/vault/keys/${body.id}/revoke`);
    const second = await cp.http('POST', `/vault/keys/${body.id}/revoke`);
    expect(first.body.status).toBe('revoked');
    expect(second.body.revoked_at).toBe(first.body.revoked_at);
    expect((await cp.http('DELETE', `/vault/keys/${body.id}`)).status).toBe(200);
    const gone = await cp.http('GET', `/vault/keys/${body.id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('not_found');
    expect((await cp.http('DELETE', `/vault/keys/${body.id}`)).status).toBe(404);
  });

  it('names the field a caller sent, and says who a token is', async () => {
    const limit = await cp.http('GET', '/vault/keys?limit=5000');
    expect(limit.status).toBe(422);
    expect(limit.body.error.message).toMatch(/^limit: /);
    const ttl = await cp.http('POST', '/vault/keys', { body: { ...seedBody, expires_in: '100d' } });
    expect(ttl.body.error.message).toMatch(/^expires_in: at most 90 days/);
    const bad = await cp.http('GET', '/vault/keys/%E0%A4%A');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('malformed_request');
    expect((await cp.http('GET', '/whoami')).body).toEqual({ token_id: 'bootstrap', role: 'admin' });
    expect((await cp.http('GET', '/whoami', { token: null })).status).toBe(401);
  });

  it('answers 404 for an unknown route and 422 for a malformed id', async () => {
    expect((await cp.http('GET', '/nope')).status).toBe(404);
    const bad = await cp.http('GET', '/vault/keys/not-an-id');
    expect(bad.status).toBe(422);
    expect(bad.body.error.message).toMatch(/^id: /);
  });
});

describe('vendor credentials', () => {
  it('stores a credential without ever returning the secret', async () => {
    const response = await cp.http('PUT', '/vendors/stripe/credential', { body: { secret: 'sk_test_never_returned_123' } });
    expect(response.status).toBe(200);
    expect(JSON.stringify(response.body)).not.toContain('sk_test_never_returned_123');
    expect(response.body).toMatchObject({ vendor: 'stripe' });
  });

  it('needs a Twilio account SID', async () => {
    const missing = await cp.http('PUT', '/vendors/twilio/credential', { body: { secret: 'token123' } });
    expect(missing.status).toBe(422);
    expect(missing.body.error.message).toMatch(/^account_sid: /);
    const ok = await cp.http('PUT', '/vendors/twilio/credential', { body: { secret: 'token123', account_sid: `AC${'a'.repeat(32)}` } });
    expect(ok.status).toBe(200);
    expect(ok.body.account_sid).toBe(`AC${'a'.repeat(32)}`);
  });

  it('refuses an unknown vendor', async () => {
    const response = await cp.http('PUT', '/vendors/paypal/credential', { body: { secret: 'x' } });
    expect(response.status).toBe(422);
    expect(response.body.error.message).toMatch(/^vendor: unknown vendor "paypal"/);
  });
});

describe('health', () => {
  it('serves Prometheus metrics without a token', async () => {
    const text = await (await fetch(`${cp.adminUrl}/metrics`)).text();
    expect(text).toContain('keybrake_dataplane_streams');
    expect(text).toContain('keybrake_audit_lag_seconds_bucket');
  });

  it('answers /healthz and /readyz without a token', async () => {
    expect((await cp.http('GET', '/healthz', { token: null })).body).toEqual({ status: 'ok' });
    expect((await cp.http('GET', '/readyz', { token: null })).status).toBe(200);
  });
});
