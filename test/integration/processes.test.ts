/**
 * `keybrake` as users run it: the servers refuse bad configuration in one line, the operator
 * CLI talks gRPC, and `keybrake dev` brings up the whole stack, prints a working curl, reuses
 * its data on a second start and stops every child on Ctrl-C.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { freePort } from '../../dev/free-port.js';
import { createTestStack, startTestControlPlane, type TestControlPlane, type TestStack } from '../support/control-plane.js';
import { descendantPids, isAlive, KEYBRAKE_BIN, killIfAlive, spawnKeybrake } from '../support/processes.js';

const run = promisify(execFile);
let stack: TestStack;
let cp: TestControlPlane;

beforeAll(async () => {
  stack = await createTestStack();
  cp = await startTestControlPlane(stack);
});
afterAll(async () => {
  await cp?.stop();
});

async function keybrake(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [KEYBRAKE_BIN, ...args], { env: { PATH: process.env['PATH'], ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('bad configuration', () => {
  it.each([
    ['KEYBRAKE_MASTER_KEY', 'c2hvcnQ=', /^keybrake: configuration error: KEYBRAKE_MASTER_KEY: must decode to 32 bytes, got 5\n$/],
    ['KEYBRAKE_ETCD_ENDPOINTS', '127.0.0.1:2379', /^keybrake: configuration error: KEYBRAKE_ETCD_ENDPOINTS: "127.0.0.1:2379" is not a URL with scheme/],
    ['KEYBRAKE_ADMIN_TOKEN', '', /^keybrake: configuration error: KEYBRAKE_ADMIN_TOKEN: is required/],
    ['KEYBRAKE_ETCD_PAGE_SIZE', 'many', /^keybrake: configuration error: KEYBRAKE_ETCD_PAGE_SIZE: must be a whole number of keys from 1 to 10000; got "many"\n$/],
    ['KEYBRAKE_ETCD_COMPACTION_INTERVAL', 'hourly', /^keybrake: configuration error: KEYBRAKE_ETCD_COMPACTION_INTERVAL: cannot parse duration "hourly"/],
  ])('stops the control plane with one line naming %s', async (variable, value, message) => {
    const result = await keybrake(['control-plane'], stack.env({ [variable]: value }));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('stops the data plane with one line naming the variable', async () => {
    const result = await keybrake(['data-plane'], { KEYBRAKE_CONTROL_PLANE: 'http://127.0.0.1:7070', KEYBRAKE_DATAPLANE_TOKEN: 'x'.repeat(30) });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^keybrake: configuration error: KEYBRAKE_CONTROL_PLANE: /);
  });

  it('says so in one line when etcd is unreachable', async () => {
    const port = await freePort();
    const result = await keybrake(['control-plane'], stack.env({ KEYBRAKE_ETCD_ENDPOINTS: `http://127.0.0.1:${port}` }));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^keybrake: control plane could not start: .*etcd/);
  });

  it('names PostgreSQL in one line when it is unreachable', async () => {
    const port = await freePort();
    const result = await keybrake(['control-plane'], stack.env({ KEYBRAKE_DATABASE_URL: `postgres://keybrake:x@127.0.0.1:${port}/keybrake` }));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^keybrake: control plane could not start: PostgreSQL \(KEYBRAKE_DATABASE_URL\): .*ECONNREFUSED/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('names the address in one line when its port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const address = `127.0.0.1:${(taken.address() as AddressInfo).port}`;
      const result = await keybrake(['control-plane'], stack.env({ KEYBRAKE_GRPC_ADDR: address }));
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`keybrake: control plane could not start: KEYBRAKE_GRPC_ADDR: cannot listen on ${address} (in use by another process, or not an address of this host)\n`);
    } finally {
      taken.close();
    }
  });
});

describe('operator CLI', () => {
  const connection = () => ['--addr', cp.grpcAddress, '--token', stack.adminToken];

  it('issues a batch, lists, gets and revokes', async () => {
    const issued = await keybrake(['keys', 'issue', ...connection(), '--vendor', 'stripe', '--endpoint', 'POST /v1/charges', '--daily-usd-cap', '10.99', '--label', 'cli/run-1', '--count', '3', '--json']);
    expect(issued.code).toBe(0);
    const keys = JSON.parse(issued.stdout) as { id: string; vault_key: string; daily_cap_micros: number }[];
    expect(keys).toHaveLength(3);
    expect(keys[0]).toMatchObject({ daily_cap_micros: 10_990_000 });

    const table = await keybrake(['keys', 'list', ...connection(), '--label', 'cli/run-1']);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+VENDOR\s+LABEL\s+STATUS\s+SPENT \/ CAP\s+EXPIRES$/);
    expect(table.stdout).toContain(keys[0]!.id);
    expect(table.stdout).not.toContain(keys[0]!.vault_key);

    // Page by page with the cursor it prints, or every page with --all (one JSON key a line).
    const first = await keybrake(['keys', 'list', ...connection(), '--label', 'cli/run-1', '--limit', '2', '--json']);
    const page1 = JSON.parse(first.stdout) as { keys: { id: string }[]; next_cursor: string };
    expect(page1.keys).toHaveLength(2);
    const second = await keybrake(['keys', 'list', ...connection(), '--label', 'cli/run-1', '--limit', '2', '--cursor', page1.next_cursor, '--json']);
    const page2 = JSON.parse(second.stdout) as { keys: { id: string }[]; next_cursor: string | null };
    expect(page2.next_cursor).toBeNull();
    const everyKey = await keybrake(['keys', 'list', ...connection(), '--label', 'cli/run-1', '--limit', '2', '--all', '--json']);
    const lines = everyKey.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { id: string }).id);
    expect(lines).toEqual([...page1.keys, ...page2.keys].map((k) => k.id));
    expect(new Set(lines)).toEqual(new Set(keys.map((k) => k.id)));
    const human = await keybrake(['keys', 'list', ...connection(), '--label', 'cli/run-1', '--limit', '1']);
    expect(human.stderr).toMatch(/^more keys: --cursor [A-Za-z0-9_-]+ \(or --all\)\n$/);
    const allHuman = await keybrake(['keys', 'list', ...connection(), '--label', 'cli/run-1', '--limit', '1', '--all']);
    expect(allHuman.stdout.trim().split('\n')).toHaveLength(4);

    const revoked = await keybrake(['keys', 'revoke', keys[0]!.id, ...connection(), '--json']);
    expect(JSON.parse(revoked.stdout).status).toBe('revoked');
  });

  it('ends quietly when its reader closes the pipe early (`| head -1`)', async () => {
    const issued = await keybrake(['keys', 'issue', ...connection(), '--vendor', 'stripe', '--endpoint', 'POST /v1/charges', '--daily-usd-cap', '1', '--label', 'cli/pipe', '--count', '1000']);
    expect(issued.code).toBe(0);
    // Much more than a pipe holds: the reader takes the first chunk and goes away.
    const listing = spawn(process.execPath, [KEYBRAKE_BIN, 'keys', 'list', ...connection(), '--label', 'cli/pipe', '--all', '--json'], { env: { PATH: process.env['PATH'] }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    listing.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    listing.stdout.once('data', () => listing.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => listing.once('exit', resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  }, 60_000);

  it('creates, lists and revokes operator tokens; a revoked one is refused', async () => {
    const created = await keybrake(['tokens', 'create', ...connection(), '--role', 'auditor', '--name', 'cli token', '--json']);
    expect(created.code).toBe(0);
    const { id, token } = JSON.parse(created.stdout) as { id: string; token: string };
    const listed = await keybrake(['tokens', 'list', ...connection()]);
    expect(listed.stdout.split('\n')[0]).toMatch(/^ID\s+ROLE\s+NAME\s+CREATED$/);
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+auditor\\s+cli token`));
    expect(listed.stdout).not.toContain(token);
    expect((await keybrake(['keys', 'list', '--addr', cp.grpcAddress, '--token', token])).code).toBe(0);
    const revoked = await keybrake(['tokens', 'revoke', id, ...connection(), '--json']);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ id, revoked: true });
    const refused = await keybrake(['keys', 'list', '--addr', cp.grpcAddress, '--token', token]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/^keybrake: .*unknown operator token/);
    const missing = await keybrake(['tokens', 'revoke', ...connection()]);
    expect(missing.stderr).toMatch(/^keybrake: tokens revoke needs a token id/);
  });

  it('explains a bad flag or an unreachable control plane in one line', async () => {
    const bad = await keybrake(['keys', 'issue', ...connection(), '--vendor', 'stripe', '--endpoint', 'POST /v1/charges', '--daily-usd-cap=-3']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^keybrake: daily_usd_cap: must be greater than 0/);
    const port = await freePort();
    const down = await keybrake(['keys', 'list', '--addr', `127.0.0.1:${port}`, '--token', stack.adminToken]);
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/^keybrake: cannot reach the control plane/);
  });
});

describe('keybrake dev', () => {
  it('brings the stack up, prints a curl that issues a key, reuses its data, and stops every child', async () => {
    const home = await mkdtemp(join(tmpdir(), 'keybrake-dev-'));
    const [grpc, admin, proxy] = [await freePort(), await freePort(), await freePort()];
    const env = {
      KEYBRAKE_HOME: home,
      KEYBRAKE_GRPC_ADDR: `127.0.0.1:${grpc}`,
      KEYBRAKE_ADMIN_ADDR: `127.0.0.1:${admin}`,
      KEYBRAKE_PROXY_ADDR: `127.0.0.1:${proxy}`,
      KEYBRAKE_LOG_LEVEL: 'warn',
    };
    const startAndIssue = async () => {
      const dev = spawnKeybrake(['dev'], env);
      let children: number[] = [];
      try {
        const [curl] = await dev.waitForOutput(/curl -s -X POST [^\n]+\n[^\n]+\n[^\n]+'\n/, 90_000);
        const token = (await dev.waitForOutput(/admin token\s+(\S+)/))[1]!;
        children = descendantPids(dev.child.pid!);
        expect(children.length).toBeGreaterThanOrEqual(5); // the supervisor, etcd, postgres, control plane, data plane
        const { stdout } = await run('sh', ['-c', curl]);
        const key = JSON.parse(stdout) as { vault_key: string; id: string };
        expect(key.vault_key).toMatch(/^kbv_/);
        expect((await fetch(`http://127.0.0.1:${proxy}/healthz`)).status).toBe(200);
        dev.child.kill('SIGINT');
        expect(await dev.exited()).toBe(0);
        for (const pid of children) expect(isAlive(pid), `child ${pid} still running`).toBe(false);
        return { token, id: key.id };
      } finally {
        for (const pid of children) killIfAlive(pid);
        killIfAlive(dev.child.pid);
      }
    };
    try {
      const first = await startAndIssue();
      const second = await startAndIssue();
      expect(second.token).toBe(first.token);
      // The key issued by the first run is still there after a restart.
      const dev = spawnKeybrake(['dev'], env);
      try {
        await dev.waitForOutput(/Issue a vault key/, 90_000);
        const response = await fetch(`http://127.0.0.1:${admin}/vault/keys/${first.id}`, { headers: { authorization: `Bearer ${first.token}` } });
        expect(response.status).toBe(200);
        dev.child.kill('SIGINT');
        await dev.exited();
      } finally {
        killIfAlive(dev.child.pid);
      }
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  }, 240_000);
});
