/**
 * npm run demo — the first seed document's Metaflow billing flow, against the local stack and
 * a simulated Stripe: the start step issues one vault key for the run ($300 daily cap, only
 * POST /v1/payment_intents, 4 h), 200 @foreach branches each charge a customer $29.99 through
 * the data plane, the cap stops the fan-out, and the audit trail shows what happened.
 *
 *   npm run demo            leaves the stack running so you can look at it (Ctrl-C stops it)
 *   npm run demo -- --exit  stops everything at the end (what the test does)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePort } from '../dev/free-port.js';
import { startStripeSimulator } from '../test/simulators/index.js';
import { killIfAlive, spawnKeybrake } from '../test/support/processes.js';

const BRANCHES = 200;
const AMOUNT_CENTS = 2999;
const SECRET = 'sk_test_demo_not_a_real_key_000';

async function main(): Promise<void> {
  const exitAtEnd = process.argv.includes('--exit');
  const home = mkdtempSync(join(tmpdir(), 'keybrake-demo-'));
  const stripe = await startStripeSimulator({ secretKey: SECRET });
  const [admin, grpc, proxy] = [await freePort(), await freePort(), await freePort()];
  const stack = spawnKeybrake(['dev'], {
    KEYBRAKE_HOME: home,
    KEYBRAKE_ADMIN_ADDR: `127.0.0.1:${admin}`,
    KEYBRAKE_GRPC_ADDR: `127.0.0.1:${grpc}`,
    KEYBRAKE_PROXY_ADDR: `127.0.0.1:${proxy}`,
    KEYBRAKE_UPSTREAM_STRIPE: stripe.url,
    KEYBRAKE_LOG_LEVEL: 'warn',
  });
  // Ctrl-C, SIGTERM, SIGHUP, or nobody reading our output any more (`npm run demo | grep -q audit`).
  const stopRequested = new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve());
    process.stdout.on('error', () => resolve());
  });
  let stopping: Promise<void> | null = null;
  const stop = () => (stopping ??= (async () => {
    stack.child.kill('SIGINT');
    await Promise.race([stack.exited(), new Promise((r) => setTimeout(r, 10_000))]);
    killIfAlive(stack.child.pid);
    await stripe.stop();
    rmSync(home, { recursive: true, force: true });
  })());
  // Asked to stop in the middle of the run: stop the stack and leave now.
  void stopRequested.then(stop).then(() => process.exit(0));
  try {
    const token = (await stack.waitForOutput(/admin token\s+(\S+)/, 120_000))[1]!;
    await stack.waitForOutput(/Issue a vault key/, 30_000);
    const adminUrl = `http://127.0.0.1:${admin}`;
    const api = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${adminUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return (await response.json()) as Record<string, unknown>;
    };
    await api('PUT', '/vendors/stripe/credential', { secret: SECRET });
    // The customers already exist at Stripe (the flow's start step loaded their ids).
    const customers: string[] = [];
    for (let i = 0; i < BRANCHES; i++) {
      const created = await fetch(`${stripe.url}/v1/customers`, { method: 'POST', headers: { authorization: `Bearer ${SECRET}` }, body: new URLSearchParams({ email: `c${i}@example.com` }) });
      customers.push(((await created.json()) as { id: string }).id);
    }

    // start step: one vault key for the run, exactly as the seed document issues it.
    const runId = String(Date.now()).slice(-6);
    const key = await api('POST', '/vault/keys', {
      vendor: 'stripe', daily_usd_cap: 300.0, allowed_endpoints: ['POST /v1/payment_intents'], expires_in: '4h', agent_run_label: `metaflow/${runId}`,
    });
    console.log(`\nstart: issued ${String(key['id'])} for metaflow/${runId}: $${String(key['daily_usd_cap'])} daily cap, POST /v1/payment_intents only, expires in 4h`);

    // charge_customers: 200 @foreach branches, 25 at a time, each with its stable idempotency key.
    const outcomes: { branch: number; status: number; code: string | null }[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 25 }, async () => {
        while (next < BRANCHES) {
          const i = next++;
          const response = await fetch(`http://127.0.0.1:${proxy}/stripe/v1/payment_intents`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${String(key['vault_key'])}`,
              'content-type': 'application/x-www-form-urlencoded',
              'idempotency-key': `${customers[i]!}-${AMOUNT_CENTS}`,
            },
            body: `amount=${AMOUNT_CENTS}&currency=usd&customer=${customers[i]!}`,
          });
          await response.arrayBuffer();
          outcomes.push({ branch: i, status: response.status, code: response.headers.get('keybrake-error') });
        }
      }),
    );
    // A branch that was charged retries (Metaflow @retry) with its stable idempotency key.
    const retried = outcomes.find((o) => o.status === 200)?.branch ?? 0;
    const retry = await fetch(`http://127.0.0.1:${proxy}/stripe/v1/payment_intents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${String(key['vault_key'])}`, 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': `${customers[retried]!}-${AMOUNT_CENTS}` },
      body: `amount=${AMOUNT_CENTS}&currency=usd&customer=${customers[retried]!}`,
    });
    await retry.arrayBuffer();
    // A bug that asks for a refund is refused at the allowlist.
    const refund = await fetch(`http://127.0.0.1:${proxy}/stripe/v1/refunds`, {
      method: 'POST',
      headers: { authorization: `Bearer ${String(key['vault_key'])}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'payment_intent=pi_1',
    });
    await refund.arrayBuffer();

    const charged = outcomes.filter((o) => o.status === 200).length;
    const capped = outcomes.filter((o) => o.code === 'spend_cap_exceeded').length;
    console.log(`charge_customers: ${BRANCHES} branches, ${charged} charged $${(AMOUNT_CENTS / 100).toFixed(2)}, ${capped} refused with 429 spend_cap_exceeded`);
    // The cap is used up, but the retry repeats a charge that succeeded under the same
    // Idempotency-Key: it goes through, Stripe replays it, nothing is charged twice.
    const retryOutcome = retry.status === 200 ? `${retry.status}, ${retry.headers.get('idempotent-replayed') === 'true' ? 'replayed by Stripe' : 'charged'}` : `${retry.status} ${retry.headers.get('keybrake-error')}`;
    console.log(`retry of branch ${retried}: ${retryOutcome}; a refund attempt: ${refund.status} ${refund.headers.get('keybrake-error')}`);
    const intents = stripe.wiretap.requests().filter((r) => r.url.startsWith('/v1/payment_intents'));
    console.log(`Stripe saw ${intents.length} PaymentIntent requests, ${intents.filter((r) => r.response?.status === 200).length} answered 200`);

    // The audit trail and the ledger agree (records and reports arrive within about a second).
    await new Promise((r) => setTimeout(r, 2500));
    const audit = (await api('GET', `/audit?label=metaflow/${runId}&limit=1000`))['entries'] as { decision: string; reason: string | null; usd_micros: number; replayed: boolean }[];
    const spent = audit.reduce((sum, e) => sum + e.usd_micros, 0);
    const fresh = await api('GET', `/vault/keys/${String(key['id'])}`);
    console.log(`audit: ${audit.length} records: ${audit.filter((e) => e.decision === 'allowed').length} forwarded (${audit.filter((e) => e.replayed).length} replayed), ` +
      `${audit.filter((e) => e.reason === 'spend_cap_exceeded').length} cap denials, ${audit.filter((e) => e.reason === 'endpoint_not_allowed').length} allowlist denials; $${(spent / 1e6).toFixed(2)} moved`);
    console.log(`key: spent $${String(fresh['spent_usd'])} of $${String(fresh['cap_usd'])}, leased $${String(fresh['leased_usd'])}, remaining $${String(fresh['remaining_usd'])}`);
    console.log(`\nLook: ${adminUrl}/ (sign in with ${token}); the run's page: ${adminUrl}/#/runs/${encodeURIComponent(`metaflow/${runId}`)}`);
    if (exitAtEnd) return;
    console.log('The stack keeps running; Ctrl-C stops it.');
    await stopRequested;
  } finally {
    await stop();
  }
}

await main();
