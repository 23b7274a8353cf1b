/**
 * The shell and Python snippets of README.md and docs/user-guide.md, taken from the Markdown and
 * run against a real stack (control plane, data plane, etcd, PostgreSQL, the Stripe simulator),
 * so the docs cannot drift from the product. Every `sh`, `python` and `ts` block says what it
 * is, on the line before it (TypeScript is always an example here: the same SDK set-up runs in
 * the integration tests through test/support/sdk-clients.ts):
 *   <!-- docs-check: run -->                      run as written
 *   <!-- docs-check: run, then: <code> -->        run, then this (a call of what the block defines)
 *   <!-- docs-check: example: <why> -->           not run here, and why
 * A block without a marker fails the check. "As written" means: the addresses of `keybrake dev`
 * (127.0.0.1:7070, :7080, :8080) become this stack's, `vk_…` and `kbo_…` placeholders a real
 * key id and token, and `keybrake` is `node bin/keybrake.js`. Python is Debian's /usr/bin/python3
 * with python3-httpx and python3-stripe (.ci/run installs them); the variables a snippet takes
 * from its surroundings (`vault_key`, `customer_id`, `run_id`, …) are set before it.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';
import { startTestDataPlane, type TestDataPlane } from '../support/data-plane.js';
import { KEYBRAKE_BIN } from '../support/processes.js';
import { startStripeSimulator, type StripeSimulator } from '../simulators/index.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const PYTHON = '/usr/bin/python3';
const SECRET = 'sk_test_docs_check_0123456789';
const DOCS = ['README.md', 'docs/user-guide.md'] as const;

interface Snippet {
  readonly doc: string;
  readonly line: number;
  readonly language: 'sh' | 'python' | 'ts';
  readonly code: string;
  /** null: an example, not run here. */
  readonly run: { readonly then: string } | null;
  readonly marker: string | null;
}

const MARKER = /^<!-- docs-check: (?:(run)(?:, then: (.*))?|example: (.+)) -->$/;

/** Every sh, python and ts block of a Markdown file, with the marker on the line before it. */
function snippetsOf(doc: string): Snippet[] {
  const lines = readFileSync(join(ROOT, doc), 'utf8').split('\n');
  const found: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(sh|python|ts)\s*$/.exec(lines[i]!);
    if (fence === null) continue;
    const end = lines.indexOf('```', i + 1);
    const markerLine = lines[i - 1] ?? '';
    const match = MARKER.exec(markerLine);
    found.push({
      doc,
      line: i + 1,
      language: fence[1] as Snippet['language'],
      code: lines.slice(i + 1, end).join('\n'),
      run: match?.[1] === 'run' ? { then: match[2] ?? '' } : null,
      marker: match === null ? null : markerLine,
    });
    i = end;
  }
  return found;
}

const snippets = DOCS.flatMap(snippetsOf);

let stack: TestStack;
let cp: TestControlPlane;
let dp: TestDataPlane;
let sim: StripeSimulator;
let shims: string;
let env: Record<string, string>;
let placeholderKeyId: string;

