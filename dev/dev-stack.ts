/**
 * `keybrake dev`: the whole stack on one machine. etcd and PostgreSQL keep their data under
 * .keybrake/ (git-ignored), and so, in this local mode only, do the generated master key and
 * tokens, so a second start finds everything as it was.
 *
 * Two processes. What the user started (the front) only relays output and says when to stop;
 * the stack runs under a supervisor in a process group of its own, so a terminal's Ctrl-C
 * (which signals the whole foreground group) reaches the front alone, and the supervisor stops
 * the stack in order: the data plane first (it reports its spend and returns its leases), then
 * the control plane, PostgreSQL and etcd. The front asks for that on SIGINT, SIGTERM and SIGHUP
 * and when nobody reads its output any more (`npm start | head -3`); the supervisor does it by
 * itself when the front is gone (its stdin closes), however the front ended.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseListenAddress } from '../core/config.js';
import { isJsonObject, parseStrictJsonText } from '../core/cost/strict-json.js';
import { findEtcdBinary, startEtcd, stopChild } from './etcd-process.js';
import { DEV_ADDRESSES_FILE, LOCAL_SECRETS_FILE } from '../cli/local-stack-files.js';
import { startPostgres } from './postgres-process.js';

const KEYBRAKE_BIN = fileURLToPath(new URL('../bin/keybrake.js', import.meta.url));
const READY_TIMEOUT_MS = 30_000;
/** Internal: runs the stack itself (see above). */
const SUPERVISE = '--supervise';
/**
 * After the banner, one more line a moment later: a reader that took only the first lines
 * (`| head -3`) has gone by then, and this write is how the stack learns it.
 */
const READY_LINE_DELAY_MS = 1000;

interface LocalSecrets {
  readonly master_key: string;
  readonly admin_token: string;
  readonly dataplane_token: string;
  readonly postgres_password: string;
}

export async function runDevStack(args: readonly string[]): Promise<void> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write('usage: keybrake dev\n\nStarts etcd, PostgreSQL, one control plane and one data plane; data under ./.keybrake (KEYBRAKE_HOME).\n' +
      'Addresses: KEYBRAKE_GRPC_ADDR (127.0.0.1:7070), KEYBRAKE_ADMIN_ADDR (127.0.0.1:7080), KEYBRAKE_PROXY_ADDR (127.0.0.1:8080).\n' +
      'Vendors: KEYBRAKE_UPSTREAM_STRIPE, KEYBRAKE_UPSTREAM_TWILIO, KEYBRAKE_UPSTREAM_RESEND (default: the real APIs), e.g. a simulator to try things.\n' +
      'Ctrl-C, SIGTERM or SIGHUP stops the stack in order: data plane, control plane, PostgreSQL, etcd.\n');
    return;
  }
  if (args.includes(SUPERVISE)) return superviseStack();
  relayToSupervisor();
}

/** The front: starts the supervisor in its own process group, relays its output, and asks it to stop. */
function relayToSupervisor(): void {
  const supervisor = spawn(process.execPath, [KEYBRAKE_BIN, 'dev', SUPERVISE], { detached: true, stdio: ['pipe', 'pipe', 'pipe'], env: process.env });
  let outputOpen = true;
  const relay = (from: Readable | null, to: NodeJS.WriteStream) => from?.on('data', (chunk: Buffer) => {
    // Read to the end either way: a full pipe would block the stack's own logging.
    if (outputOpen) to.write(chunk);
  });
  relay(supervisor.stdout, process.stdout);
  relay(supervisor.stderr, process.stderr);
  let stopSent = false;
  const stop = () => {
    if (stopSent) return;
    stopSent = true;
    supervisor.kill('SIGTERM');
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stop);
  // Nobody reads our output any more (EPIPE): stop, quietly.
  const outputClosed = () => {
    outputOpen = false;
    stop();
  };
  process.stdout.on('error', outputClosed);
  process.stderr.on('error', outputClosed);
  // Leave with its exit code once its output is all relayed (its stdio closed), or shortly after it exited.
  process.exitCode = 1;
  supervisor.on('exit', (code, signal) => {
    process.exitCode = code ?? (signal === null ? 1 : 128 + 15);
    setTimeout(() => process.exit(), 2000).unref();
  });
  supervisor.on('close', () => process.exit());
}

