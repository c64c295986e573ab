import { z } from 'zod';
import { FaceInputError } from './errors.js';
import { decodeImage, DEFAULT_DECODE_LIMITS, type DecodedImage } from './image.js';
import { burstLiveness } from './liveness.js';
import { loadFaceModels, type Box, type FaceModels, type Point } from './models.js';
import { assessQuality, QualityConfig, type QualityReason, type QualityVerdict } from './quality.js';
import { DEFAULT_THRESHOLDS, similarityFromDistance } from './scores.js';
import { euclidean, meanVector, type FaceTemplate } from './template.js';

/**
 * The terminal's face engine: detect → dominant face → quality gate → landmarks/align →
 * 128-d embedding, and over a burst: best frames, fused template, liveness.
 * See docs/face-engine.md for why this model and these thresholds.
 */
export const FaceConfig = z
  .object({
    /** Tiny detector input size (multiple of 32): 416 balances small faces and speed. */
    detectorInputSize: z.number().int().min(128).max(608).multipleOf(32).default(416),
    detectorMinScore: z.number().min(0).max(1).default(0.4),
    /** Longest image side handed to the detector. */
    maxSide: z.number().int().min(160).max(1920).default(640),
    maxPixels: z.number().int().positive().default(DEFAULT_DECODE_LIMITS.maxPixels),
    /** A second face at least this fraction of the dominant one's area means "several faces". */
    severalFacesAreaRatio: z.number().min(0).max(1).default(0.35),
    quality: QualityConfig.prefault({}),
    thresholds: z
      .object({
        verify: z.number().min(0).max(1).default(DEFAULT_THRESHOLDS.verify),
        identify: z.number().min(0).max(1).default(DEFAULT_THRESHOLDS.identify),
        identifyMargin: z.number().min(0).max(1).default(DEFAULT_THRESHOLDS.identifyMargin),
      })
      .strict()
      .prefault({}),
    /** Frames of a burst used for the fused template (the best by quality). */
    burstUse: z.number().int().min(1).max(10).default(3),
  })
  .strict();
export type FaceConfig = z.infer<typeof FaceConfig>;

export interface DetectedFace {
  /** In original image pixels. */
  box: Box;
  /** Detector confidence that this is a face, 0..1. */
  faceExists: number;
}

export interface FrameAnalysis {
  width: number;
  height: number;
  faces: DetectedFace[];
  /** The face the terminal acts on (largest), or null. */
  dominant: DetectedFace | null;
  /** Why the frame cannot be used, in the order a person should fix them. Empty when usable. */
  reasons: (QualityReason | 'no-face' | 'several-faces')[];
  quality: QualityVerdict | null;
  template: FaceTemplate | null;
  landmarks: Point[] | null;
  timings: { decodeMs: number; detectMs: number; totalMs: number };
}

export interface BurstAnalysis {
  used: number;
  dropped: { index: number; reasons: string[] }[];
  /** Fused template of the used frames, or null when none was usable. */
  template: FaceTemplate | null;
  faceExists: number | null;
  quality: number | null;
  liveness: number | null;
  /** Index of the best frame (the punch photo). */
  bestIndex: number | null;
  frames: FrameAnalysis[];
}

export class FaceEngine {
  private constructor(
    readonly models: FaceModels,
    readonly config: FaceConfig,
  ) {}

  static async create(config: Partial<FaceConfig> = {}): Promise<FaceEngine> {
    return new FaceEngine(await loadFaceModels(), FaceConfig.parse(config));
  }

  get backend(): string {
    return this.models.backend;
  }
  get modelId(): string {
    return this.models.embeddingModel;
  }

