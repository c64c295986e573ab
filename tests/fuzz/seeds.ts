/**
 * Deterministic seeds for the bad-input campaign: CI runs a fixed, repeatable sample
 * (CLOCKFACE_FUZZ_SEED to replay one), `npm run soak` multiplies the run counts.
 */
export const FUZZ_SEED = Number(process.env.CLOCKFACE_FUZZ_SEED ?? 20261123);
export const FUZZ_SCALE = Number(process.env.CLOCKFACE_FUZZ_SCALE ?? 1);
export const runs = (n: number) => Math.max(1, Math.round(n * FUZZ_SCALE));
