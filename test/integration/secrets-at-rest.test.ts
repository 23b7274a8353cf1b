/**
 * Nothing in etcd or PostgreSQL reveals a vendor secret, a vault key, an operator token or
 * the master key: the whole etcd keyspace and every PostgreSQL table are dumped and searched.
 */
import { Etcd3 } from 'etcd3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { TokenRole } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';

let stack: TestStack;
let cp: TestControlPlane;

beforeAll(async () => {
  stack = await createTestStack();
  cp = await startTestControlPlane(stack);
});
afterAll(async () => {
  await cp?.stop();
});

/** Every way a secret could sit in storage: as is, base64, base64url and hex. */
function encodings(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  return [secret, bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex')];
}

describe('secrets at rest', () => {
  it('are absent from an etcd dump and a PostgreSQL dump', async () => {
    const canaries = {
      stripe: 'sk_live_CANARYstripe0123456789abcdef',
      twilio: 'CANARYtwilioAuthToken0123456789ab',
      resend: 're_CANARYresend0123456789',
    };
    await cp.client.setVendorCredential({ vendor: 'stripe', secret: canaries.stripe, accountSid: '' });
    await cp.client.setVendorCredential({ vendor: 'twilio', secret: canaries.twilio, accountSid: `AC${'0'.repeat(32)}` });
    await cp.client.setVendorCredential({ vendor: 'resend', secret: canaries.resend, accountSid: '' });
    const single = await cp.client.issueKey({
      spec: { vendor: 'stripe', label: 'dump/1', allowedEndpoints: ['POST /v1/charges'], dailyCapMicros: 1_000_000, budgetMicros: 0, expiresInSeconds: 0, perCallEstimateMicros: 0 },
    });
    const batch = await cp.client.issueKeys({
      specs: Array.from({ length: 50 }, (_, i) => ({
        vendor: 'resend', label: `dump/batch/${i}`, allowedEndpoints: ['POST /emails'], dailyCapMicros: 0, budgetMicros: 5_000_000, expiresInSeconds: 60, perCallEstimateMicros: 0,
      })),
    });
    const token = await cp.client.createToken({ role: TokenRole.TOKEN_ROLE_ISSUER, name: 'dump' });

    const secrets = [
      ...Object.values(canaries),
      single.issued!.vaultKey,
      ...batch.issued.map((i) => i.vaultKey),
      token.token,
      stack.adminToken,
      stack.dataplaneToken,
      stack.masterKey,
      Buffer.from(stack.masterKey, 'base64').toString('hex'),
    ];

    const etcd = new Etcd3({ hosts: stack.etcdEndpoint });
    let etcdDump: string;
    try {
      const all = await etcd.getAll().all().buffers();
      const mine = Object.keys(all).filter((k) => k.startsWith(stack.etcdPrefix));
      expect(mine.length).toBeGreaterThan(100); // keys, key hashes, credentials, tokens
      etcdDump = Object.entries(all).map(([k, v]) => `${k}=${v.toString('latin1')}`).join('\n');
    } finally {
      etcd.close();
    }

    const db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
    let pgDump = '';
    try {
      const tables = await db.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`);
      expect(tables.rows.map((r) => r.table_name)).toContain('schema_migrations');
      for (const { table_name } of tables.rows) {
        const rows = await db.query(`SELECT * FROM "${table_name}"`);
        pgDump += JSON.stringify(rows.rows);
      }
    } finally {
      await db.end();
    }

    for (const secret of secrets) {
      for (const encoded of encodings(secret)) {
        expect(etcdDump.includes(encoded), `etcd holds ${secret.slice(0, 8)}… (${encoded.slice(0, 12)}…)`).toBe(false);
        expect(pgDump.includes(encoded), `postgres holds ${secret.slice(0, 8)}…`).toBe(false);
      }
    }
    // What is there instead: the key's public id and its keyed hash.
    expect(etcdDump).toContain(single.issued!.key!.id);
  });
});
