import { describe, expect, it } from 'vitest';
import { TemplateIndex, type IdentifyResult } from './matcher.js';
import { DEFAULT_THRESHOLDS, distanceFromSimilarity, similarityFromDistance } from './scores.js';
import type { FaceTemplate } from './template.js';
import { seededRandom } from '../../tests/fuzz/seeds.js';

/**
 * The index's fast scan (unrolled kernel, early abandon against a running top-k) must give
 * exactly what a plain full scan gives: same subjects, same order, same similarities to the bit.
 */
const model = 'm';


/** The original, obviously correct algorithm: full distance for every row, then top-k. */
function reference(gallery: Map<string, Float32Array[]>, probe: Float32Array, k: number, threshold: number, margin: number): IdentifyResult {
  const dist2 = (a: Float32Array, b: Float32Array) => {
    let s = 0;
    for (let i = 0; i < a.length; i++) {
      const d = a[i]! - b[i]!;
      s += d * d;
    }
    return s;
  };
  const subjects = [...gallery.keys()];
  if (subjects.length === 0) return { best: null, candidates: [], outcome: 'empty' };
  const best = subjects.map((s) => Math.min(...gallery.get(s)!.map((v) => dist2(v, probe))));
  // Every subject ranked; the runner-up counts for the margin whatever k is.
  const ranked = best
    .map((d, s) => ({ s, d }))
    .sort((a, b) => a.d - b.d || a.s - b.s)
    .map(({ s, d }) => ({ subject: subjects[s]!, similarity: similarityFromDistance(Math.sqrt(d)) }));
  const candidates = ranked.slice(0, k);
  const first = candidates[0] ?? null;
  if (!first || first.similarity < threshold) return { best: first, candidates, outcome: 'no-match' };
  const second = ranked[1];
  if (second && first.similarity - second.similarity < margin) return { best: first, candidates, outcome: 'ambiguous' };
  return { best: first, candidates, outcome: 'match' };
}

describe('template index: fast scan equals a full scan', () => {
  it.each([128, 20, 18])('identify and verify agree exactly with the reference (%i dims; 18 takes the plain JS scan, the others the SIMD screen)', (dims) => {
    const next = seededRandom(dims);
    const gauss = () => next() + next() + next() - 1.5;
    const around = (c: Float32Array, spread: number) => c.map((x) => x + gauss() * spread);
    const gallery = new Map<string, Float32Array[]>();
    const centers: Float32Array[] = [];
    for (let s = 0; s < 300; s++) {
      const c = Float32Array.from({ length: dims }, () => gauss() * 0.3);
      centers.push(c);
      const n = 1 + (s % 4);
      gallery.set(`s-${s}`, Array.from({ length: n }, () => around(c, 0.05)));
    }
    // Ties: two subjects with identical templates, and a subject enrolled twice with one vector.
    gallery.set('twin-a', [centers[5]!.slice()]);
    gallery.set('twin-b', [centers[5]!.slice()]);
    gallery.set('double', [centers[9]!.slice(), centers[9]!.slice()]);
    const idx = new TemplateIndex(model, dims, 8);
    const tpl = (v: Float32Array): FaceTemplate => ({ model, vector: v });
    for (const [s, vs] of gallery) idx.set(s, vs.map(tpl));
    // Removing and re-adding reorders rows; the answer must not depend on row order.
    idx.remove('s-3');
    gallery.delete('s-3');
    const s4 = gallery.get('s-4')!;
    idx.remove('s-4');
    idx.set('s-4', s4.map(tpl));
    gallery.delete('s-4');
    gallery.set('s-4', s4);
    let compared = 0;
    for (let p = 0; p < 200; p++) {
      const probe = p % 3 === 0 ? Float32Array.from({ length: dims }, () => gauss() * 0.3) : around(centers[p % centers.length]!, 0.04);
      for (const k of [1, 2, 3, 5]) {
        const opts = { k, threshold: DEFAULT_THRESHOLDS.identify, margin: DEFAULT_THRESHOLDS.identifyMargin };
        const got = idx.identify(tpl(probe), opts);
        const want = reference(gallery, probe, k, opts.threshold, opts.margin);
        expect(got.outcome).toBe(want.outcome);
        expect(got.candidates.map((c) => c.subject).sort()).toEqual(want.candidates.map((c) => c.subject).sort());
        expect(got.candidates.map((c) => c.similarity)).toEqual(want.candidates.map((c) => c.similarity));
        compared++;
      }
      const subject = `s-${p % 300}`;
      const vs = gallery.get(subject);
      const want = vs ? reference(new Map([[subject, vs]]), probe, 1, 0, 0).best!.similarity : null;
      expect(idx.verify(subject, tpl(probe))).toBe(want);
    }
    expect(compared).toBe(800);
  });
});

describe('template index: margin rule', () => {
  it('refuses two subjects too close to tell apart whatever k is, also k = 1', () => {
    const dims = 128;
    const next = seededRandom(7);
    const base = Float32Array.from({ length: dims }, () => (next() - 0.5) * 0.1);
    const idx = new TemplateIndex(model, dims);
    idx.set('a', [{ model, vector: base }]);
    // Nearly the same face enrolled as someone else: the two best similarities differ by far less than the margin.
    idx.set('b', [{ model, vector: base.map((v, i) => (i === 0 ? v + 0.01 : v)) }]);
    idx.set('c', [{ model, vector: base.map((v) => v + 0.2) }]);
    for (const k of [1, 2, 3]) {
      const r = idx.identify({ model, vector: base }, { k, threshold: 0.5, margin: 0.1 });
      expect(r.outcome).toBe('ambiguous');
      expect(r.best!.subject).toBe('a');
      expect(r.candidates).toHaveLength(Math.min(k, 3));
    }
    // With the look-alike gone, the same probe is a clear match at k = 1.
    idx.remove('b');
    expect(idx.identify({ model, vector: base }, { k: 1, threshold: 0.5, margin: 0.1 }).outcome).toBe('match');
  });
});

describe('score calibration', () => {
  it('maps distance to similarity monotonically, and back', () => {
    expect(similarityFromDistance(0.52)).toBeCloseTo(0.5, 12);
    expect(similarityFromDistance(0.43)).toBeGreaterThan(0.9);
    expect(similarityFromDistance(0.61)).toBeLessThan(0.1);
    for (const s of [0.05, 0.5, 0.6, 0.8, 0.95]) expect(similarityFromDistance(distanceFromSimilarity(s))).toBeCloseTo(s, 12);
    expect(distanceFromSimilarity(DEFAULT_THRESHOLDS.verify)).toBeCloseTo(0.5038, 4);
    expect(distanceFromSimilarity(DEFAULT_THRESHOLDS.identify)).toBeCloseTo(0.4645, 4);
  });
});
