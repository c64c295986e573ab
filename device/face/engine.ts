import { z } from 'zod';
import { detectFacesFitted } from './detector.js';
import { FaceInputError, ModelMismatchError } from './errors.js';
import { decodeImage, DEFAULT_DECODE_LIMITS } from './image.js';
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
    /**
     * Run the detector on an input shaped like the frame (416x320 for 4:3) instead of face-api's
     * padded square: the same scale and pixels, about half the time (detector.ts).
     */
    detectorFit: z.boolean().default(true),
    /** Longest image side handed to the detector. */
    maxSide: z.number().int().min(160).max(1920).default(640),
    maxPixels: z.number().int().positive().default(DEFAULT_DECODE_LIMITS.maxPixels),
    /** A second face at least this fraction of the dominant one's area means "several faces". */
    severalFacesAreaRatio: z.number().min(0).max(1).default(0.35),
    quality: QualityConfig.prefault({}),
    /**
     * Not here: the terminal decides with `policy.thresholds` (device/policy.ts, pushed by the
     * tenant), and the tools (`clockface face compare / eval / serve`) use DEFAULT_THRESHOLDS,
     * which are also the policy's defaults. A `face.thresholds` in a device config used to be
     * accepted and silently ignored by the terminal; it is refused now, with the way out.
     */
    thresholds: z
      .never({ error: 'face.thresholds is not used: set the decision thresholds in policy.thresholds (match, identify, margin)' })
      .optional(),
    /** Frames of a burst used for the fused template (the best by quality). */
    burstUse: z.number().int().min(1).max(10).default(3),
  })
  .strict();
export type FaceConfig = z.infer<typeof FaceConfig>;
export type FaceConfigInput = z.input<typeof FaceConfig>;

export interface DetectedFace {
  /** In original image pixels. */
  box: Box;
  /** Detector confidence that this is a face, 0..1. */
  faceExists: number;
  /** This face's own quality verdict; only with `analyze(…, { everyFace: true })`. */
  quality?: QualityVerdict;
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
  /** Per-stage latency; landmarks/quality/embed are 0 when the stage did not run. */
  timings: { decodeMs: number; detectMs: number; landmarksMs: number; qualityMs: number; embedMs: number; totalMs: number };
}

export interface BurstAnalysis {
  used: number;
  /** `index` is the frame's position in the burst as given (not among the decoded frames). */
  dropped: { index: number; reasons: string[] }[];
  /** Fused template of the used frames, or null when none was usable. */
  template: FaceTemplate | null;
  faceExists: number | null;
  quality: number | null;
  liveness: number | null;
  /** Burst index of the best frame (the punch photo): `jpegs[bestIndex]`. */
  bestIndex: number | null;
  /**
   * One entry per burst frame, at the frame's burst index; null where the frame would not
   * decode (its reason is in `dropped`). Handed back as `known` when the burst grows.
   */
  frames: (FrameAnalysis | null)[];
}

export class FaceEngine {
  private constructor(
    readonly models: FaceModels,
    readonly config: FaceConfig,
  ) {}

  /** `config` as written in the device config's `face` section; defaults fill the rest. */
  static async create(config: FaceConfigInput = {}): Promise<FaceEngine> {
    return new FaceEngine(await loadFaceModels(), FaceConfig.parse(config));
  }

  get backend(): string {
    return this.models.backend;
  }
  get modelId(): string {
    return this.models.embeddingModel;
  }
  /** The tools' decision thresholds (the terminal's come from its policy; see FaceConfig). */
  get thresholds(): typeof DEFAULT_THRESHOLDS {
    return DEFAULT_THRESHOLDS;
  }