/** The supervisor: starts the stack and stops it in order, whatever asks it to. */
async function superviseStack(): Promise<void> {
  const home = resolve(process.env['KEYBRAKE_HOME'] ?? '.keybrake');
  await mkdir(home, { recursive: true });
  // PostgreSQL runs as the `postgres` user when we are root: it must be able to reach its data dir.
  await chmod(home, 0o755);
  let secrets: LocalSecrets;
  try {
    secrets = await loadOrCreateSecrets(join(home, LOCAL_SECRETS_FILE));
  } catch (error) {
    process.stderr.write(`keybrake dev: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
    return;
  }
  const etcdBinary = await ensureEtcdBinary();

  const grpcAddr = parseListenAddress(process.env, 'KEYBRAKE_GRPC_ADDR', '127.0.0.1:7070').text;
  const adminAddr = parseListenAddress(process.env, 'KEYBRAKE_ADMIN_ADDR', '127.0.0.1:7080').text;
  const proxyAddr = parseListenAddress(process.env, 'KEYBRAKE_PROXY_ADDR', '127.0.0.1:8080').text;

  /** Started last first: what stopping goes through, in this order. */
  const running: { readonly name: string; stop(): Promise<unknown> }[] = [];
  const children: ChildProcess[] = [];
  let stopping = false;
  let outputOpen = true;
  const say = (line: string) => {
    if (outputOpen) process.stdout.write(line);
  };
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('\nkeybrake dev: stopping the data plane (it reports its spend and returns its leases), then the control plane, PostgreSQL and etcd…\n');
    for (const part of [...running].reverse()) await part.stop().catch(() => {});
    say('keybrake dev: stopped\n');
    process.exit(code);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stopAll(0));
  // The front is gone (its end of our stdin closed, however it ended): stop too.
  process.stdin.on('end', () => void stopAll(0));
  process.stdin.on('error', () => void stopAll(0));
  process.stdin.resume();
  process.stdout.on('error', () => {
    outputOpen = false;
    void stopAll(0);
  });

  try {
    const etcd = await startEtcd({ binary: etcdBinary, dataDir: join(home, 'etcd') });
    running.push({ name: 'etcd', stop: () => etcd.stop() });
    const postgres = await startPostgres({ dataDir: join(home, 'pg'), password: secrets.postgres_password });
    running.push({ name: 'PostgreSQL', stop: () => postgres.stop() });
    await postgres.createDatabase('keybrake');

    const common = { ...process.env, KEYBRAKE_DATAPLANE_TOKEN: secrets.dataplane_token };
    const controlPlane = spawnKeybrake('control-plane', {
      ...common,
      KEYBRAKE_ETCD_ENDPOINTS: etcd.endpoint,
      KEYBRAKE_DATABASE_URL: postgres.url('keybrake'),
      KEYBRAKE_GRPC_ADDR: grpcAddr,
      KEYBRAKE_ADMIN_ADDR: adminAddr,
      KEYBRAKE_ADMIN_TOKEN: secrets.admin_token,
      KEYBRAKE_MASTER_KEY: secrets.master_key,
    });
    children.push(controlPlane);
    running.push({ name: 'control plane', stop: () => stopChild(controlPlane) });
    await waitForHttp(`http://${adminAddr}/readyz`, controlPlane, 'control plane');

    const dataPlane = spawnKeybrake('data-plane', {
      ...common,
      KEYBRAKE_CONTROL_PLANE: grpcAddr,
      KEYBRAKE_PROXY_ADDR: proxyAddr,
      KEYBRAKE_DATAPLANE_ID: process.env['KEYBRAKE_DATAPLANE_ID'] ?? 'dp-local',
      KEYBRAKE_AUDIT_SPOOL_DIR: join(home, 'spool'),
    });
    children.push(dataPlane);
    running.push({ name: 'data plane', stop: () => stopChild(dataPlane) });
    await waitForHttp(`http://${proxyAddr}/healthz`, dataPlane, 'data plane');

    for (const child of children) {
      child.once('exit', (code, signal) => {
        if (stopping) return;
        process.stderr.write(`keybrake dev: a child process stopped (${signal ?? `exit ${code}`}); stopping the stack\n`);
        void stopAll(1);
      });
    }
    // The CLI finds the stack here (and the admin token in local.json), whatever addresses it was given.
    await writeFile(join(home, DEV_ADDRESSES_FILE), `${JSON.stringify({ grpc: grpcAddr, admin: adminAddr, proxy: proxyAddr })}\n`);
    printSummary({ etcd: etcd.endpoint, postgres: postgres.url('keybrake').replace(/:[^:@/]+@/, ':****@'), grpcAddr, adminAddr, proxyAddr, adminToken: secrets.admin_token });
    setTimeout(() => say('keybrake dev: ready; logs follow\n'), READY_LINE_DELAY_MS).unref();
  } catch (error) {
    process.stderr.write(`keybrake dev: ${error instanceof Error ? error.message : String(error)}\n`);
    await stopAll(1);
  }
}

async function loadOrCreateSecrets(path: string): Promise<LocalSecrets> {
  if (existsSync(path)) return readLocalSecrets(path, await readFile(path, 'utf8'));
  const secrets: LocalSecrets = {
    master_key: randomBytes(32).toString('base64'),
    admin_token: `kbadmin_${randomBytes(24).toString('base64url')}`,
    dataplane_token: `kbdp_${randomBytes(24).toString('base64url')}`,
    postgres_password: randomBytes(16).toString('hex'),
  };
  await writeFile(path, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  return secrets;
}

/** The stack's secrets, read strictly: a member given twice (say, after a hand edit) is refused, not read as its last. */
function readLocalSecrets(path: string, text: string): LocalSecrets {
  const value = parseStrictJsonText(text, path);
  const fields = ['master_key', 'admin_token', 'dataplane_token', 'postgres_password'] as const;
  if (!isJsonObject(value) || !fields.every((field) => typeof value[field] === 'string')) {
    throw new Error(`${path} must be a JSON object with the string members ${fields.join(', ')}`);
  }
  return { master_key: value['master_key'] as string, admin_token: value['admin_token'] as string, dataplane_token: value['dataplane_token'] as string, postgres_password: value['postgres_password'] as string };
}

/** Finds etcd; as root on Debian, installs the etcd-server package if it is missing. */
async function ensureEtcdBinary(): Promise<string> {
  const found = findEtcdBinary(process.env);
  if (found !== null) return found;
  if (userInfo().uid === 0 && existsSync('/etc/debian_version')) {
    process.stdout.write('keybrake dev: etcd not found; installing Debian package etcd-server…\n');
    const run = (args: string[]) => spawnSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (run(['install', '-y', '-qq', 'etcd-server']).status !== 0) {
      run(['update', '-qq']);
      run(['install', '-y', '-qq', 'etcd-server']);
    }
    const installed = findEtcdBinary(process.env);
    if (installed !== null) return installed;
  }
  throw new Error('etcd not found: install it (Debian: apt-get install etcd-server) or set KEYBRAKE_ETCD_BIN to its path');
}

function spawnKeybrake(command: string, env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [KEYBRAKE_BIN, command], { env, stdio: ['ignore', 'inherit', 'inherit'] });
}

async function waitForHttp(url: string, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited during start-up (exit ${child.exitCode})`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${what} was not ready at ${url} within ${READY_TIMEOUT_MS} ms`);
}

function printSummary(s: { etcd: string; postgres: string; grpcAddr: string; adminAddr: string; proxyAddr: string; adminToken: string }): void {
  const curl = [
    `curl -s -X POST http://${s.adminAddr}/vault/keys \\`,
    `  -H "Authorization: Bearer ${s.adminToken}" -H "Content-Type: application/json" \\`,
    `  -d '{"vendor":"stripe","daily_usd_cap":300,"allowed_endpoints":["POST /v1/payment_intents"],"expires_in":"4h","agent_run_label":"metaflow/1"}'`,
  ].join('\n');
  process.stdout.write(`
Keybrake is running (Ctrl-C stops everything, in order).

  control plane gRPC   ${s.grpcAddr}
  dashboard            http://${s.adminAddr}/  (sign in with the admin token)
  admin API            http://${s.adminAddr}
  data plane (proxy)   http://${s.proxyAddr}
  etcd                 ${s.etcd}
  PostgreSQL           ${s.postgres}
  admin token          ${s.adminToken}

Issue a vault key:

${curl}

Store the vendor's secret once, before the first proxied call:

  printf '%s' "$STRIPE_SECRET_KEY" | node bin/keybrake.js vendors set stripe --secret-stdin

`);
}
