/**
 * The seed documents' Python code, run unchanged (but for the base URL) with httpx against a
 * real control plane. Needs Debian's python3-httpx (.ci/run installs it).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { TokenRole } from '../../gen/keybrake/v1/operator.js';
import { createTestStack, startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';

const PYTHON = '/usr/bin/python3';
const run = promisify(execFile);
let cp: TestControlPlane;

beforeAll(async () => {
  cp = await startTestControlPlane(await createTestStack());
});
afterAll(async () => {
  await cp?.stop();
});

async function hasHttpx(): Promise<boolean> {
  if (!existsSync(PYTHON)) return false;
  return run(PYTHON, ['-c', 'import httpx']).then(
    () => true,
    () => false,
  );
}

describe('seed documents', () => {
  it('issue keys with the documents’ own httpx code', async (context) => {
    if (!(await hasHttpx())) context.skip('python3-httpx is not installed (apt-get install python3-httpx)');
    const issuer = (await cp.client.createToken({ role: TokenRole.TOKEN_ROLE_ISSUER, name: 'metaflow' })).token;
    const { stdout } = await run(PYTHON, ['test/seeds/seed_snippets.py'], {
      env: { PATH: process.env['PATH'], KEYBRAKE_BASE: cp.adminUrl, KEYBRAKE_API_KEY: issuer, KEYBRAKE_ADMIN_KEY: cp.config.adminToken },
      timeout: 30_000,
    });
    const result = JSON.parse(stdout) as { flow_key: string; branch_keys: { customer_id: string; vault_key: string }[] };
    expect(result.flow_key).toMatch(/^kbv_/);
    expect(result.branch_keys).toHaveLength(3);

    const flow = (await cp.http('GET', '/vault/keys?label=metaflow/1234')).body.keys;
    expect(flow).toHaveLength(1);
    expect(flow[0]).toMatchObject({ daily_usd_cap: '300.00', allowed_endpoints: ['POST /v1/payment_intents'], status: 'active' });

    // round(999 / 100 * 1.1, 2) = 10.99, round(2999 / 100 * 1.1, 2) = 32.99, round(9999 / 100 * 1.1, 2) = 109.99
    const caps = await Promise.all(
      ['cus_aaa', 'cus_bbb', 'cus_ccc'].map(async (cid) => (await cp.http('GET', `/vault/keys?label=metaflow-2026-07-${cid}`)).body.keys[0].daily_cap_micros),
    );
    expect(caps).toEqual([10_990_000, 32_990_000, 109_990_000]);
  });
});