  /**
   * One frame through the pipeline: decode → detect all → dominant (largest) face → its 68
   * landmarks → quality gate → aligned 128-d embedding. Only the dominant face gets landmarks and
   * an embedding (background faces cost nothing beyond detection). With `onlyIfUsable` (the
   * terminal's bursts) a frame failing the gate is not embedded at all; tools that must score
   * every photo (compare, eval) still get an embedding and the reasons beside it. With
   * `everyFace` (`clockface face inspect`) every face also gets landmarks and its own quality
   * verdict in `faces[i].quality`; still only the dominant one is embedded.
   */
  async analyze(jpeg: Buffer, opts: { onlyIfUsable?: boolean; everyFace?: boolean } = {}): Promise<FrameAnalysis> {
    const t0 = performance.now();
    const img = await decodeImage(jpeg, { maxPixels: this.config.maxPixels, maxSide: this.config.maxSide });
    const t1 = performance.now();
    const { tf, faceapi } = this.models;
    const tensor = tf.tensor3d(new Uint8Array(img.rgb.buffer, img.rgb.byteOffset, img.rgb.length), [img.height, img.width, 3], 'int32');
    try {
      const { detectorInputSize: inputSize, detectorMinScore: scoreThreshold } = this.config;
      const detections = this.config.detectorFit
        ? await detectFacesFitted(tf, faceapi, tensor, img.width, img.height, inputSize, scoreThreshold)
        : await faceapi.detectAllFaces(tensor, new faceapi.TinyFaceDetectorOptions({ inputSize, scoreThreshold }));
      const t2 = performance.now();
      const toOriginal = (b: Box): Box => ({ x: b.x * img.scale, y: b.y * img.scale, width: b.width * img.scale, height: b.height * img.scale });
      const faces = detections
        .map((d) => ({ box: toOriginal(d.box), faceExists: d.score, d }))
        .sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height);
      const base: Pick<FrameAnalysis, 'width' | 'height' | 'faces'> = { width: img.originalWidth, height: img.originalHeight, faces: faces.map(({ box, faceExists }) => ({ box, faceExists })) };
      const stage = { decodeMs: t1 - t0, detectMs: t2 - t1, landmarksMs: 0, qualityMs: 0, embedMs: 0 };
      const timings = (): FrameAnalysis['timings'] => ({ ...stage, totalMs: performance.now() - t0 });
      const top = faces[0];
      if (!top) return { ...base, dominant: null, reasons: ['no-face'], quality: null, template: null, landmarks: null, timings: timings() };
      const reasons: FrameAnalysis['reasons'] = [];
      const second = faces[1];
      if (second && second.box.width * second.box.height >= this.config.severalFacesAreaRatio * top.box.width * top.box.height) {
        reasons.push('several-faces');
      }
      const withLandmarks = await new faceapi.DetectSingleFaceLandmarksTask(Promise.resolve(faceapi.extendWithFaceDetection({}, top.d)), tensor, false);
      const t3 = performance.now();
      stage.landmarksMs = t3 - t2;
      const positions = withLandmarks!.landmarks.positions;
      const quality = assessQuality(img, top.d.box, positions, img.scale, this.config.quality);
      reasons.push(...quality.reasons);
      stage.qualityMs = performance.now() - t3;
      if (opts.everyFace) {
        // Background faces' landmarks count as landmark time; each face's own gate, no several-faces.
        base.faces[0]!.quality = quality;
        for (const [i, other] of faces.entries()) {
          if (i === 0) continue;
          const marks = await new faceapi.DetectSingleFaceLandmarksTask(Promise.resolve(faceapi.extendWithFaceDetection({}, other.d)), tensor, false);
          base.faces[i]!.quality = assessQuality(img, other.d.box, marks!.landmarks.positions, img.scale, this.config.quality);
        }
        stage.landmarksMs = performance.now() - t2 - stage.qualityMs;
      }
      const t4 = performance.now();
      let template: FaceTemplate | null = null;
      if (!opts.onlyIfUsable || reasons.length === 0) {
        // The same dlib-style alignment face-api's own chain uses: the model id covers it.
        const described = await new faceapi.ComputeSingleFaceDescriptorTask(Promise.resolve(withLandmarks), tensor);
        stage.embedMs = performance.now() - t4;
        template = { model: this.modelId, vector: described!.descriptor };
      }
      return {
        ...base,
        dominant: { box: top.box, faceExists: top.faceExists },
        reasons,
        quality,
        template,
        landmarks: positions.map((p) => ({ x: p.x * img.scale, y: p.y * img.scale })),
        timings: timings(),
      };
    } finally {
      tensor.dispose();
    }
  }

  /**
   * Uses the best-quality frames of a burst; reports how many were used and why others were
   * dropped. `known` holds results for the first frames when a growing burst is analysed again.
   */
  async analyzeBurst(jpegs: readonly Buffer[], known: readonly (FrameAnalysis | null)[] = []): Promise<BurstAnalysis> {
    // Aligned with `jpegs`: every index below is a burst index, so `jpegs[bestIndex]` is the
    // best frame even when an earlier frame would not decode.
    const frames: (FrameAnalysis | null)[] = [];
    const dropped: BurstAnalysis['dropped'] = [];
    for (const [index, jpeg] of jpegs.entries()) {
      try {
        // Frames analysed earlier in this burst (the terminal's early look) are not redone.
        const f = known[index] ?? (await this.analyze(jpeg, { onlyIfUsable: true }));
        frames.push(f);
        if (f.reasons.length) dropped.push({ index, reasons: f.reasons });
      } catch (err) {
        frames.push(null);
        dropped.push({ index, reasons: [err instanceof FaceInputError ? `image-${err.code}` : 'image-unreadable'] });
      }
    }
    const usable = frames
      .flatMap((f, index) => (f && f.reasons.length === 0 && f.template ? [{ f, index }] : []))
      .sort((a, b) => (b.f.quality?.score ?? 0) - (a.f.quality?.score ?? 0));
    const used = usable.slice(0, this.config.burstUse);
    for (const { index } of usable.slice(this.config.burstUse)) dropped.push({ index, reasons: ['not-among-best'] });
    dropped.sort((a, b) => a.index - b.index);
    const liveness = burstLiveness(frames.flatMap((f) => (f?.landmarks ? [f.landmarks] : [])));
    if (used.length === 0) {
      const best = frames.find((f) => f?.dominant);
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
      bestIndex: used[0]!.index,
      frames,
    };
  }

  /** Similarity of two templates of this engine's model, 0..1; another model's template throws ModelMismatchError. */
  similarity(a: FaceTemplate, b: FaceTemplate): number {
    for (const t of [a, b]) if (t.model !== this.modelId) throw new ModelMismatchError(this.modelId, t.model);
    return similarityFromDistance(euclidean(a.vector, b.vector));
  }

}
