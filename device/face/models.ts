import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * Loads the face models from the npm packages on disk (never the network). Backend:
 * @tensorflow/tfjs-node when installed (what a Raspberry Pi uses), else WASM, whose .wasm
 * files ship inside @tensorflow/tfjs-backend-wasm.
 */
const require = createRequire(import.meta.url);

export interface Point {
  x: number;
  y: number;
}
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}
export interface Detection {
  score: number;
  box: Box;
}
interface Tensor3D {
  dispose(): void;
}
interface Tf {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  getBackend(): string;
  tensor3d(data: Uint8Array, shape: [number, number, number], dtype: 'int32'): Tensor3D;
  version_core: string;
}
interface Net {
  loadFromDisk(dir: string): Promise<void>;
}
type WithDetection = { detection: Detection };
type WithLandmarks = WithDetection & { landmarks: { positions: Point[] } };
export interface FaceApi {
  nets: { tinyFaceDetector: Net; faceLandmark68Net: Net; faceRecognitionNet: Net };
  TinyFaceDetectorOptions: new (o: { inputSize: number; scoreThreshold: number }) => object;
  detectAllFaces(input: Tensor3D, options: object): PromiseLike<Detection[]>;
  extendWithFaceDetection(obj: object, detection: Detection): WithDetection;
  /** face-api's own task classes, fed one chosen face so only it gets landmarks and a descriptor. */
  DetectSingleFaceLandmarksTask: new (parent: PromiseLike<WithDetection>, input: Tensor3D, useTinyLandmarkNet: boolean) => PromiseLike<WithLandmarks | undefined>;
  ComputeSingleFaceDescriptorTask: new (
    parent: PromiseLike<WithLandmarks | undefined>,
    input: Tensor3D,
  ) => PromiseLike<(WithLandmarks & { descriptor: Float32Array }) | undefined>;
  version: string;
}

export interface FaceModels {
  tf: Tf;
  faceapi: FaceApi;
  backend: string;
  /** Versioned id of the embedding: templates carry it, and only equal ids compare. */
  embeddingModel: string;
  detectorModel: string;
}

/** The embedding's id. Changing the model or its preprocessing (alignment, crop) must change this. */
export const EMBEDDING_MODEL_ID = 'faceapi-resnet128-v1';
export const DETECTOR_MODEL_ID = 'faceapi-tinyyolo416-v1';

let loading: Promise<FaceModels> | undefined;

export function loadFaceModels(): Promise<FaceModels> {
  loading ??= load();
  return loading;
}

function hasTfjsNode(): boolean {
  try {
    require.resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

async function load(): Promise<FaceModels> {
  const faceApiDir = dirname(require.resolve('@vladmandic/face-api/package.json'));
  let tf: Tf;
  let faceapi: FaceApi;
  if (hasTfjsNode()) {
    tf = require('@tensorflow/tfjs-node') as Tf;
    faceapi = require(join(faceApiDir, 'dist/face-api.node.js')) as FaceApi;
  } else {
    tf = require('@tensorflow/tfjs') as Tf;
    const wasm = require('@tensorflow/tfjs-backend-wasm') as { setWasmPaths(p: string, usePlatformFetch?: boolean): void };
    wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
    await tf.setBackend('wasm');
    faceapi = require(join(faceApiDir, 'dist/face-api.node-wasm.js')) as FaceApi;
  }
  await tf.ready();
  // CLOCKFACE_FACE_MODEL_DIR: the weights somewhere else on disk (an image that ships them apart).
  const modelDir = process.env.CLOCKFACE_FACE_MODEL_DIR || join(faceApiDir, 'model');
  await faceapi.nets.tinyFaceDetector.loadFromDisk(modelDir);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir);
  await faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir);
  return { tf, faceapi, backend: tf.getBackend(), embeddingModel: EMBEDDING_MODEL_ID, detectorModel: DETECTOR_MODEL_ID };
}

/** What `clockface version` and the device's retained status report about the face engine. */
export interface FaceVersions {
  faceBackend: string;
  faceEmbedding: string;
  faceDetector: string;
}

export function faceVersions(models: Pick<FaceModels, 'backend' | 'embeddingModel' | 'detectorModel'>): FaceVersions {
  return { faceBackend: models.backend, faceEmbedding: models.embeddingModel, faceDetector: models.detectorModel };
}
