import { ModelMismatchError } from './errors.js';
import { similarityFromDistance, DEFAULT_THRESHOLDS } from './scores.js';
import type { FaceTemplate } from './template.js';
import { instantiateScan, newMemory, scanModule, SCREEN_SLACK, type ScanFn, type WasmMemory } from './scan-kernel.js';

/**
 * Enrolled templates in one contiguous Float32Array (rows of `dims`), each row tagged with
 * its subject. 1:1 compares against all of the claimed subject's templates; 1:N scans every
 * row once, keeps each subject's best, and refuses when the best two are too close.
 */
export interface Match {
  subject: string;
  similarity: number;
}

export interface IdentifyResult {
  best: Match | null;
  candidates: Match[];
  /** 'match', or why not: nobody above threshold, or the best two too close to tell apart. */
  outcome: 'match' | 'no-match' | 'ambiguous' | 'empty';
}

const PAGE = 65536;

export class TemplateIndex {
  private data: Float32Array;
  private rowSubject: Int32Array;
  private rows = 0;
  private readonly subjects: string[] = [];
  private readonly subjectIndex = new Map<string, number>();
  /**
   * With WebAssembly SIMD (Node 16.4+), rows live in the kernel's linear memory: the probe at
   * 0, then the rows, then one float32 screen result per row.
   */
  private readonly wasm: { memory: WasmMemory; scan: ScanFn; dataOffset: number } | null = null;

  constructor(
    readonly model: string,
    readonly dims: number,
    capacity = 1024,
  ) {
    capacity = Math.max(1, capacity);
    this.rowSubject = new Int32Array(capacity);
    if (dims % 4 === 0 && scanModule()) {
      const dataOffset = Math.ceil((dims * 4) / 64) * 64;
      const memory = newMemory(Math.ceil((dataOffset + capacity * dims * 4 + capacity * 4) / PAGE));
      const scan = instantiateScan(memory);
      if (scan) {
        this.wasm = { memory, scan, dataOffset };
        this.data = new Float32Array(memory.buffer, dataOffset, capacity * dims);
        return;
      }
    }
    this.data = new Float32Array(capacity * dims);
  }

  get size(): number {
    return this.rows;
  }

  get subjectCount(): number {
    return this.subjectIndex.size;
  }

  /** Replaces the subject's templates. */
  set(subject: string, templates: FaceTemplate[]): void {
    for (const t of templates) this.check(t);
    this.remove(subject);
    if (templates.length === 0) return;
    let idx = this.subjectIndex.get(subject);
    if (idx === undefined) {
      idx = this.subjects.length;
      this.subjects.push(subject);
      this.subjectIndex.set(subject, idx);
    }
    for (const t of templates) {
      this.grow();
      this.data.set(t.vector, this.rows * this.dims);
      this.rowSubject[this.rows++] = idx;
    }
  }

  remove(subject: string): void {
    const idx = this.subjectIndex.get(subject);
    if (idx === undefined) return;
    let w = 0;
    for (let r = 0; r < this.rows; r++) {
      if (this.rowSubject[r] === idx) continue;
      if (w !== r) {
        this.data.copyWithin(w * this.dims, r * this.dims, (r + 1) * this.dims);
        this.rowSubject[w] = this.rowSubject[r]!;
      }
      w++;
    }
    this.rows = w;
    this.subjectIndex.delete(subject);
  }

  has(subject: string): boolean {
    return this.subjectIndex.has(subject);
  }

  /** 1:1 — the best similarity between the probe and any template of the subject; null if none enrolled. */
  verify(subject: string, probe: FaceTemplate): number | null {
    this.check(probe);
    const idx = this.subjectIndex.get(subject);
    if (idx === undefined) return null;
    const q = Float64Array.from(probe.vector);
    let best = Infinity;
    for (let r = 0; r < this.rows; r++) if (this.rowSubject[r] === idx) best = Math.min(best, this.distance2(r, q, Infinity));
    return best === Infinity ? null : similarityFromDistance(Math.sqrt(best));
  }

