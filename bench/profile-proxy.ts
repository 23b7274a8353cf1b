/**
 * npm run bench:profile-proxy — where a data plane's CPU goes under saturating load: the same
 * upstream, stack and request as bench:proxy, one data plane started with --cpu-prof, wrk for
 * a few seconds, then the profile summarised by function (self time) and by source file.
 * A tool for finding the next thing to make cheaper, not a benchmark with targets.
 *   npm run bench:profile-proxy -- [seconds=8] [top=40] [bare | control-plane]
 * With `bare`, the bare pass-through of bench:proxy is profiled instead, for comparison; with
 * `control-plane`, the control plane behind the data plane (audit ingest, leases) under the same load.
 */
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { spawnProcess, startListeningHelper, supportEntry } from './support/children.js';
import { freePort } from '../dev/free-port.js';
import { withCleanup } from './support/cleanup.js';
import { cpuLayout, pinProcess } from './support/cpus.js';
import { benchKeySpec, startKeybrakeStack } from './support/keybrake-stack.js';
import { chargeShape, runSaturation } from './support/load.js';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
  readonly children?: number[];
}

interface CpuProfile {
  readonly nodes: ProfileNode[];
  readonly samples: number[];
  readonly timeDeltas: number[];
}

const seconds = Number(process.argv[2] ?? 8);
const top = Number(process.argv[3] ?? 40);
const profiled = process.argv[4] ?? 'data-plane';
if (!['data-plane', 'bare', 'control-plane'].includes(profiled)) throw new Error(`what to profile: bare or control-plane (or nothing, for the data plane), not ${profiled}`);
const bare = profiled === 'bare';
const RUN_TS = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));

function label(node: ProfileNode): { fn: string; file: string } {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url === '' ? '(native)' : url.includes('node_modules') ? `node_modules/${url.split('node_modules/').pop()!.split('/').slice(0, url.includes('/@') ? 2 : 1).join('/')}` : url.startsWith('node:') ? url : relative(process.cwd(), url.replace(/^file:\/\//, ''));
  return { fn: `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`, file };
}

function summarise(profile: CpuProfile): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i] ?? 0));
  // Idle time is the load generator's and the start-up's, not the data plane's work.
  const busy = [...self.entries()].filter(([id]) => byId.get(id)!.callFrame.functionName !== '(idle)');
  const total = busy.reduce((sum, [, us]) => sum + us, 0);
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, us] of busy) {
    const { fn, file } = label(byId.get(id)!);
    byFn.set(fn, (byFn.get(fn) ?? 0) + us);
    byFile.set(file, (byFile.get(file) ?? 0) + us);
  }
  // Inclusive time of the project's own functions (each counted once per stack, recursion aside).
  const inclusive = new Map<string, number>();
  const walk = (id: number, onStack: Set<string>): number => {
    const node = byId.get(id)!;
    let sum = node.callFrame.functionName === '(idle)' ? 0 : (self.get(id) ?? 0);
    const { fn, file } = label(node);
    const ours = !file.startsWith('node') && !file.startsWith('(') && !file.startsWith('wasm');
    const fresh = ours && !onStack.has(fn);
    if (fresh) onStack.add(fn);
    for (const child of node.children ?? []) sum += walk(child, onStack);
    if (fresh) {
      onStack.delete(fn);
      inclusive.set(fn, (inclusive.get(fn) ?? 0) + sum);
    }
    return sum;
  };
  walk(profile.nodes[0]!.id, new Set());
  const rows = (map: Map<string, number>, n: number) =>
    [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, us]) => `${((us / total) * 100).toFixed(1).padStart(5)}%  ${name}`).join('\n');
  return `busy time ${(total / 1e6).toFixed(2)} s\n\nself time by function (top ${top}):\n${rows(byFn, top)}\n\nself time by file:\n${rows(byFile, 30)}\n\ninclusive time of the project's functions:\n${rows(inclusive, 40)}`;
}

async function main(): Promise<void> {
  await withCleanup(async (cleanup) => {
    const dir = await mkdtemp(join(tmpdir(), 'keybrake-profile-'));
    cleanup.add(`temp dir ${dir}`, () => rm(dir, { recursive: true, force: true }));
    await chmod(dir, 0o755);
    const layout = cpuLayout();
    const upstream = await startListeningHelper('upstream-server.ts', [], layout.load);
    cleanup.add('upstream', () => upstream.process.stop());
    const origin = `http://127.0.0.1:${upstream.port}`;
    const profileDir = join(dir, 'profile');
    let target: { origin: string; authorization: string; stop: () => Promise<unknown> };
    if (bare) {
      const port = await freePort();
      const helper = spawnProcess(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, RUN_TS, supportEntry('bare-proxy.ts'), origin, String(port)], layout.proxy);
      cleanup.add('bare proxy', () => helper.stop());
      await helper.waitForOutput(/^listening/m, 30_000);
      target = { origin: `http://127.0.0.1:${port}`, authorization: 'Bearer sk_test_bare', stop: () => helper.stop() };
    } else {
      const profileFlags = ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
      const stack = await startKeybrakeStack(cleanup, dir, profiled === 'control-plane' ? profileFlags : []);
      const { issued } = await stack.client.issueKey({ spec: benchKeySpec('bench/profile') });
      const dataPlane = await stack.startDataPlane('dp-profile', origin, {}, profiled === 'data-plane' ? profileFlags : []);
      pinProcess(dataPlane.pid, layout.proxy);
      target = {
        origin: dataPlane.origin,
        authorization: `Bearer ${issued!.vaultKey}`,
        stop: async () => {
          const stopped = profiled === 'control-plane' ? stack.controlPlane : dataPlane.process;
          stopped.child.kill('SIGTERM');
          await stopped.exited();
        },
      };
    }
    await new Promise((r) => setTimeout(r, 500));
    const shape = chargeShape(target.authorization);
    await runSaturation(dir, target.origin, shape, 10, 2, 'warm', layout.load);
    const result = await runSaturation(dir, target.origin, shape, 10, seconds, 'profile', layout.load);
    process.stderr.write(`${result.requestsPerSecond.toFixed(0)} req/s, p50 ${result.p50.toFixed(2)} ms, failures ${result.failures}; ${result.requests} requests in the measured run\n`);
    await target.stop();
    const [name] = (await readdir(profileDir)).filter((n) => n.endsWith('.cpuprofile'));
    if (name === undefined) throw new Error(`the ${profiled} wrote no profile`);
    const text = await readFile(join(profileDir, name), 'utf8');
    if (process.env['KEEP_PROFILE'] !== undefined) await writeFile(process.env['KEEP_PROFILE'], text);
    console.log(summarise(JSON.parse(text) as CpuProfile));
  });
}

await main();
