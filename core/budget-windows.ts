/**
 * The budget windows a key spends from: "day:YYYY-MM-DD" (UTC) for a daily cap, "life" for a
 * lifetime budget. A call must fit in every window its key has.
 */
export interface BudgetWindow {
  readonly window: string;
  readonly capMicros: number;
}

export function currentWindows(caps: { readonly dailyCapMicros: number; readonly budgetMicros: number }, wallNowMs: number): BudgetWindow[] {
  const windows: BudgetWindow[] = [];
  if (caps.dailyCapMicros > 0) windows.push({ window: `day:${new Date(wallNowMs).toISOString().slice(0, 10)}`, capMicros: caps.dailyCapMicros });
  if (caps.budgetMicros > 0) windows.push({ window: 'life', capMicros: caps.budgetMicros });
  return windows;
}
