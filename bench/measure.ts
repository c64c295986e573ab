/** Small timing helpers shared by the benchmarks. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Runs fn repeatedly for about `ms` milliseconds (after a warm-up) and returns operations per second. */
export function opsPerSecond(fn: (i: number) => void, ms = 1500): number {
  for (let i = 0; i < 200; i++) fn(i);
  let count = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let j = 0; j < 50; j++) fn(count++);
    now = performance.now();
  }
  return Math.round((count * 1000) / (now - start));
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
