import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { estimateCost, settleCost, type PricedRequest } from '../../../core/cost/index.js';
import { describeResendRule, findResendRoute, RESEND_ROUTES } from '../../../core/cost/resend.js';
import { NO_ALLOWANCE, resendPost, response, TABLES } from './helpers.js';

type Expected = Partial<Record<'kind' | 'micros' | 'code', unknown>>;
const priced = (emails: number): Expected => ({ kind: 'priced', micros: emails * 900 });
const malformed: Expected = { kind: 'refused', code: 'request_malformed' };
const email = (fields: Record<string, unknown> = {}) => ({ from: 'a@example.com', to: 'b@example.com', subject: 's', html: '<p>x</p>', ...fields });

function check(request: PricedRequest, expected: Expected): void {
  expect(estimateCost(request, NO_ALLOWANCE, TABLES)).toMatchObject(expected);
}

describe('Resend: POST /emails', () => {
  it.each<[string, unknown, Expected]>([
    ['one recipient', email(), priced(1)],
    ['to as a list', email({ to: ['b@example.com', 'c@example.com'] }), priced(2)],
    ['to, cc and bcc each count', email({ to: ['b@x.com', 'c@x.com'], cc: 'd@x.com', bcc: ['e@x.com', 'f@x.com', 'g@x.com'] }), priced(6)],
    ['a display name', email({ to: 'Bea <b@example.com>' }), priced(1)],
    ['a comma-separated string counts every address', email({ to: 'b@x.com, c@x.com,d@x.com' }), priced(3)],
    ['an empty cc and a null bcc', email({ cc: '', bcc: null }), priced(1)],
    ['empty cc and bcc lists', email({ cc: [], bcc: [] }), priced(1)],
    ['a scheduled email (billed when sent)', email({ scheduled_at: 'in 1 hour' }), priced(1)],
    ['reply_to does not count', email({ reply_to: ['r@x.com', 's@x.com'] }), priced(1)],
    ['a "__proto__" key is just a key', '{"__proto__":{"to":["x@x.com","y@y.com"]},"to":"b@example.com"}', priced(1)],
  ])('%s', (_name, body, expected) => {
    check(resendPost('/emails', body), expected);
  });

  it.each<[string, unknown]>([
    ['not JSON', 'to=b@example.com'],
    ['an array', [email()]],
    ['a JSON string', '"b@example.com"'],
    ['no to', email({ to: undefined })],
    ['an empty to', email({ to: '' })],
    ['an empty to list', email({ to: [] })],
    ['to as a number', email({ to: 42 })],
    ['a non-string recipient', email({ to: ['b@x.com', 7] })],
    ['an empty string in a list', email({ cc: ['c@x.com', ''] })],
    ['cc as an object', email({ cc: { address: 'c@x.com' } })],
    ['a repeated "to" key (parsers disagree on which wins)', '{"to":["a@x.com","b@x.com","c@x.com"],"to":"d@x.com"}'],
    ['a repeated key spelt with an escape', '{"to":"a@x.com","t\\u006f":"b@x.com"}'],
    ['trailing text', `${JSON.stringify(email())} x`],
  ])('refuses %s', (_name, body) => {
    check(resendPost('/emails', body), malformed);
  });

  it('refuses a body that is not UTF-8', () => {
    check({ ...resendPost('/emails', ''), body: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]) }, malformed);
  });

  it('refuses an empty body', () => {
    check({ ...resendPost('/emails', ''), body: null }, malformed);
    check({ ...resendPost('/emails', ''), body: Buffer.alloc(0) }, malformed);
  });
});

describe('Resend: POST /emails/batch', () => {
  it.each<[string, unknown, Expected]>([
    ['one email', [email()], priced(1)],
    ['a sum over the emails', [email(), email({ to: ['b@x.com', 'c@x.com'], bcc: 'd@x.com' })], priced(4)],
    ['100 emails, the most Resend takes', Array.from({ length: 100 }, () => email()), priced(100)],
  ])('%s', (_name, body, expected) => {
    check(resendPost('/emails/batch', body), expected);
  });

  it.each<[string, unknown]>([
    ['an empty batch', []],
    ['101 emails', Array.from({ length: 101 }, () => email())],
    ['an object instead of a list', email()],
    ['a non-object item', [email(), 'b@example.com']],
    ['an item without to', [email(), email({ to: undefined })]],
    ['not JSON', '[{"to":'],
  ])('refuses %s', (_name, body) => {
    check(resendPost('/emails/batch', body), malformed);
  });
});

describe('Resend: everything else is free', () => {
  it.each<[string, PricedRequest]>([
    ['GET an email', { ...resendPost('/emails/e1', ''), method: 'GET', body: null }],
    ['cancel a scheduled email', resendPost('/emails/e1/cancel', '')],
    ['reschedule an email', resendPost('/emails/e1', { scheduled_at: 'tomorrow' }, 'PATCH')],
    ['create a domain', resendPost('/domains', { name: 'example.com' })],
    ['create a contact', resendPost('/audiences/a1/contacts', { email: 'x@example.com' })],
    ['GET /emails with a body we would refuse', { ...resendPost('/emails', 'not json'), method: 'GET' }],
  ])('%s', (_name, request) => {
    check(request, { kind: 'free' });
  });
});