beforeAll(async () => {
  stack = await createTestStack();
  cp = await startTestControlPlane(stack);
  sim = await startStripeSimulator({ secretKey: SECRET });
  await cp.client.setVendorCredential({ vendor: 'stripe', secret: SECRET, accountSid: '' });
  dp = await startTestDataPlane(stack, cp.grpcAddress, { stripe: sim.url });
  const issue = async (endpoints: string[]) => {
    const { status, body } = await cp.http('POST', '/vault/keys', { body: { vendor: 'stripe', daily_usd_cap: 1000, allowed_endpoints: endpoints, expires_in: '1h', agent_run_label: 'docs-check' } });
    expect(status).toBe(201);
    return body as { vault_key: string; id: string };
  };
  const vault = await issue(['POST /v1/payment_intents', 'POST /v1/charges']);
  // `vk_…` in a snippet (which may revoke it) is a key of its own.
  placeholderKeyId = (await issue(['POST /v1/charges'])).id;
  const customer = await fetch(`${sim.url}/v1/customers`, { method: 'POST', headers: { authorization: `Bearer ${SECRET}` }, body: new URLSearchParams({ email: 'docs@example.com' }) });
  const customerId = ((await customer.json()) as { id: string }).id;
  shims = await mkdtemp(join(tmpdir(), 'keybrake-docs-'));
  await writeFile(join(shims, 'keybrake'), `#!/bin/sh\nexec "${process.execPath}" "${KEYBRAKE_BIN}" "$@"\n`);
  await chmod(join(shims, 'keybrake'), 0o755);
  env = {
    PATH: `${shims}:${process.env['PATH'] ?? ''}`,
    // Shell snippets' variables.
    STRIPE_SECRET_KEY: SECRET,
    AUDITOR: stack.adminToken,
    TOKEN: stack.adminToken,
    VAULT_KEY: vault.vault_key,
    KEYBRAKE_ADMIN: cp.adminUrl,
    KEYBRAKE_CONTROL_PLANE: cp.grpcAddress,
    KEYBRAKE_TOKEN: stack.adminToken,
    // Python snippets' environment, and what their surroundings define.
    KEYBRAKE_ADMIN_URL: cp.adminUrl,
    KEYBRAKE_API_KEY: stack.adminToken,
    KEYBRAKE_ADMIN_KEY: stack.adminToken,
    KEYBRAKE_AUDIT_KEY: stack.adminToken,
    DOCS_VAULT_KEY: vault.vault_key,
    DOCS_CUSTOMER_ID: customerId,
  };
});
afterAll(async () => {
  await dp?.stop();
  await sim?.stop();
  await cp?.stop();
  if (shims !== undefined) await rm(shims, { recursive: true, force: true });
});

/** The snippet as it runs here: this stack's addresses, real values for the placeholders. */
function asHere(code: string): string {
  return code
    .replaceAll('http://127.0.0.1:7080', cp.adminUrl)
    .replaceAll('http://127.0.0.1:8080', dp.url)
    .replaceAll('127.0.0.1:7070', cp.grpcAddress)
    .replaceAll('vk_…', placeholderKeyId)
    .replaceAll('kbo_…', stack.adminToken);
}

const PYTHON_SURROUNDINGS = `
import os, httpx, stripe
KEYBRAKE = os.environ["KEYBRAKE_ADMIN_URL"]
KEYBRAKE_ADMIN = KEYBRAKE
run_id = "docs-check"
vault_key = os.environ["DOCS_VAULT_KEY"]
customer_id = os.environ["DOCS_CUSTOMER_ID"]
amount_cents = 1234
idempotency_key = "docs-check-1"
`;

describe('the docs’ snippets', () => {
  it('every sh, python and ts block of README.md and docs/user-guide.md says whether it runs here', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(20);
    expect(snippets.filter((s) => s.marker === null).map((s) => `${s.doc}:${s.line}`)).toEqual([]);
    // TypeScript snippets are not run from the Markdown (their SDK set-up runs in the integration tests).
    expect(snippets.filter((s) => s.language === 'ts' && s.run !== null).map((s) => `${s.doc}:${s.line}`)).toEqual([]);
  });

  const runnable = snippets.filter((s) => s.run !== null);
  it.each(runnable.map((s) => [`${s.doc}:${s.line} (${s.language})`, s] as const))('%s runs as written', async (_name, snippet) => {
    try {
      if (snippet.language === 'sh') {
        await run('bash', ['-e', '-o', 'pipefail', '-c', `${asHere(snippet.code)}\n${snippet.run!.then}`], { cwd: ROOT, env, timeout: 60_000 });
      } else {
        await run(PYTHON, ['-c', `${PYTHON_SURROUNDINGS}\n${asHere(snippet.code)}\n${snippet.run!.then}\n`], { cwd: ROOT, env, timeout: 60_000 });
      }
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`${snippet.doc}:${snippet.line} failed: ${e.message}\nstdout: ${e.stdout ?? ''}\nstderr: ${e.stderr ?? ''}`);
    }
  }, 90_000);
});
