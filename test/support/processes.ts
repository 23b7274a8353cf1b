/**
 * Helpers for tests that run `keybrake` as a real process: spawn, read output until a pattern
 * appears, and make sure every process a test started is stopped by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const KEYBRAKE_BIN = fileURLToPath(new URL('../../bin/keybrake.js', import.meta.url));

export interface SpawnedKeybrake {
  readonly child: ChildProcess;
  output(): string;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited(): Promise<number | null>;
}

/**
 * `nodeFlags` go to node itself (e.g. --cpu-prof, which NODE_OPTIONS does not allow);
 * `detached` puts it in a process group of its own, which a test can signal as a terminal would.
 */
export function spawnKeybrake(args: string[], env: Record<string, string | undefined>, nodeFlags: readonly string[] = [], options: { detached?: boolean } = {}): SpawnedKeybrake {
  const child = spawn(process.execPath, [...nodeFlags, KEYBRAKE_BIN, ...args], { env: { PATH: process.env['PATH'], ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited: () => exit,
    async waitForOutput(pattern, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const match = pattern.exec(output);
        if (match !== null) return match;
        if (child.exitCode !== null) throw new Error(`keybrake exited (${child.exitCode}) before printing ${pattern}:\n${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`timed out waiting for ${pattern}:\n${output}`);
    },
  };
}

/** PIDs whose parent is `pid` (Linux /proc). */
export function childPids(pid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** Every process below `pid` (children, their children, …), as found now. */
export function descendantPids(pid: number): number[] {
  const found: number[] = [];
  for (let frontier = [pid]; frontier.length > 0; ) {
    const next = frontier.flatMap((parent) => childPids(parent));
    found.push(...next);
    frontier = next;
  }
  return found;
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Kills a process by PID if it still runs; for `finally` blocks. */
export function killIfAlive(pid: number | undefined): void {
  if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGKILL');
}
