/**
 * What a re-check needs from a face service: does the photo hold a face, and how similar is
 * it to a reference. Scores are 0..1. Only image bytes cross this interface: no names, no
 * subject ids, no tenant. Implementations: Amazon Rekognition and the project's own worker.
 */
export interface FaceBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface DetectedFace {
  confidence: number;
  box?: FaceBox;
}

export interface RecheckEngine {
  readonly name: string;
  /** Confidence (0..1) of each face found, with its box as fractions of the image when the engine gives one. */
  detectFaces(jpeg: Buffer): Promise<{ faces: DetectedFace[] }>;
  /** Similarity (0..1) of the best face in target to the face in source; null when either holds no face. */
  compareFaces(source: Buffer, target: Buffer): Promise<{ similarity: number | null }>;
  close(): Promise<void>;
}

/** An engine failure worth retrying later (throttling, outage) versus one that never will succeed. */
export class EngineError extends Error {
  constructor(message: string, readonly retryable: boolean) {
    super(message);
  }
}
