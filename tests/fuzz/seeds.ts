/**
 * Deterministic seeds for the bad-input campaign: CI runs a fixed, repeatable sample
 * (CLOCKFACE_FUZZ_SEED to replay one), `npm run soak` multiplies the run counts.
 */
export const FUZZ_SEED = Number(process.env.CLOCKFACE_FUZZ_SEED ?? 20261123);
export const FUZZ_SCALE = Number(process.env.CLOCKFACE_FUZZ_SCALE ?? 1);
export const runs = (n: number) => Math.max(1, Math.round(n * FUZZ_SCALE));

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32): the same seed, the same run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A campaign's test timeout: its time grows with its run count. */
export const scaledTimeout = (ms: number) => ms * Math.max(1, FUZZ_SCALE);
