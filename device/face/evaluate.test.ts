import { describe, expect, it } from 'vitest';
import { leaveOneOut } from './evaluate.js';
import { seededRandom } from '../../tests/fuzz/seeds.js';

describe('leave-one-out (the docs table of 1:1 and 1:N decisions)', () => {
  const next = seededRandom(11);
  const center = () => Float32Array.from({ length: 128 }, () => (next() - 0.5) * 0.3);
  const near = (c: Float32Array) => ({ model: 'm', vector: c.map((v) => v + (next() - 0.5) * 0.001) });
  const [a, b, c, solo] = [center(), center(), center(), center()];
  const thresholds = { verify: 0.6, identify: 0.8, margin: 0.1 };

  it('counts genuine and impostor claims and 1:N outcomes, skipping the genuine parts for a subject with one photo', () => {
    const photos = [
      { subject: 'a', template: near(a) }, { subject: 'a', template: near(a) },
      { subject: 'b', template: near(b) }, { subject: 'b', template: near(b) },
      { subject: 'c', template: near(c) }, { subject: 'c', template: near(c) },
      { subject: 'solo', template: near(solo) },
    ];
    const r = leaveOneOut(photos, thresholds);
    expect(r).toMatchObject({ photos: 7, subjects: 4 });
    // Six probes have a genuine claim and three impostor ones; the solo probe only three impostor ones.
    expect(r.verify).toEqual({ threshold: 0.6, genuine: 6, falseRejects: 0, impostor: 21, falseAccepts: 0 });
    expect(r.identifyEnrolled).toEqual({ threshold: 0.8, margin: 0.1, searches: 6, right: 6, wrong: 0, noMatch: 0, ambiguous: 0 });
    expect(r.identifyNotEnrolled).toEqual({ threshold: 0.8, margin: 0.1, searches: 7, falseAccepts: 0 });
  });

  it('a photo filed under the wrong person shows as a false reject, a false accept and a wrong 1:N answer', () => {
    const photos = [
      { subject: 'a', template: near(a) }, { subject: 'a', template: near(b) },
      { subject: 'b', template: near(b) }, { subject: 'b', template: near(b) },
    ];
    const r = leaveOneOut(photos, thresholds);
    // Probe 0 (a) vs a's other photo (really b): reject; probe 1 (labelled a, really b): reject its
    // claim to a, accepted as b. Probes 2 and 3 (b) are accepted by "a" (its photo of b).
    expect(r.verify).toEqual({ threshold: 0.6, genuine: 4, falseRejects: 2, impostor: 4, falseAccepts: 3 });
    expect(r.identifyEnrolled.wrong).toBeGreaterThan(0);
    expect(r.identifyNotEnrolled.falseAccepts).toBeGreaterThan(0);
  });
});
