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
