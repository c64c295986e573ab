import type { FaceAnalysis, FaceEngine as TerminalFaceEngine } from '../face-engine.js';
import { FaceEngine, type FaceConfigInput, type FrameAnalysis } from './engine.js';
import { faceVersions } from './models.js';
import { similarityFromDistance } from './scores.js';
import { euclidean } from './template.js';

/** The real engine behind the small interface the decision flow uses (device/face-engine.ts). */
export class WasmTerminalFaceEngine implements TerminalFaceEngine {
  private constructor(readonly engine: FaceEngine) {}

  static async create(config: FaceConfigInput = {}): Promise<WasmTerminalFaceEngine> {
    return new WasmTerminalFaceEngine(await FaceEngine.create(config));
  }

  get model(): string {
    return this.engine.modelId;
  }

  get versions(): Record<string, string> {
    return { ...faceVersions(this.engine.models) };
  }

  async analyze(burst: readonly Buffer[], earlier?: FaceAnalysis): Promise<FaceAnalysis> {
    const b = await this.engine.analyzeBurst(burst, (earlier?.frameResults ?? []) as (FrameAnalysis | null)[]);
    // Burst indices throughout: frames[i] and burst[i] are the same frame.
    const best = b.bestIndex !== null ? b.frames[b.bestIndex] : b.frames.find((f) => f && f.faces.length > 0);
    return {
      // The engine ignores small background faces (severalFacesAreaRatio); so does the count.
      faces: !best?.dominant ? 0 : best.reasons.includes('several-faces') ? best.faces.length : 1,
      descriptor: b.template?.vector ?? null,
      faceScore: b.faceExists,
      quality: b.quality,
      liveness: b.liveness,
      bestFrame: b.bestIndex !== null ? (burst[b.bestIndex] ?? null) : null,
      frameResults: b.frames,
      burst: { frames: burst.length, used: b.used, dropped: b.dropped },
    };
  }

  similarity(a: Float32Array, b: Float32Array): number {
    return similarityFromDistance(euclidean(a, b));
  }

  async templateFromPhoto(jpeg: Buffer): Promise<Float32Array> {
    const a = await this.engine.analyze(jpeg);
    if (!a.template) throw new Error(`reference photo has no usable face (${a.reasons.join(', ')})`);
    if (a.reasons.includes('several-faces')) throw new Error('reference photo shows several faces');
    return a.template.vector;
  }
}
