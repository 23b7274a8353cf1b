/**
 * The machine bench:audit runs on: waiting for other benchmarks to finish (1-minute load
 * average), and the CPU time processes spent (Linux /proc), to show where the time went.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

import { childPids } from '../../test/support/processes.js';

export const MAX_LOAD = 1.5;

/** Waits (at most `maxWaitMs`, saying why) until the 1-minute load average is at most MAX_LOAD; returns it. */
export async function waitForQuietMachine(maxWaitMs = 5 * 60_000): Promise<{ load: number; waitedMs: number; quiet: boolean }> {
  const started = Date.now();
  let lastSaid = -Infinity;
  for (;;) {
    const load = loadavg()[0]!;
    const waitedMs = Date.now() - started;
    if (load <= MAX_LOAD) return { load, waitedMs, quiet: true };
    if (waitedMs >= maxWaitMs) {
      console.log(`  machine still busy after ${Math.round(waitedMs / 1000)} s (1-min load ${load.toFixed(2)} > ${MAX_LOAD}); measuring anyway, flagged below`);
      return { load, waitedMs, quiet: false };
    }
    if (Date.now() - lastSaid >= 15_000) {
      lastSaid = Date.now();
      console.log(`  waiting: 1-min load average ${load.toFixed(2)} > ${MAX_LOAD} (other benchmarks running?); waited ${Math.round(waitedMs / 1000)} s of at most ${maxWaitMs / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

const TICKS_PER_SECOND = 100;

/** User + system CPU seconds of one process (0 if it is gone); with `reaped`, also its children that ended. */
export function cpuSeconds(pid: number, reaped = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime, cstime: fields 14-17 of stat, counted here from the state field (3).
    const own = Number(fields[11]) + Number(fields[12]);
    const children = reaped ? Number(fields[13]) + Number(fields[14]) : 0;
    return (own + children) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** CPU seconds of a process and its children (PostgreSQL's backends), living and ended. */
export function treeCpuSeconds(pid: number): number {
  return cpuSeconds(pid, true) + childPids(pid).reduce((sum, child) => sum + cpuSeconds(child, true), 0);
}

/** CPU seconds of this machine (all cores) from /proc/stat: busy (processes, interrupts) and total (with idle, iowait, steal). */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = user + nice + system + irq + softirq;
  return { busy: busy / TICKS_PER_SECOND, total: (busy + idle + iowait + steal) / TICKS_PER_SECOND };
}

/**
 * CPU other processes (not `ours`, not this process) took over `windowMs`, in % of one core:
 * machine busy time less ours.
 */
export async function foreignCpuPercent(ours: readonly number[], windowMs: number): Promise<number> {
  const sample = () => ({
    machine: machineCpu().busy,
    ours: ours.reduce((sum, pid) => sum + treeCpuSeconds(pid), 0) + (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  });
  const before = sample();
  await new Promise((r) => setTimeout(r, windowMs));
  const after = sample();
  return Math.max(0, ((after.machine - before.machine - (after.ours - before.ours)) / (windowMs / 1000)) * 100);
}

/** Before a phase: waits (at most `maxWaitMs`, saying why) while other processes take more than `maxPercent` of a core. */
export async function waitForNoInterference(ours: readonly number[], phase: string, maxPercent = 25, maxWaitMs = 60_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    const percent = await foreignCpuPercent(ours, 2000);
    if (percent <= maxPercent) return percent;
    if (Date.now() - started >= maxWaitMs) {
      console.log(`  other processes still take ${percent.toFixed(0)}% of a core; measuring ${phase} anyway (flagged below)`);
      return percent;
    }
    console.log(`  waiting before ${phase}: other processes take ${percent.toFixed(0)}% of a core (> ${maxPercent}%; other benchmarks?)`);
  }
}
