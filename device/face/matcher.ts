import { ModelMismatchError } from './errors.js';
import { similarityFromDistance, DEFAULT_THRESHOLDS } from './scores.js';
import type { FaceTemplate } from './template.js';

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

export class TemplateIndex {
  private data: Float32Array;
  private rowSubject: Int32Array;
  private rows = 0;
  private readonly subjects: string[] = [];
  private readonly subjectIndex = new Map<string, number>();

  constructor(
    readonly model: string,
    readonly dims: number,
    capacity = 1024,
  ) {
    this.data = new Float32Array(capacity * dims);
    this.rowSubject = new Int32Array(capacity);
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
    let best = Infinity;
    for (let r = 0; r < this.rows; r++) if (this.rowSubject[r] === idx) best = Math.min(best, this.distance2(r, probe.vector));
    return best === Infinity ? null : similarityFromDistance(Math.sqrt(best));
  }

  /** 1:N — top-k subjects by best similarity, with the threshold and margin rule applied. */
  identify(
    probe: FaceTemplate,
    opts: { k?: number; threshold?: number; margin?: number } = {},
  ): IdentifyResult {
    this.check(probe);
    const k = opts.k ?? 3;
    const threshold = opts.threshold ?? DEFAULT_THRESHOLDS.identify;
    const margin = opts.margin ?? DEFAULT_THRESHOLDS.identifyMargin;
    if (this.rows === 0) return { best: null, candidates: [], outcome: 'empty' };
    const bestBySubject = new Float64Array(this.subjects.length).fill(Infinity);
    for (let r = 0; r < this.rows; r++) {
      const d = this.distance2(r, probe.vector);
      const s = this.rowSubject[r]!;
      if (d < bestBySubject[s]!) bestBySubject[s] = d;
    }
    const top: { s: number; d: number }[] = [];
    for (let s = 0; s < bestBySubject.length; s++) {
      const d = bestBySubject[s]!;
      if (d === Infinity) continue;
      if (top.length < k || d < top[top.length - 1]!.d) {
        top.push({ s, d });
        top.sort((a, b) => a.d - b.d);
        if (top.length > k) top.pop();
      }
    }
    const candidates = top.map(({ s, d }) => ({ subject: this.subjects[s]!, similarity: similarityFromDistance(Math.sqrt(d)) }));
    const best = candidates[0] ?? null;
    if (!best || best.similarity < threshold) return { best, candidates, outcome: 'no-match' };
    const second = candidates[1];
    if (second && best.similarity - second.similarity < margin) return { best, candidates, outcome: 'ambiguous' };
    return { best, candidates, outcome: 'match' };
  }

  private distance2(row: number, v: Float32Array): number {
    const data = this.data;
    const o = row * this.dims;
    let s = 0;
    for (let i = 0; i < this.dims; i++) {
      const d = data[o + i]! - v[i]!;
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
    const data = new Float32Array(this.data.length * 2);
    data.set(this.data);
    this.data = data;
    const subj = new Int32Array(this.rowSubject.length * 2);
    subj.set(this.rowSubject);
    this.rowSubject = subj;
  }
}