  /**
   * 1:N — top-k subjects by best similarity, with the threshold and margin rule applied. The
   * margin is always checked against the runner-up subject, also when k = 1 (it is then
   * found but not listed in `candidates`).
   */
  identify(
    probe: FaceTemplate,
    opts: { k?: number; threshold?: number; margin?: number } = {},
  ): IdentifyResult {
    this.check(probe);
    const k = Math.max(1, opts.k ?? 3);
    // The margin rule needs the runner-up subject even when only the best is asked for.
    const keep = Math.max(k, 2);
    const threshold = opts.threshold ?? DEFAULT_THRESHOLDS.identify;
    const margin = opts.margin ?? DEFAULT_THRESHOLDS.identifyMargin;
    if (this.rows === 0) return { best: null, candidates: [], outcome: 'empty' };
    const bestBySubject = new Float64Array(this.subjects.length).fill(Infinity);
    const q = Float64Array.from(probe.vector);
    // A running top-k of subjects bounds every row: a row farther than the current k-th best
    // subject (or than its own subject's best) cannot change the answer, so its distance is
    // abandoned as soon as the partial sum passes that bound. Rows that count are summed in
    // full, in the same order, so the result is exactly that of a full scan.
    const topS = new Int32Array(keep).fill(-1);
    const topD = new Float64Array(topS.length).fill(Infinity);
    if (this.wasm) {
      // SIMD screen first: a row whose float32 distance is clearly above its bound is one the
      // exact scan below would have abandoned; every other row gets the exact float64 sum.
      const { memory, scan, dataOffset } = this.wasm;
      new Float32Array(memory.buffer, 0, this.dims).set(probe.vector);
      const outOffset = dataOffset + this.data.length * 4;
      scan(dataOffset, 0, outOffset, this.rows, this.dims / 4);
      const screen = new Float32Array(memory.buffer, outOffset, this.rows);
      const slack = 1 + SCREEN_SLACK;
      for (let r = 0; r < this.rows; r++) {
        const s = this.rowSubject[r]!;
        const own = bestBySubject[s]!;
        const kth = topD[topD.length - 1]!;
        const bound = own < kth ? own : kth;
        if (screen[r]! > bound * slack + 1e-30) continue;
        const d = this.distance2(r, q, bound);
        if (d < own) {
          bestBySubject[s] = d;
          pushTop(topS, topD, s, d);
        }
      }
    } else for (let r = 0; r < this.rows; r++) {
      const s = this.rowSubject[r]!;
      const own = bestBySubject[s]!;
      const kth = topD[topD.length - 1]!;
      const d = this.distance2(r, q, own < kth ? own : kth);
      if (d < own) {
        bestBySubject[s] = d;
        pushTop(topS, topD, s, d);
      }
    }
    const top: { s: number; d: number }[] = [];
    for (let s = 0; s < bestBySubject.length; s++) {
      const d = bestBySubject[s]!;
      if (d === Infinity) continue;
      if (top.length < keep || d < top[top.length - 1]!.d) {
        top.push({ s, d });
        top.sort((a, b) => a.d - b.d);
        if (top.length > keep) top.pop();
      }
    }
    const ranked = top.map(({ s, d }) => ({ subject: this.subjects[s]!, similarity: similarityFromDistance(Math.sqrt(d)) }));
    const candidates = ranked.slice(0, k);
    const best = candidates[0] ?? null;
    if (!best || best.similarity < threshold) return { best, candidates, outcome: 'no-match' };
    const second = ranked[1];
    if (second && best.similarity - second.similarity < margin) return { best, candidates, outcome: 'ambiguous' };
    return { best, candidates, outcome: 'match' };
  }

  /**
   * Squared distance from row to q, summed in dimension order. Returns early (a partial sum
   * above `bound`) once it exceeds `bound`: partial sums of squares never decrease.
   */
  private distance2(row: number, q: Float64Array, bound: number): number {
    const data = this.data;
    const dims = this.dims;
    let o = row * dims;
    let s = 0;
    let i = 0;
    for (; i + 16 <= dims; i += 16, o += 16) {
      let d = data[o]! - q[i]!;
      s += d * d;
      d = data[o + 1]! - q[i + 1]!;
      s += d * d;
      d = data[o + 2]! - q[i + 2]!;
      s += d * d;
      d = data[o + 3]! - q[i + 3]!;
      s += d * d;
      d = data[o + 4]! - q[i + 4]!;
      s += d * d;
      d = data[o + 5]! - q[i + 5]!;
      s += d * d;
      d = data[o + 6]! - q[i + 6]!;
      s += d * d;
      d = data[o + 7]! - q[i + 7]!;
      s += d * d;
      d = data[o + 8]! - q[i + 8]!;
      s += d * d;
      d = data[o + 9]! - q[i + 9]!;
      s += d * d;
      d = data[o + 10]! - q[i + 10]!;
      s += d * d;
      d = data[o + 11]! - q[i + 11]!;
      s += d * d;
      d = data[o + 12]! - q[i + 12]!;
      s += d * d;
      d = data[o + 13]! - q[i + 13]!;
      s += d * d;
      d = data[o + 14]! - q[i + 14]!;
      s += d * d;
      d = data[o + 15]! - q[i + 15]!;
      s += d * d;
      if (s > bound) return s;
    }
    for (; i < dims; i++, o++) {
      const d = data[o]! - q[i]!;
      s += d * d;
    }
    return s;
  }

  private check(t: FaceTemplate): void {
    if (t.model !== this.model) throw new ModelMismatchError(this.model, t.model);
    if (t.vector.length !== this.dims) throw new Error(`template has ${t.vector.length} dimensions, expected ${this.dims}`);
  }

  private grow(): void {
    if ((this.rows + 1) * this.dims <= this.data.length) return;
    if (this.wasm) {
      // Rows stay in place; the screen area after them is scratch, so growing just moves it.
      const { memory, dataOffset } = this.wasm;
      const capacity = this.rowSubject.length * 2;
      const need = Math.ceil((dataOffset + capacity * this.dims * 4 + capacity * 4) / PAGE) - memory.buffer.byteLength / PAGE;
      if (need > 0) memory.grow(need);
      this.data = new Float32Array(memory.buffer, dataOffset, capacity * this.dims);
      const subj = new Int32Array(capacity);
      subj.set(this.rowSubject);
      this.rowSubject = subj;
      return;
    }
    const data = new Float32Array(this.data.length * 2);
    data.set(this.data);
    this.data = data;
    const subj = new Int32Array(this.rowSubject.length * 2);
    subj.set(this.rowSubject);
    this.rowSubject = subj;
  }
}

/** Keeps the k best (subject, distance) pairs, distinct subjects, sorted by distance. */
function pushTop(topS: Int32Array, topD: Float64Array, s: number, d: number): void {
  const k = topS.length;
  let at = topS.indexOf(s);
  if (at === -1) {
    if (d >= topD[k - 1]!) return;
    at = k - 1;
  }
  // Move the entry up to its sorted place (its distance only ever decreases).
  while (at > 0 && topD[at - 1]! > d) {
    topS[at] = topS[at - 1]!;
    topD[at] = topD[at - 1]!;
    at--;
  }
  topS[at] = s;
  topD[at] = d;
}
