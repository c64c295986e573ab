import { z } from 'zod';
import type { Box, Point } from './models.js';

/**
 * The quality gate: is this face good enough to compare, and if not, what can the person at
 * the wall do about it? Every measure is in the original image's pixels and degrees.
 * Pose angles are estimates from the 68 landmarks (good to a few degrees near frontal).
 */
export const QualityConfig = z
  .object({
    /** Inter-pupil distance below which the face is too small (too far from the camera). */
    minInterPupilPx: z.number().positive().default(28),
    maxYawDeg: z.number().positive().default(30),
    maxPitchDeg: z.number().positive().default(25),
    maxRollDeg: z.number().positive().default(20),
    /** Variance of the Laplacian over the face scaled to 112 px; lower is blurrier. */
    minSharpness: z.number().nonnegative().default(20),
    /** Mean face luminance, 0..255. */
    minBrightness: z.number().min(0).max(255).default(45),
    maxBrightness: z.number().min(0).max(255).default(220),
    /** How much of the face box may lie outside the frame, as a fraction of its size. */
    maxOutOfFrame: z.number().min(0).max(1).default(0.08),
  })
  .strict();
export type QualityConfig = z.infer<typeof QualityConfig>;

export const QUALITY_REASONS = ['face-too-small', 'turned-away', 'blurred', 'too-dark', 'too-bright', 'out-of-frame'] as const;
export type QualityReason = (typeof QUALITY_REASONS)[number];

/** What to show at the wall for each reason. */
export const QUALITY_ADVICE: Record<QualityReason, string> = {
  'face-too-small': 'step closer',
  'turned-away': 'look straight at the camera',
  blurred: 'hold still',
  'too-dark': 'the face is too dark: step into the light',
  'too-bright': 'too much light on the face',
  'out-of-frame': 'center your face in the frame',
};

export interface QualityMetrics {
  interPupilPx: number;
  yawDeg: number;
  pitchDeg: number;
  rollDeg: number;
  sharpness: number;
  brightness: number;
  outOfFrame: number;
}

export interface QualityVerdict {
  ok: boolean;
  /** 0..1: how comfortably the face passes every check (0 when any fails). */
  score: number;
  reasons: QualityReason[];
  metrics: QualityMetrics;
}

const mean = (pts: Point[]) => ({ x: pts.reduce((s, p) => s + p.x, 0) / pts.length, y: pts.reduce((s, p) => s + p.y, 0) / pts.length });
const dist = (a: Point, b: Point) => Math.hypot(a.x - b.x, a.y - b.y);
const deg = (rad: number) => (rad * 180) / Math.PI;
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

export interface ImagePixels {
  rgb: Buffer;
  width: number;
  height: number;
}

/**
 * Head pose from the 68 landmarks (any pixel space): roll from the eye line, yaw from where the
 * nose tip sits between the jaw's two ends, pitch from where it sits between eyes and mouth.
 */
export function estimatePose(landmarks: Point[]): { yawDeg: number; pitchDeg: number; rollDeg: number; interPupil: number } {
  const rightEye = mean(landmarks.slice(36, 42));
  const leftEye = mean(landmarks.slice(42, 48));
  const eyeMid = { x: (rightEye.x + leftEye.x) / 2, y: (rightEye.y + leftEye.y) / 2 };
  const nose = landmarks[30]!;
  const mouth = mean(landmarks.slice(48, 68));
  const rollDeg = deg(Math.atan2(leftEye.y - rightEye.y, leftEye.x - rightEye.x));
  // Yaw: the nose tip moves toward one jaw side as the head turns.
  const dl = dist(nose, landmarks[0]!);
  const dr = dist(nose, landmarks[16]!);
  const yawDeg = deg(Math.asin(clamp((dr - dl) / (dl + dr), -1, 1))) * 1.5;
  // Pitch: where the nose tip sits between the eyes and the mouth (about 0.55 when frontal),
  // measured along the face's own vertical (perpendicular to the eye line), so a rolled head
  // does not read as pitched.
  const ipd = dist(rightEye, leftEye) || 1;
  const down = { x: -(leftEye.y - rightEye.y) / ipd, y: (leftEye.x - rightEye.x) / ipd };
  const along = (p: Point) => (p.x - eyeMid.x) * down.x + (p.y - eyeMid.y) * down.y;
  const ratio = along(nose) / Math.max(1, along(mouth));
  const pitchDeg = (ratio - 0.55) * 120;
  return { yawDeg, pitchDeg, rollDeg, interPupil: ipd };
}

