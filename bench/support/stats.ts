/** Percentiles and formatting shared by the benchmarks. Milliseconds throughout. */

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  return quantile(sorted, p / 100);
}

/** Nearest-rank quantile (0..1) of an ascending array; NaN when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function summarise(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((total, value) => total + value, 0);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
  };
}

export function ms(value: number, digits = 2): string {
  if (Number.isNaN(value)) return 'n/a';
  if (value === Number.POSITIVE_INFINITY) return '∞';
  return `${value.toFixed(digits)} ms`;
}

/** A signed difference in milliseconds, e.g. "+0.21 ms". */
export function plusMs(value: number, digits = 2): string {
  if (Number.isNaN(value)) return 'n/a';
  return `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(digits)} ms`;
}

export function thousands(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

/** Left-aligned first column, right-aligned others. */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Latency quantiles at every 0.1 % (1,000 values, ascending): a distribution small enough to pass between processes. */
export const GRID_POINTS = 1000;

export function quantileGrid(values: readonly number[]): number[] {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return [];
  return Array.from({ length: GRID_POINTS }, (_, i) => percentile(sorted, ((i + 1) * 100) / GRID_POINTS));
}

/**
 * Percentile of several runs together: each run's grid stands for its request count, spread
 * evenly over its 1,000 quantiles. Exact to 0.1 % of each run's requests.
 */
export function mergedPercentile(runs: readonly { readonly grid: readonly number[]; readonly count: number }[], p: number): number {
  const points: { value: number; weight: number }[] = [];
  for (const run of runs) {
    if (run.grid.length === 0 || run.count === 0) continue;
    const weight = run.count / run.grid.length;
    for (const value of run.grid) points.push({ value, weight });
  }
  if (points.length === 0) return Number.NaN;
  points.sort((a, b) => a.value - b.value);
  const total = points.reduce((sum, point) => sum + point.weight, 0);
  const wanted = (p / 100) * total;
  let cumulative = 0;
  for (const point of points) {
    cumulative += point.weight;
    if (cumulative >= wanted - 1e-9) return point.value;
  }
  return points[points.length - 1]!.value;
}
