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

/** A cursor of the audit trail's shape ([ts micros, data plane, incarnation, seq]) holding what a caller chose. */
const craftedCursor = (parts: unknown[]) => Buffer.from(JSON.stringify(parts)).toString('base64url');

describe('query parameters (every route that takes a query, and every other)', () => {
  it.each<[string, RegExp]>([
    // Each of these used to reach PostgreSQL and come back as a 500.
    ['/audit?until=99999999999999999999', /^until: must be a time from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z/],
    ['/audit?since=2026-01-01T00:00:00Z&until=10000-01-01T00:00:00Z', /^until: must be an ISO 8601 time/],
    ['/audit?label=%00', /^label: must not contain NUL/],
    ['/audit?idempotency_key=a%00b', /^idempotency_key: must not contain NUL/],
    ['/audit?key_id=%00', /^key_id: must not contain NUL/],
    ['/audit?vendor_object_id=ch_%00', /^vendor_object_id: must not contain NUL/],
    [`/audit?cursor=${craftedCursor(['1', 'dp\u0000', 'x', 1])}`, /^cursor: is not a cursor this API returned/],
    [`/audit?cursor=${craftedCursor(['9999999999999999999', 'dp', 'x', 1])}`, /^cursor: is not a cursor this API returned/],
    [`/audit?cursor=${craftedCursor(['1', 'dp', 'x', 1e300])}`, /^cursor: is not a cursor this API returned/],
    [`/audit?cursor=${craftedCursor([9e15, 'dp', 'x', 1])}`, /^cursor: is not a cursor this API returned/],
    ['/audit?cursor=%00', /^cursor: /],
    // Bounds, syntax, repetition, unknown names.
    [`/audit?label=${'l'.repeat(201)}`, /^label: longer than 200 characters \(201\)/],
    [`/audit?idempotency_key=${'i'.repeat(256)}`, /^idempotency_key: longer than 255 characters/],
    [`/audit?key_id=vk_${'k'.repeat(62)}`, /^key_id: longer than 64 characters/],
    [`/audit?vendor_object_id=${'o'.repeat(256)}`, /^vendor_object_id: longer than 255 characters/],
    [`/audit?cursor=${'c'.repeat(1025)}`, /^cursor: /],
    ['/audit?since=2026-02-31', /^since: is not a valid time/],
    ['/audit?since=foo%202020', /^since: must be an ISO 8601 time/],
    ['/audit?limit=0', /^limit: must be a whole number from 1 to 1000/],
    ['/audit?limit=99999999999999999999', /^limit: must be a whole number from 1 to 1000/],
    ['/audit?decision=maybe', /^decision: must be allowed or denied/],
    ['/audit?label=a&label=b', /^label: given more than once/],
    ['/audit?lable=a', /^lable: unknown parameter \(expected label, key_id, /],
    ['/vault/keys?label=%00', /^label: must not contain NUL/],
    [`/vault/keys?label_prefix=${'p'.repeat(201)}`, /^label_prefix: longer than 200 characters/],
    [`/vault/keys?cursor=${craftedCursor([1, 'not-a-key'])}`, /^cursor: is not a token this API returned/],
    ['/vault/keys?cursor=%00', /^cursor: is not a token this API returned/],
    ['/vault/keys?limit=0', /^limit: must be a whole number from 1 to 1000/],
    ['/vault/keys?status=active&status=revoked', /^status: given more than once/],
    ['/vault/keys?page_size=5', /^page_size: unknown parameter \(expected label, label_prefix, vendor, status, limit, cursor\)/],
    [`/vault/keys?${'n'.repeat(5000)}=1`, /^"n+…" \(5000 characters\): unknown parameter/],
    ['/vault/keys/vk_00000000000000000000?x=1', /^x: unknown parameter \(this route takes none\)/],
    ['/tokens?role=admin', /^role: unknown parameter \(this route takes none\)/],
    ['/whoami?a=%00', /^a: unknown parameter/],
  ])('GET %s is a 422 naming the parameter', async (path, message) => {
    const response = await cp.http('GET', path);
    expect(response.status).toBe(422);
    expect(response.body.error.code).toBe('invalid_argument');
    expect(response.body.error.message).toMatch(message);
    expect(response.body.error.message.length).toBeLessThan(300);
  });

  it('takes what URLSearchParams makes of bad UTF-8 (U+FFFD) as the text it is, and the largest values', async () => {
    const replaced = await cp.http('GET', '/audit?label=%ED%A0%80');
    expect(replaced.status).toBe(200);
    expect(replaced.body.entries).toEqual([]);
    const edges = await cp.http('GET', `/audit?label=${'l'.repeat(200)}&idempotency_key=${'i'.repeat(255)}&since=0&until=9999-12-31T23:59:59.999Z&limit=1000`);
    expect(edges.status).toBe(200);
    expect((await cp.http('GET', '/audit?label=&vendor=&since=&limit=')).status).toBe(200);
  });

  it('checks who is asking before the parameters, and leaves the probes alone', async () => {
    expect((await cp.http('GET', '/audit?label=%00', { token: null })).status).toBe(401);
    expect((await cp.http('GET', '/tokens?x=1', { token: null })).status).toBe(401);
    expect((await cp.http('GET', '/healthz?probe=1', { token: null })).status).toBe(200);
  });

  it('refuses malformed path ids, naming them without echoing them whole', async () => {
    const nul = await cp.http('GET', '/vault/keys/%00');
    expect(nul.status).toBe(422);
    expect(nul.body.error.message).toBe('id: "\\u0000" is not a vault key id (vk_…)');
    const long = await cp.http('DELETE', `/vault/keys/${'k'.repeat(6000)}`);
    expect(long.status).toBe(422);
    expect(long.body.error.message).toMatch(/^id: "k+…" \(6000 characters\) is not a vault key id/);
    expect((await cp.http('POST', '/vault/keys/%00/revoke')).body.error.message).toMatch(/^id: "\\u0000"/);
    expect((await cp.http('DELETE', '/tokens/%00')).body.error.message).toMatch(/^id: "\\u0000" is not an operator token id/);
    const vendor = await cp.http('PUT', '/vendors/%00/credential', { body: { secret: 'sk_test_x' } });
    expect(vendor.status).toBe(422);
    expect(vendor.body.error.message).toMatch(/^vendor: unknown vendor "\\u0000"/);
  });

  it('names an unknown route without echoing its path whole', async () => {
    const response = await cp.http('GET', `/${'p'.repeat(8000)}`);
    expect(response.status).toBe(404);
    expect(response.body.error.message).toMatch(/^no route GET \/p+… \(8001 characters\)$/);
    const method = await cp.http('PATCH', `/vault/keys/${'k'.repeat(8000)}`);
    expect(method.status).toBe(404);
    expect(method.body.error.message.length).toBeLessThan(200);
  });
});

describe('request bodies', () => {
  it('refuses a member given twice: the duplicated budget issues no key', async () => {
    const before = await keyCount();
    const rawBody = '{"vendor":"stripe","allowed_endpoints":["POST /v1/charges"],"budget_usd":1,"budget_usd":1e9}';
    const response = await cp.http('POST', '/vault/keys', { rawBody });
    expect(response.status).toBe(400);
    expect(response.body.error).toEqual({ code: 'malformed_request', message: 'body: the member "budget_usd" is given more than once' });
    expect(await keyCount()).toBe(before);
    const admin = await cp.http('POST', '/admin/vault_keys', { rawBody: '{"vendor":"stripe","allowed_endpoints":["POST /v1/charges"],"daily_usd_cap":1,"expires_in":"1h","expires_in":"90d"}' });
    expect(admin.body.error.message).toBe('body: the member "expires_in" is given more than once');
    expect(await keyCount()).toBe(before);
  });

  it('refuses a member given twice in the credential and token bodies', async () => {
    const credential = await cp.http('PUT', '/vendors/stripe/credential', { rawBody: '{"secret":"sk_test_a","secret":"sk_test_b"}' });
    expect(credential.status).toBe(400);
    expect(credential.body.error.message).toBe('body: the member "secret" is given more than once');
    const token = await cp.http('POST', '/tokens', { rawBody: '{"role":"auditor","role":"admin"}' });
    expect(token.status).toBe(400);
    expect(token.body.error.message).toBe('body: the member "role" is given more than once');
  });

  it('reads __proto__ as an unknown field, bounds nesting, and refuses bytes that are not UTF-8', async () => {
    const proto = await cp.http('POST', '/vault/keys', { rawBody: '{"__proto__":{"budget_usd":1e9},"vendor":"stripe","allowed_endpoints":["POST /v1/charges"],"budget_usd":1}' });
    expect(proto.status).toBe(422);
    expect(proto.body.error.message).toMatch(/^__proto__: unknown field/);
    const deep = await cp.http('POST', '/tokens', { rawBody: `{"role":${'['.repeat(50_000)}${']'.repeat(50_000)}}` });
    expect(deep.status).toBe(400);
    expect(deep.body.error.message).toMatch(/^body: not valid JSON \(nested deeper than 64 levels/);
    const bytes = Buffer.concat([Buffer.from('{"role":"auditor","name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    const response = await fetch(`${cp.adminUrl}/tokens`, { method: 'POST', headers: { authorization: `Bearer ${cp.config.adminToken}` }, body: bytes });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { code: 'malformed_request', message: 'body: not valid UTF-8' } });
  });

  it('names an unknown field without echoing it whole', async () => {
    const name = 'f'.repeat(800_000);
    const routes = [['POST', '/vault/keys', seedBody], ['PUT', '/vendors/stripe/credential', { secret: 'sk_test_x' }], ['POST', '/tokens', { role: 'auditor' }]] as const;
    for (const [method, path, body] of routes) {
      const response = await cp.http(method, path, { body: { ...body, [name]: 1 } });
      expect(response.status).toBe(422);
      expect(response.body.error.message).toMatch(/^"f+…" \(800000 characters\): unknown field \(expected /);
      expect(response.body.error.message.length).toBeLessThan(400);
    }
    expect((await cp.http('POST', '/tokens', { body: { role: 'auditor', rol: 'admin' } })).body.error.message).toBe('rol: unknown field (expected role, name)');
  });

  it('refuses text no name, label or secret should hold', async () => {
    const label = await cp.http('POST', '/vault/keys', { rawBody: JSON.stringify({ ...seedBody, agent_run_label: 'x' }).replace('"x"', '"\\ud800"') });
    expect(label.status).toBe(422);
    expect(label.body.error.message).toMatch(/^label: must be Unicode text/);
    const name = await cp.http('POST', '/tokens', { body: { role: 'auditor', name: 'line\nbreak' } });
    expect(name.status).toBe(422);
    expect(name.body.error.message).toBe('name: must not contain control characters');
    const secret = await cp.http('PUT', '/vendors/stripe/credential', { body: { secret: 'sk_test_\u0000x' } });
    expect(secret.status).toBe(422);
    expect(secret.body.error.message).toMatch(/^secret: must be printable ASCII/);
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
