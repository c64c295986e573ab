/**
 * Scores on 0..1, like Rekognition's. The 128-d descriptor's euclidean distance d maps to
 * similarity through a logistic fitted to ../shared/faces: 0.5 at d = 0.52 (where genuine
 * and impostor pairs meet), above 0.9 for d < 0.43, below 0.1 for d > 0.61. Thresholds are
 * set on the similarity scale and documented with the error rates they give (docs/face-engine.md).
 */
const MIDPOINT = 0.52;
const STEEPNESS = 25;

export function similarityFromDistance(d: number): number {
  return 1 / (1 + Math.exp(STEEPNESS * (d - MIDPOINT)));
}

/** The inverse: the descriptor distance at which similarity equals s (0.6 ↔ 0.504, 0.8 ↔ 0.465). */
export function distanceFromSimilarity(s: number): number {
  return MIDPOINT + Math.log(1 / s - 1) / STEEPNESS;
}

/** Default decision thresholds on the similarity scale (see docs/face-engine.md for FAR/FRR). */
export const DEFAULT_THRESHOLDS = {
  /** Badge + face: the card names the person, the face confirms. */
  verify: 0.6,
  /** Face only: searching everyone enrolled needs a stricter bar ... */
  identify: 0.8,
  /** ... and a clear gap between the best two people. */
  identifyMargin: 0.1,
} as const;
