import { TemplateIndex } from './matcher.js';
import type { FaceTemplate } from './template.js';

/**
 * Pair-set evaluation: TAR at fixed FARs, EER and best-threshold accuracy from genuine and
 * impostor similarity scores. Pure arithmetic, shared by `clockface face eval` and the docs.
 */
export interface EvalSummary {
  pairs: number;
  genuine: number;
  impostor: number;
  scored: number;
  failuresToEnroll: number;
  threshold: number;
  tarAtFar1: number | null;
  tarAtFar01: number | null;
  tarAtFar0: number | null;
  /** At the default threshold. */
  far: number | null;
  frr: number | null;
  eer: number | null;
  bestThresholdAccuracy: number | null;
  bestThreshold: number | null;
}

/** TAR when the threshold is set so that at most `far` of impostor pairs pass. */
export function tarAtFar(genuine: number[], impostor: number[], far: number): number | null {
  if (!genuine.length || !impostor.length) return null;
  const imp = [...impostor].sort((a, b) => b - a);
  const allowed = Math.floor(far * imp.length);
  // Threshold just above the (allowed+1)-th highest impostor score.
  const bar = imp[allowed] ?? -Infinity;
  return genuine.filter((s) => s > bar).length / genuine.length;
}

export function summarize(genuine: number[], impostor: number[], threshold: number, pairs: number, failuresToEnroll: number): EvalSummary {
  const scored = genuine.length + impostor.length;
  const rate = (xs: number[], pass: (s: number) => boolean) => (xs.length ? xs.filter(pass).length / xs.length : null);
  let eer: number | null = null;
  let best: { acc: number; t: number } | null = null;
  if (genuine.length && impostor.length) {
    const candidates = [...new Set([...genuine, ...impostor])].sort((a, b) => a - b);
    let gap = Infinity;
    for (const t of candidates) {
      const far = impostor.filter((s) => s >= t).length / impostor.length;
      const frr = genuine.filter((s) => s < t).length / genuine.length;
      if (Math.abs(far - frr) < gap) {
        gap = Math.abs(far - frr);
        eer = (far + frr) / 2;
      }
      const acc = (genuine.filter((s) => s >= t).length + impostor.filter((s) => s < t).length) / scored;
      if (!best || acc > best.acc) best = { acc, t };
    }
  }
  return {
    pairs,
    genuine: genuine.length,
    impostor: impostor.length,
    scored,
    failuresToEnroll,
    threshold,
    tarAtFar1: tarAtFar(genuine, impostor, 0.01),
    tarAtFar01: tarAtFar(genuine, impostor, 0.001),
    tarAtFar0: tarAtFar(genuine, impostor, 0),
    far: rate(impostor, (s) => s >= threshold),
    frr: rate(genuine, (s) => s < threshold),
    eer,
    bestThresholdAccuracy: best?.acc ?? null,
    bestThreshold: best?.t ?? null,
  };
}

/**
 * Leave-one-out over labelled photos, as the terminal decides: several templates per subject,
 * the decision on the best. Each photo in turn is the probe and is left out of the gallery.
 * - 1:1: the probe claims every subject (its own: genuine; each other: impostor).
 * - 1:N enrolled: everyone's other photos are the gallery; right, wrong, refused or ambiguous.
 * - 1:N not enrolled: the probe's own subject is removed; any match is a false accept.
 * A probe whose subject has no other photo is skipped for the genuine parts.
 */
export interface LeaveOneOutResult {
  photos: number;
  subjects: number;
  verify: { threshold: number; genuine: number; falseRejects: number; impostor: number; falseAccepts: number };
  identifyEnrolled: { threshold: number; margin: number; searches: number; right: number; wrong: number; noMatch: number; ambiguous: number };
  identifyNotEnrolled: { threshold: number; margin: number; searches: number; falseAccepts: number };
}

export function leaveOneOut(
  photos: readonly { subject: string; template: FaceTemplate }[],
  t: { verify: number; identify: number; margin: number },
): LeaveOneOutResult {
  const first = photos[0];
  if (!first) throw new Error('leave-one-out needs photos');
  const subjects = [...new Set(photos.map((p) => p.subject))];
  const verify = { threshold: t.verify, genuine: 0, falseRejects: 0, impostor: 0, falseAccepts: 0 };
  const enrolled = { threshold: t.identify, margin: t.margin, searches: 0, right: 0, wrong: 0, noMatch: 0, ambiguous: 0 };
  const notEnrolled = { threshold: t.identify, margin: t.margin, searches: 0, falseAccepts: 0 };
  for (const [i, probe] of photos.entries()) {
    const index = new TemplateIndex(first.template.model, first.template.vector.length, photos.length);
    for (const s of subjects) index.set(s, photos.filter((p, j) => j !== i && p.subject === s).map((p) => p.template));
    const ownEnrolled = index.has(probe.subject);
    for (const s of subjects) {
      const similarity = index.verify(s, probe.template);
      if (similarity === null) continue;
      if (s === probe.subject) {
        verify.genuine++;
        if (similarity < t.verify) verify.falseRejects++;
      } else {
        verify.impostor++;
        if (similarity >= t.verify) verify.falseAccepts++;
      }
    }
    const opts = { k: 3, threshold: t.identify, margin: t.margin };
    if (ownEnrolled) {
      const r = index.identify(probe.template, opts);
      enrolled.searches++;
      if (r.outcome === 'match' && r.best!.subject === probe.subject) enrolled.right++;
      else if (r.outcome === 'match') enrolled.wrong++;
      else if (r.outcome === 'ambiguous') enrolled.ambiguous++;
      else enrolled.noMatch++;
      index.remove(probe.subject);
    }
    const stranger = index.identify(probe.template, opts);
    notEnrolled.searches++;
    if (stranger.outcome === 'match') notEnrolled.falseAccepts++;
  }
  return { photos: photos.length, subjects: subjects.length, verify, identifyEnrolled: enrolled, identifyNotEnrolled: notEnrolled };
}
