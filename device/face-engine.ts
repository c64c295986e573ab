/**
 * What the decision flow needs from the face engine (issue 3, device/face). Kept this small so
 * the engine can be swapped (WASM, native, a test stand-in) without touching the flow.
 */
export interface FaceAnalysis {
  /** Faces found in the best frame of the burst. */
  faces: number;
  /** Descriptor of the single face, when exactly one was found. */
  descriptor: Float32Array | null;
  /** Detector confidence that a face is there (face-exists check). */
  faceScore: number | null;
  quality: number | null;
  /** Liveness score over the burst; null when the engine cannot tell. */
  liveness: number | null;
  /** The frame the descriptor came from (the punch photo, when policy asks for one). */
  bestFrame: Buffer | null;
  /** Engine-specific per-frame results, handed back when the same burst grows (see analyze). */
  frameResults?: readonly unknown[];
  /**
   * How the burst was used, for the punch record: frames analysed, frames fused into the
   * descriptor, and each dropped frame's burst index (position in the burst passed to analyze)
   * with its reasons (quality reasons, `no-face`, `image-<code>`, `not-among-best`).
   * Optional: engines that do not fuse bursts leave it out.
   */
  burst?: { frames: number; used: number; dropped: readonly { index: number; reasons: readonly string[] }[] };
}

export interface FaceEngine {
  /** Model id stored with templates; templates of another model are never compared. */
  readonly model: string;
  /** Backend and model ids for the device's retained status (faceBackend, faceEmbedding, faceDetector). */
  readonly versions?: Record<string, string>;
  /** `earlier`: this engine's analysis of the first frames of the same burst, so they are not redone. */
  analyze(burst: readonly Buffer[], earlier?: FaceAnalysis): Promise<FaceAnalysis>;
  /** Similarity in [0, 1]; higher is more alike. */
  similarity(a: Float32Array, b: Float32Array): number;
  /** A template from a reference photo (enrollment on the device); throws if no single face. */
  templateFromPhoto(jpeg: Buffer): Promise<Float32Array>;
}