/** Landmarks and box in the detector's pixel space; `scale` maps them to the original image. */
export function assessQuality(img: ImagePixels, box: Box, landmarks: Point[], scale: number, cfg: QualityConfig): QualityVerdict {
  const { yawDeg, pitchDeg, rollDeg, interPupil: ipd } = estimatePose(landmarks);
  const { sharpness, brightness } = faceTexture(img, box);
  const outside =
    Math.max(0, -box.x) + Math.max(0, box.x + box.width - img.width) + Math.max(0, -box.y) + Math.max(0, box.y + box.height - img.height);
  const outOfFrame = outside / Math.max(1, (box.width + box.height) / 2);
  const metrics: QualityMetrics = {
    interPupilPx: ipd * scale, yawDeg, pitchDeg, rollDeg, sharpness, brightness, outOfFrame,
  };
  // Each check's margin: 1 comfortably inside, 0 at the limit, negative outside.
  const margins: [QualityReason, number][] = [
    ['face-too-small', metrics.interPupilPx / cfg.minInterPupilPx - 1],
    ['turned-away', Math.min(1 - Math.abs(yawDeg) / cfg.maxYawDeg, 1 - Math.abs(pitchDeg) / cfg.maxPitchDeg, 1 - Math.abs(rollDeg) / cfg.maxRollDeg)],
    ['blurred', sharpness / cfg.minSharpness - 1],
    ['too-dark', (brightness - cfg.minBrightness) / cfg.minBrightness],
    ['too-bright', (cfg.maxBrightness - brightness) / (255 - cfg.maxBrightness)],
    ['out-of-frame', 1 - outOfFrame / Math.max(cfg.maxOutOfFrame, 1e-6)],
  ];
  const reasons = margins.filter(([, m]) => m < 0).map(([r]) => r);
  const score = reasons.length ? 0 : margins.reduce((s, [, m]) => s * clamp(0.5 + m, 0, 1), 1);
  return { ok: reasons.length === 0, score, reasons, metrics };
}

/** Sharpness (variance of the Laplacian) and mean luminance over the face, resampled to 112 px. */
function faceTexture(img: ImagePixels, box: Box): { sharpness: number; brightness: number } {
  const N = 112;
  const gray = new Float32Array(N * N);
  const x0 = Math.max(0, box.x);
  const y0 = Math.max(0, box.y);
  const w = Math.max(1, Math.min(img.width, box.x + box.width) - x0);
  const h = Math.max(1, Math.min(img.height, box.y + box.height) - y0);
  let sum = 0;
  for (let j = 0; j < N; j++) {
    const sy = Math.min(img.height - 1, Math.floor(y0 + ((j + 0.5) * h) / N));
    for (let i = 0; i < N; i++) {
      const sx = Math.min(img.width - 1, Math.floor(x0 + ((i + 0.5) * w) / N));
      const o = (sy * img.width + sx) * 3;
      const g = 0.299 * img.rgb[o]! + 0.587 * img.rgb[o + 1]! + 0.114 * img.rgb[o + 2]!;
      gray[j * N + i] = g;
      sum += g;
    }
  }
  let lsum = 0;
  let lsq = 0;
  let n = 0;
  for (let j = 1; j < N - 1; j++) {
    for (let i = 1; i < N - 1; i++) {
      const c = j * N + i;
      const l = gray[c - 1]! + gray[c + 1]! + gray[c - N]! + gray[c + N]! - 4 * gray[c]!;
      lsum += l;
      lsq += l * l;
      n++;
    }
  }
  const lmean = lsum / n;
  return { sharpness: lsq / n - lmean * lmean, brightness: sum / (N * N) };
}