  async analyze(jpeg: Buffer): Promise<FrameAnalysis> {
    const t0 = performance.now();
    const img = await decodeImage(jpeg, { maxPixels: this.config.maxPixels, maxSide: this.config.maxSide });
    const t1 = performance.now();
    const result = await this.detect(img);
    const t2 = performance.now();
    const toOriginal = (b: Box): Box => ({ x: b.x * img.scale, y: b.y * img.scale, width: b.width * img.scale, height: b.height * img.scale });
    const faces = result
      .map((r) => ({ box: toOriginal(r.detection.box), faceExists: r.detection.score, r }))
      .sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height);
    const base = { width: img.originalWidth, height: img.originalHeight, faces: faces.map(({ box, faceExists }) => ({ box, faceExists })) };
    const timings = (): FrameAnalysis['timings'] => ({ decodeMs: t1 - t0, detectMs: t2 - t1, totalMs: performance.now() - t0 });
    const top = faces[0];
    if (!top) return { ...base, dominant: null, reasons: ['no-face'], quality: null, template: null, landmarks: null, timings: timings() };
    const reasons: FrameAnalysis['reasons'] = [];
    const second = faces[1];
    if (second && second.box.width * second.box.height >= this.config.severalFacesAreaRatio * top.box.width * top.box.height) {
      reasons.push('several-faces');
    }
    const quality = assessQuality(img, top.r.detection.box, top.r.landmarks.positions, img.scale, this.config.quality);
    reasons.push(...quality.reasons);
    return {
      ...base,
      dominant: { box: top.box, faceExists: top.faceExists },
      reasons,
      quality,
      template: { model: this.modelId, vector: top.r.descriptor },
      landmarks: top.r.landmarks.positions.map((p) => ({ x: p.x * img.scale, y: p.y * img.scale })),
      timings: timings(),
    };
  }

  /** Uses the best-quality frames of a burst; reports how many were used and why others were dropped. */
  async analyzeBurst(jpegs: readonly Buffer[]): Promise<BurstAnalysis> {
    const frames: FrameAnalysis[] = [];
    const dropped: BurstAnalysis['dropped'] = [];
    for (const [index, jpeg] of jpegs.entries()) {
      try {
        const f = await this.analyze(jpeg);
        frames.push(f);
        if (f.reasons.length) dropped.push({ index, reasons: f.reasons });
      } catch (err) {
        dropped.push({ index, reasons: [err instanceof FaceInputError ? `image-${err.code}` : 'image-unreadable'] });
      }
    }
    const usable = frames
      .map((f, i) => ({ f, i }))
      .filter(({ f }) => f.reasons.length === 0 && f.template)
      .sort((a, b) => (b.f.quality?.score ?? 0) - (a.f.quality?.score ?? 0));
    const used = usable.slice(0, this.config.burstUse);
    for (const { i } of usable.slice(this.config.burstUse)) dropped.push({ index: i, reasons: ['not-among-best'] });
    const withFace = frames.filter((f) => f.landmarks);
    const liveness = burstLiveness(withFace.map((f) => f.landmarks!));
    if (used.length === 0) {
      const best = frames.find((f) => f.dominant);
      return { used: 0, dropped, template: null, faceExists: best?.dominant?.faceExists ?? null, quality: best?.quality?.score ?? null, liveness, bestIndex: null, frames };
    }
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    return {
      used: used.length,
      dropped,
      template: { model: this.modelId, vector: meanVector(used.map(({ f }) => f.template!.vector)) },
      faceExists: mean(used.map(({ f }) => f.dominant!.faceExists)),
      quality: mean(used.map(({ f }) => f.quality!.score)),
      liveness,
      bestIndex: used[0]!.i,
      frames,
    };
  }

  /** Similarity of two templates of this engine's model, 0..1. */
  similarity(a: FaceTemplate, b: FaceTemplate): number {
    for (const t of [a, b]) if (t.model !== this.modelId) throw new Error(`template model ${t.model} is not ${this.modelId}`);
    return similarityFromDistance(euclidean(a.vector, b.vector));
  }

  private async detect(img: DecodedImage) {
    const { tf, faceapi } = this.models;
    const tensor = tf.tensor3d(new Uint8Array(img.rgb.buffer, img.rgb.byteOffset, img.rgb.length), [img.height, img.width, 3], 'int32');
    try {
      const options = new faceapi.TinyFaceDetectorOptions({ inputSize: this.config.detectorInputSize, scoreThreshold: this.config.detectorMinScore });
      return await faceapi.detectAllFaces(tensor, options).withFaceLandmarks().withFaceDescriptors();
    } finally {
      tensor.dispose();
    }
  }
}
