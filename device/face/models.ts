import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createLogger } from '../../common/log.js';

/**
 * Loads the face models from the npm packages on disk (never the network). Backend:
 * @tensorflow/tfjs-node when installed and loadable (what a Raspberry Pi uses), else WASM,
 * whose .wasm files ship inside @tensorflow/tfjs-backend-wasm (chooseBackend).
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
  /** Why the native backend was wanted but not used (see chooseBackend); null otherwise. */
  backendFallback: string | null;
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

/** How modules are found and loaded; injectable so a test can point tfjs-node at a broken install. */
export interface ModuleLoader {
  resolve(id: string): string;
  load(id: string): unknown;
}
const nodeLoader: ModuleLoader = { resolve: (id) => require.resolve(id), load: (id) => require(id) };

export interface BackendChoice {
  tf: Tf;
  faceapi: FaceApi;
  /**
   * Why the native backend is not used although @tensorflow/tfjs-node is installed (e.g. its
   * libtensorflow is missing); null when it is used, or simply not installed (the WASM build).
   */
  fallback: string | null;
}

/**
 * @tensorflow/tfjs-node when it is installed and loads; otherwise the WASM backend. A
 * tfjs-node that resolves but fails to load (its native library missing or built for another
 * CPU) is not fatal: the engine runs on WASM and says why, in the log and in `fallback`.
 */
export async function chooseBackend(faceApiDir: string, loader: ModuleLoader = nodeLoader, log: (msg: string, reason: string) => void = warn): Promise<BackendChoice> {
  let installed = false;
  try {
    loader.resolve('@tensorflow/tfjs-node');
    installed = true;
  } catch {
    // Not installed: the ordinary case where its install script could not fetch libtensorflow.
  }
  let fallback: string | null = null;
  if (installed) {
    try {
      const tf = loader.load('@tensorflow/tfjs-node') as Tf;
      const faceapi = loader.load(join(faceApiDir, 'dist/face-api.node.js')) as FaceApi;
      return { tf, faceapi, fallback: null };
    } catch (err) {
      fallback = `tfjs-node failed to load: ${(err as Error).message.split('\n')[0]}`;
      log('face engine: @tensorflow/tfjs-node is installed but failed to load; using the WASM backend', fallback);
    }
  }
  const tf = loader.load('@tensorflow/tfjs') as Tf;
  const wasm = loader.load('@tensorflow/tfjs-backend-wasm') as { setWasmPaths(p: string, usePlatformFetch?: boolean): void };
  wasm.setWasmPaths(`${dirname(loader.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
  await tf.setBackend('wasm');
  const faceapi = loader.load(join(faceApiDir, 'dist/face-api.node-wasm.js')) as FaceApi;
  return { tf, faceapi, fallback };
}

function warn(msg: string, reason: string): void {
  // stderr through the project's logger: `clockface face … --json` keeps stdout for its answer.
  createLogger({ name: 'face' }).warn({ reason }, msg);
}

async function load(): Promise<FaceModels> {
  const faceApiDir = dirname(require.resolve('@vladmandic/face-api/package.json'));
  const { tf, faceapi, fallback } = await chooseBackend(faceApiDir);
  await tf.ready();
  // CLOCKFACE_FACE_MODEL_DIR: the weights somewhere else on disk (an image that ships them apart).
  const modelDir = process.env.CLOCKFACE_FACE_MODEL_DIR || join(faceApiDir, 'model');
  await faceapi.nets.tinyFaceDetector.loadFromDisk(modelDir);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir);
  await faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir);
  return { tf, faceapi, backend: tf.getBackend(), backendFallback: fallback, embeddingModel: EMBEDDING_MODEL_ID, detectorModel: DETECTOR_MODEL_ID };
}

/** What `clockface version` and the device's retained status report about the face engine. */
export interface FaceVersions {
  faceBackend: string;
  faceEmbedding: string;
  faceDetector: string;
  /** Only when tfjs-node is installed but failed to load; cut to the status record's 64 characters. */
  faceBackendFallback?: string;
}

export function faceVersions(models: Pick<FaceModels, 'backend' | 'embeddingModel' | 'detectorModel'> & { backendFallback?: string | null }): FaceVersions {
  return {
    faceBackend: models.backend,
    faceEmbedding: models.embeddingModel,
    faceDetector: models.detectorModel,
    ...(models.backendFallback ? { faceBackendFallback: models.backendFallback.slice(0, 64) } : {}),
  };
}
