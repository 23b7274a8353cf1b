/**
 * Was the machine ours while we measured? CPU time the whole machine spent (/proc/stat) minus
 * what this benchmark's process tree spent (/proc/<pid>/stat, children reaped meanwhile
 * included through cutime/cstime), plus the hypervisor's steal time. Linux only; on other
 * systems every figure is NaN.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: /proc reports CPU time in these ticks (100 on every mainstream Linux build). */
export const TICKS_PER_SECOND = 100;

interface Sample {
  readonly at: number;
  readonly busyTicks: number;
  readonly stealTicks: number;
  readonly treeTicks: number;
}

export interface Interference {
  /** CPU used by processes outside this benchmark, in % of one core (may be slightly negative: rounding). */
  readonly otherPercentOfCore: number;
  readonly stealPercentOfCore: number;
}

function machineTicks(): { busy: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return { busy: user! + nice! + system! + irq! + softirq!, steal: steal! };
}

/** CPU seconds (user + system, reaped children included) of `root` and every process below it; NaN off Linux. */
export function processTreeSeconds(root: number): number {
  try {
    return treeTicks(root) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** utime + stime + cutime + cstime of every process descending from (and including) `root`. */
function treeTicks(root: number): number {
  const parents = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name: state ppid … utime(14) stime(15) cutime(16) cstime(17).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), Number(fields[1]));
      ticks.set(Number(entry), Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]));
    } catch {
      // the process ended while we looked
    }
  }
  let total = 0;
  for (const [pid, value] of ticks) {
    for (let at: number | undefined = pid, hops = 0; at !== undefined && at > 0 && hops < 64; at = parents.get(at), hops++) {
      if (at === root) {
        total += value;
        break;
      }
    }
  }
  return total;
}

function sample(): Sample | null {
  try {
    const { busy, steal } = machineTicks();
    return { at: performance.now(), busyTicks: busy, stealTicks: steal, treeTicks: treeTicks(process.pid) };
  } catch {
    return null;
  }
}

/** Runs `measure` and reports how much CPU others took meanwhile. */
export async function watchInterference<T>(measure: () => Promise<T>): Promise<{ result: T; interference: Interference }> {
  const before = sample();
  const result = await measure();
  const after = sample();
  if (before === null || after === null) return { result, interference: { otherPercentOfCore: Number.NaN, stealPercentOfCore: Number.NaN } };
  const seconds = (after.at - before.at) / 1000;
  const percent = (ticks: number) => (ticks / TICKS_PER_SECOND / seconds) * 100;
  return {
    result,
    interference: {
      otherPercentOfCore: percent(after.busyTicks - before.busyTicks - (after.treeTicks - before.treeTicks)),
      stealPercentOfCore: percent(after.stealTicks - before.stealTicks),
    },
  };
}

/**
 * Waits (at most `limitMs`) until the given process trees use less than `maxPercentOfCore` of
 * a core over a 250 ms window: work a target left behind (a data plane shipping its audit
 * backlog to the control plane and PostgreSQL) must not be billed to the next target measured.
 * Returns the milliseconds waited, or null if the processes never went quiet.
 */
export async function waitForQuiet(pids: readonly number[], limitMs: number, maxPercentOfCore = 5): Promise<number | null> {
  const started = performance.now();
  const seconds = () => pids.reduce((sum, pid) => sum + processTreeSeconds(pid), 0);
  let before = seconds();
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    const after = seconds();
    if (Number.isNaN(after) || ((after - before) / 0.25) * 100 < maxPercentOfCore) return performance.now() - started;
    if (performance.now() - started > limitMs) return null;
    before = after;
  }
}
