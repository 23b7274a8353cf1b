/**
 * `npm run demo` end to end: the local stack, a simulated Stripe, 200 branches against a $300 cap.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const DEMO = fileURLToPath(new URL('../../demo/metaflow-demo.ts', import.meta.url));
const RUN_TS = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));

describe('npm run demo', () => {
  it('stops the fan-out at the cap and shows the audit agreeing with the ledger', async () => {
    const { stdout } = await run(process.execPath, [RUN_TS, DEMO, '--exit'], { timeout: 180_000, env: { PATH: process.env['PATH'] } });
    const charged = Number(/(\d+) charged \$29\.99/.exec(stdout)?.[1]);
    expect(charged).toBe(10); // 10 × $29.99 = $299.90 fits in $300; an 11th would not
    expect(stdout).toMatch(/190 refused with 429 spend_cap_exceeded/);
    expect(stdout).toMatch(/a refund attempt: 403 endpoint_not_allowed/);
    // The cap is full, but the retry repeats a charge that succeeded: Stripe replays it.
    expect(stdout).toMatch(/retry of branch \d+: 200, replayed by Stripe/);
    expect(stdout).toMatch(/\$299\.90 moved/);
    expect(stdout).toMatch(/key: spent \$299\.90 of \$300\.00/);
  }, 200_000);
});
