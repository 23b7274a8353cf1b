/**
 * CPU pinning for the proxy benchmark (Linux `taskset`, util-linux). With only two cores, a
 * load generator, an upstream and a proxy migrating between them make saturation numbers swing
 * by 2x from run to run; pinning the proxy under test to the last core and everything that
 * drives or answers it to the others makes runs comparable. Without taskset nothing is pinned.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';

export const TASKSET_BIN = '/usr/bin/taskset';

export interface CpuLayout {
  /** CPU list (taskset -c syntax) for the proxy under test; null when not pinning. */
  readonly proxy: string | null;
  /** CPU list for the load generators and the upstream; null when not pinning. */
  readonly load: string | null;
  readonly description: string;
}

export function cpuLayout(): CpuLayout {
  const count = cpus().length;
  if (count < 2) return { proxy: null, load: null, description: `not pinned (${count} core)` };
  if (!existsSync(TASKSET_BIN)) return { proxy: null, load: null, description: 'not pinned (taskset not installed: apt-get install util-linux)' };
  const proxy = String(count - 1);
  const load = count === 2 ? '0' : `0-${count - 2}`;
  return { proxy, load, description: `proxy under test pinned to CPU ${proxy}; load generator and upstream to CPU ${load}` };
}

/** Pins every thread of a running process; a no-op when `cpuList` is null. */
export function pinProcess(pid: number, cpuList: string | null): void {
  if (cpuList === null) return;
  const result = spawnSync(TASKSET_BIN, ['-a', '-p', '-c', cpuList, String(pid)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`taskset could not pin pid ${pid} to CPU ${cpuList}: ${result.stderr}`);
}

/** The command line that runs `file args…` on `cpuList` (unchanged when null). */
export function onCpus(cpuList: string | null, file: string, args: readonly string[]): [string, string[]] {
  return cpuList === null ? [file, [...args]] : [TASKSET_BIN, ['-c', cpuList, file, ...args]];
}
