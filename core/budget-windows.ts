/**
 * The budget windows a key spends from: "day:YYYY-MM-DD" (UTC) for a daily cap, "life" for a
 * lifetime budget. A call must fit in every window its key has.
 */
export interface BudgetWindow {
  readonly window: string;
  readonly capMicros: number;
}

const DAY_MS = 86_400_000;
/** The last day's window name, so that a busy data plane formats a date once a day, not once a call. */
let lastDay = { index: Number.NaN, name: '' };

function dayWindowName(wallNowMs: number): string {
  const index = Math.floor(wallNowMs / DAY_MS);
  if (index !== lastDay.index) lastDay = { index, name: `day:${new Date(index * DAY_MS).toISOString().slice(0, 10)}` };
  return lastDay.name;
}

export function currentWindows(caps: { readonly dailyCapMicros: number; readonly budgetMicros: number }, wallNowMs: number): BudgetWindow[] {
  const windows: BudgetWindow[] = [];
  if (caps.dailyCapMicros > 0) windows.push({ window: dayWindowName(wallNowMs), capMicros: caps.dailyCapMicros });
  if (caps.budgetMicros > 0) windows.push({ window: 'life', capMicros: caps.budgetMicros });
  return windows;
}