describe('settleCost (Resend)', () => {
  const single = resendPost('/emails', email({ cc: 'c@x.com' }));
  const batch = resendPost('/emails/batch', [email(), email()]);

  it('keeps the estimate on success and reports the id', () => {
    expect(settleCost(single, estimateCost(single, NO_ALLOWANCE, TABLES), response(200, { id: 'e1' }), TABLES)).toEqual({
      micros: 1_800,
      objectId: 'e1',
      stripeChargeId: null,
      replayed: false,
      amount: null,
      currency: null,
    });
  });

  it("reports a batch by its first email's id", () => {
    const settlement = settleCost(batch, estimateCost(batch, NO_ALLOWANCE, TABLES), response(200, { data: [{ id: 'e1' }, { id: 'e2' }] }), TABLES);
    expect(settlement).toMatchObject({ micros: 1_800, objectId: 'e1' });
    expect(settleCost(batch, estimateCost(batch, NO_ALLOWANCE, TABLES), response(200, { data: [] }), TABLES).objectId).toBeNull();
  });

  it('costs nothing when Resend refuses the call', () => {
    for (const [status, name] of [[422, 'validation_error'], [429, 'rate_limit_exceeded'], [429, 'daily_quota_exceeded'], [403, 'invalid_api_key']] as const) {
      const settlement = settleCost(single, estimateCost(single, NO_ALLOWANCE, TABLES), response(status, { statusCode: status, message: 'no', name }), TABLES);
      expect(settlement).toMatchObject({ micros: 0, objectId: null });
    }
  });

  it('keeps the reservation when the outcome is unknown (5xx)', () => {
    expect(settleCost(single, estimateCost(single, NO_ALLOWANCE, TABLES), response(500, { statusCode: 500, name: 'internal_server_error' }), TABLES).micros).toBe(1_800);
  });
});

describe('Resend: fails closed', () => {
  const WITH_ALLOWANCE = { perCallEstimateMicros: 250_000 };
  it.each<[string, PricedRequest]>([
    ['sending a broadcast to a segment', resendPost('/broadcasts/b1/send', {})],
    ['creating a broadcast that sends at once', resendPost('/broadcasts', { segment_id: 's1', from: 'a@x.com', subject: 's', html: 'x', send: true })],
    ['replying from an inbox', resendPost('/inboxes/i1/threads/t1/emails/e1/reply', { html: 'x' })],
    ['triggering automations with an event', resendPost('/events/send', { event: 'signed_up', email: 'x@example.com' })],
    ['creating an automation', resendPost('/automations', { name: 'welcome' })],
    ['minting an API key (it sends outside the proxy)', resendPost('/api-keys', { name: 'side door' })],
    ['a route the model does not know', resendPost('/newsletters/n1/blast', {})],
    ['a PUT', resendPost('/emails/e1', {}, 'PUT')],
  ])('prices %s by the per-call estimate, refused without one', (_name, request) => {
    check(request, { kind: 'refused', code: 'amount_unknown' });
    expect(estimateCost(request, WITH_ALLOWANCE, TABLES)).toMatchObject({ kind: 'priced', micros: 250_000 });
  });

  it('lets a broadcast be drafted for free', () => {
    check(resendPost('/broadcasts', { segment_id: 's1', from: 'a@x.com', subject: 's', html: 'x' }), { kind: 'free' });
    check(resendPost('/broadcasts', { segment_id: 's1', from: 'a@x.com', subject: 's', html: 'x', send: false }), { kind: 'free' });
  });

  it('classifies every write resend-node makes', () => {
    const sdk = readFileSync(fileURLToPath(new URL('../../../node_modules/resend/dist/index.mjs', import.meta.url)), 'utf8');
    const calls = [...sdk.matchAll(/this\.resend\.(post|patch)\((?:"([^"]+)"|`([^`]+)`)/g)].map(([, method, plain, template]) => {
      const path = (plain ?? template ?? '').replace(/\$\{inboxPath\}/g, '/inboxes/*').replace(/\$\{[^}]+\}/g, '*');
      return `${method!.toUpperCase()} ${path}`;
    });
    expect(calls.length).toBeGreaterThan(40);
    const unclassified = [...new Set(calls)].filter((call) => {
      const [method, path] = call.split(' ') as [string, string];
      return findResendRoute(method, path.slice(1).split('/').map((s) => (s === '*' ? 'id_1' : s))) === undefined;
    });
    expect(unclassified).toEqual([]);
  });

  it('lists every route in docs/pricing.md as the code prices it', () => {
    const doc = readFileSync(fileURLToPath(new URL('../../../docs/pricing.md', import.meta.url)), 'utf8');
    const resend = doc.slice(doc.indexOf('## Resend'));
    const rows = resend
      .split('\n')
      .filter((line) => line.startsWith('| `'))
      .map((line) => line.slice(1, -1).split(' | ').map((cell) => cell.trim().replace(/^`(.*)`$/, '$1')));
    expect(rows).toEqual(RESEND_ROUTES.map((route) => [`${route.method} ${route.path}`, describeResendRule(route.rule)]));
  });
});
