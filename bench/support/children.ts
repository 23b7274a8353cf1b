/**
 * Helper processes of the benchmarks (simulated upstream, bare pass-through, load generator):
 * TypeScript entry points run in their own Node process, so they do not share this process's
 * event loop, and stopped by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { stopChild } from '../../dev/etcd-process.js';
import { onCpus } from './cpus.js';

const RUN_TS = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));

export function supportEntry(name: string): string {
  return fileURLToPath(new URL(`./${name}`, import.meta.url));
}

export interface HelperProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  /** Waits until the output has a line matching `pattern`; fails early if the process exits. */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  exited(): Promise<void>;
  stop(): Promise<void>;
}

/** Spawns `node bin/run-ts.js bench/support/<entry> args…`, on the given CPUs (taskset) unless null. */
export function spawnHelper(entry: string, args: readonly string[], cpuList: string | null = null): HelperProcess {
  return spawnProcess(process.execPath, [RUN_TS, supportEntry(entry), ...args], cpuList);
}

/** Helpers still running, so that a signal can stop the short-lived ones (wrk, load generators) too. */
const live = new Set<ChildProcess>();

/** SIGKILLs every helper still running (by PID); for signal handlers. */
export function killLiveHelpers(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  live.clear();
}

export function spawnProcess(file: string, args: readonly string[], cpuList: string | null = null): HelperProcess {
  const [command, commandArgs] = onCpus(cpuList, file, args);
  // taskset execs the command: the PID stays the command's.
  const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
  if (child.pid === undefined) throw new Error(`could not start ${file}`);
  const pid = child.pid;
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    // Keep the tail only: a helper must not grow this process's memory without bound.
    if (output.length > 1_000_000) output = output.slice(-500_000);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  live.add(child);
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      live.delete(child);
      resolve();
    }),
  );
  child.once('error', (error) => append(Buffer.from(`spawn error: ${error.message}\n`)));
  return {
    child,
    pid,
    output: () => output,
    exited: () => exit,
    async waitForOutput(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const match = pattern.exec(output);
        if (match !== null) return match;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${file} exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}:\n${output}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`${file} did not print ${pattern} within ${timeoutMs} ms:\n${output}`);
    },
    stop: () => stopChild(child),
  };
}

/** Starts a helper that prints `listening <port>` once it accepts connections. */
export async function startListeningHelper(entry: string, args: readonly string[], cpuList: string | null = null): Promise<{ process: HelperProcess; port: number }> {
  const helper = spawnHelper(entry, args, cpuList);
  try {
    const match = await helper.waitForOutput(/^listening (\d+)\n/m, 30_000);
    return { process: helper, port: Number(match[1]) };
  } catch (error) {
    await helper.stop();
    throw error;
  }
}
