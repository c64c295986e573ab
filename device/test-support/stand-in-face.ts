import { createHash } from 'node:crypto';
import type { FaceAnalysis, FaceEngine } from '../face-engine.js';

/**
 * A deterministic stand-in for the face engine, for the decision state machine's unit tests
 * (terminal.test.ts) only: a descriptor is derived from the JPEG bytes, so the same photo
 * matches itself (similarity 1) and different photos score about 0.5. It recognises files, not
 * faces; everything that runs the service (service.test.ts, tests/, the demo, the benchmarks)
 * uses the real engine.
 */
export class StandInFaceEngine implements FaceEngine {
  readonly model = 'stand-in-sha256-v1';
  readonly versions = { faceBackend: 'stand-in', faceEmbedding: 'stand-in-sha256-v1', faceDetector: 'none' };
  async analyze(burst: readonly Buffer[]): Promise<FaceAnalysis> {
    const best = burst[burst.length - 1]!;
    return { faces: 1, descriptor: descriptorOf(best), faceScore: 0.99, quality: 0.9, liveness: burst.length > 1 ? 0.9 : 0.4, bestFrame: best };
  }
  similarity(a: Float32Array, b: Float32Array): number {
    let dot = 0;
    for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
    return Math.max(0, Math.min(1, (dot + 1) / 2));
  }
  async templateFromPhoto(jpeg: Buffer): Promise<Float32Array> {
    if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('reference photo is not a JPEG');
    return descriptorOf(jpeg);
  }
}

function descriptorOf(jpeg: Buffer): Float32Array {
  const v = new Float32Array(128);
  for (let block = 0; block < 4; block++) {
    const h = createHash('sha256').update(String(block)).update(jpeg).digest();
    for (let i = 0; i < 32; i++) v[block * 32 + i] = (h[i]! - 127.5) / 127.5;
  }
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}
