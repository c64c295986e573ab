import type { Point } from './models.js';

/**
 * Passive liveness over a burst: a live face moves non-rigidly between frames (blinks, lips,
 * small expression changes) while a photo held up to the camera moves only rigidly, and a
 * replayed still does not move at all. Each frame's landmarks are aligned to the first by
 * a similarity transform (removing head motion); what remains, relative to the inter-pupil
 * distance, is the evidence. A single frame gives no evidence: null.
 *
 * Limits: a video replayed on a screen moves non-rigidly too; this check raises the bar for
 * a printed photo, it does not replace a depth or IR camera.
 */
export function burstLiveness(landmarkSets: Point[][]): number | null {
  if (landmarkSets.length < 2) return null;
  const ref = landmarkSets[0]!;
  const ipd = Math.hypot(ref[45]!.x - ref[36]!.x, ref[45]!.y - ref[36]!.y) || 1;
  let residual = 0;
  for (const pts of landmarkSets.slice(1)) residual = Math.max(residual, alignedResidual(ref, pts) / ipd);
  // ~0.004 of the eye distance is landmark jitter on a still image; 0.02 is a clear blink.
  return Math.max(0, Math.min(1, (residual - 0.004) / 0.016));
}

/** Mean landmark distance after the best similarity transform (Umeyama, 2-D). */
function alignedResidual(a: Point[], b: Point[]): number {
  const n = Math.min(a.length, b.length);
  let ax = 0, ay = 0, bx = 0, by = 0;
  for (let i = 0; i < n; i++) {
    ax += a[i]!.x; ay += a[i]!.y; bx += b[i]!.x; by += b[i]!.y;
  }
  ax /= n; ay /= n; bx /= n; by /= n;
  let sxx = 0, sxy = 0, norm = 0;
  for (let i = 0; i < n; i++) {
    const px = b[i]!.x - bx, py = b[i]!.y - by, qx = a[i]!.x - ax, qy = a[i]!.y - ay;
    sxx += px * qx + py * qy;
    sxy += px * qy - py * qx;
    norm += px * px + py * py;
  }
  const scale = Math.hypot(sxx, sxy) / (norm || 1);
  const theta = Math.atan2(sxy, sxx);
  const c = Math.cos(theta) * scale, s = Math.sin(theta) * scale;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const px = b[i]!.x - bx, py = b[i]!.y - by;
    sum += Math.hypot(c * px - s * py - (a[i]!.x - ax), s * px + c * py - (a[i]!.y - ay));
  }
  return sum / n;
}
