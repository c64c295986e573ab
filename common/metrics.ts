/**
 * A small Prometheus registry (text exposition format 0.0.4): counters, gauges and
 * histograms with labels. Enough for each role's /metrics without a dependency.
 */
type Labels = Record<string, string>;

interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
}

const labelKey = (labels: Labels = {}) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
const series = (name: string, key: string, value: number) => `${name}${key ? `{${key}}` : ''} ${Number.isFinite(value) ? value : 'NaN'}`;

export class Counter implements Metric {
  readonly type = 'counter';
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels?: Labels, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    return [...this.values].map(([k, v]) => series(this.name, k, v));
  }
}

export class Gauge implements Metric {
  readonly type = 'gauge';
  private readonly values = new Map<string, number | (() => number)>();
  constructor(readonly name: string, readonly help: string) {}
  set(value: number, labels?: Labels): void {
    this.values.set(labelKey(labels), value);
  }
  /** The value is read at scrape time (queue depth, age of oldest item, ...). */
  collect(fn: () => number, labels?: Labels): void {
    this.values.set(labelKey(labels), fn);
  }
  render(): string[] {
    return [...this.values].map(([k, v]) => series(this.name, k, typeof v === 'function' ? v() : v));
  }
}

export class Histogram implements Metric {
  readonly type = 'histogram';
  private readonly data = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {}
  observe(value: number, labels?: Labels): void {
    const k = labelKey(labels);
    let d = this.data.get(k);
    if (!d) this.data.set(k, (d = { counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    this.buckets.forEach((b, i) => {
      if (value <= b) d.counts[i]!++;
    });
    d.sum += value;
    d.count++;
  }
  render(): string[] {
    const out: string[] = [];
    for (const [k, d] of this.data) {
      const sep = k ? `${k},` : '';
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket{${sep}le="${b}"} ${d.counts[i]}`));
      out.push(`${this.name}_bucket{${sep}le="+Inf"} ${d.count}`);
      out.push(series(`${this.name}_sum`, k, d.sum), series(`${this.name}_count`, k, d.count));
    }
    return out;
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric>();
  private add<M extends Metric>(m: M): M {
    if (this.metrics.has(m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.metrics.set(m.name, m);
    return m;
  }
  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }
  gauge(name: string, help: string): Gauge {
    return this.add(new Gauge(name, help));
  }
  histogram(name: string, help: string, buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }
  render(): string {
    const lines: string[] = [];
    for (const m of this.metrics.values()) {
      lines.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`, ...m.render());
    }
    return `${lines.join('\n')}\n`;
  }
}
