import type { Template } from '../../protocol/index.js';

/** A face template in memory: the model that made it and its vector. */
export interface FaceTemplate {
  model: string;
  vector: Float32Array;
}

export function toWireTemplate(t: FaceTemplate): Template {
  return { model: t.model, dims: t.vector.length, vector: Buffer.from(t.vector.buffer, t.vector.byteOffset, t.vector.byteLength).toString('base64') };
}

export function fromWireTemplate(t: Template): FaceTemplate {
  const bytes = Buffer.from(t.vector, 'base64');
  if (bytes.length !== t.dims * 4) throw new Error('template vector length does not match dims');
  const vector = new Float32Array(t.dims);
  Buffer.from(vector.buffer).set(bytes);
  return { model: t.model, vector };
}

export function euclidean(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return Math.sqrt(s);
}

/** Mean of several descriptors of one face (a burst): steadier than any single frame. */
export function meanVector(vectors: Float32Array[]): Float32Array {
  const out = new Float32Array(vectors[0]!.length);
  for (const v of vectors) for (let i = 0; i < out.length; i++) out[i]! += v[i]! / vectors.length;
  return out;
}
