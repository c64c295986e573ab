import type { Detection } from './models.js';

/**
 * face-api's tiny face detector, run on an input shaped like the frame instead of a square.
 *
 * face-api pads every image to a square and resizes that to inputSize x inputSize: for a
 * 640x480 camera frame, a quarter of the 416x416 input is padding the network still convolves.
 * The network is fully convolutional, so here face-api's square input is made exactly as it
 * does (zero padding, the same bilinear resize) and then cut to the rows or columns that hold
 * the frame, rounded up to the network's 32-pixel cells: 416x320 for 4:3. The pixels the
 * network sees are face-api's; only the padding below (or beside) the frame is shorter. Box decoding,
 * score threshold and non-maximum suppression follow face-api's TinyYolov2Base.detect; the
 * results are face-api FaceDetection objects, so landmarks and descriptors run unchanged.
 */
interface Tensor {
  shape: number[];
  dispose(): void;
  data(): Promise<Float32Array>;
}
interface TfOps {
  tidy<T>(fn: () => T): T;
  expandDims(x: unknown, axis?: number): Tensor;
  cast(x: unknown, dtype: 'float32'): Tensor;
  pad(x: unknown, paddings: [number, number][]): Tensor;
  slice(x: unknown, begin: number[], size: number[]): Tensor;
  sub(a: unknown, b: unknown): Tensor;
  div(a: unknown, b: unknown): Tensor;
  tensor1d(values: number[], dtype: 'float32'): Tensor;
  scalar(v: number): Tensor;
  image: { resizeBilinear(x: unknown, size: [number, number], alignCorners: boolean, halfPixelCenters: boolean): Tensor };
}
interface TinyNet {
  params: unknown;
  config: { meanRgb: [number, number, number]; iouThreshold: number; anchors: { x: number; y: number }[] };
  runMobilenet(x: Tensor, params: unknown): Tensor;
}
interface FaceApiClasses {
  nets: { tinyFaceDetector: unknown };
  FaceDetection: new (score: number, relativeBox: unknown, imageDims: { width: number; height: number }) => Detection;
  Rect: new (x: number, y: number, width: number, height: number) => unknown;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export async function detectFacesFitted(
  tfIn: unknown,
  faceapiIn: unknown,
  image: unknown,
  width: number,
  height: number,
  inputSize: number,
  scoreThreshold: number,
  square = false,
): Promise<Detection[]> {
  const tf = tfIn as TfOps;
  const faceapi = faceapiIn as FaceApiClasses;
  const net = faceapi.nets.tinyFaceDetector as TinyNet;
  const scale = inputSize / Math.max(width, height);
  // face-api's reshaped dimensions (computeReshapedDimensions): the long side becomes inputSize.
  const cw = Math.round(width * scale);
  const ch = Math.round(height * scale);
  const netW = square ? inputSize : Math.ceil(cw / 32) * 32;
  const netH = square ? inputSize : Math.ceil(ch / 32) * 32;
  const out = tf.tidy(() => {
    // Exactly face-api's input (zero-pad to a square, bilinear resize to inputSize), then only
    // the rows (or columns) that hold the frame, rounded up to the network's 32-pixel cells.
    const long = Math.max(width, height);
    const batch = tf.cast(tf.expandDims(image, 0), 'float32');
    const square = tf.pad(batch, [[0, 0], [0, long - height], [0, long - width], [0, 0]]);
    const resized = long === inputSize ? square : tf.image.resizeBilinear(square, [inputSize, inputSize], false, false);
    const cropped = netW === inputSize && netH === inputSize ? resized : tf.slice(resized, [0, 0, 0, 0], [1, netH, netW, 3]);
    const normalized = tf.div(tf.sub(cropped, tf.tensor1d(net.config.meanRgb, 'float32')), tf.scalar(255));
    return net.runMobilenet(normalized, net.params);
  });
  const [, rows, cols] = out.shape as [number, number, number, number];
  const data = await out.data();
  out.dispose();
  const anchors = net.config.anchors;
  const per = anchors.length * 5;
  const boxes: { x: number; y: number; w: number; h: number; score: number }[] = [];
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) {
      for (let a = 0; a < anchors.length; a++) {
        const o = (row * cols + col) * per + a * 5;
        const score = sigmoid(data[o + 4]!);
        if (scoreThreshold && !(score > scoreThreshold)) continue;
        // Relative to the frame's content (cw x ch), as face-api's correction factors make them.
        const ctX = ((col + sigmoid(data[o]!)) * 32) / cw;
        const ctY = ((row + sigmoid(data[o + 1]!)) * 32) / ch;
        const w = (Math.exp(data[o + 2]!) * anchors[a]!.x * 32) / cw;
        const h = (Math.exp(data[o + 3]!) * anchors[a]!.y * 32) / ch;
        boxes.push({ x: ctX - w / 2, y: ctY - h / 2, w, h, score });
      }
    }
  }
  return nonMaxSuppression(boxes, net.config.iouThreshold).map(
    (b) => new faceapi.FaceDetection(b.score, new faceapi.Rect(b.x, b.y, b.w, b.h), { width, height }),
  );
}

/** face-api's greedy NMS: highest score first, drop boxes overlapping it by IoU > threshold. */
function nonMaxSuppression<T extends { x: number; y: number; w: number; h: number; score: number }>(boxes: T[], iouThreshold: number): T[] {
  let order = boxes.map((_, i) => i).sort((a, b) => boxes[a]!.score - boxes[b]!.score);
  const pick: T[] = [];
  while (order.length) {
    const cur = boxes[order.pop()!]!;
    pick.push(cur);
    order = order.filter((i) => {
      const b = boxes[i]!;
      const iw = Math.max(0, Math.min(cur.x + cur.w, b.x + b.w) - Math.max(cur.x, b.x));
      const ih = Math.max(0, Math.min(cur.y + cur.h, b.y + b.h) - Math.max(cur.y, b.y));
      const inter = iw * ih;
      return inter / (cur.w * cur.h + b.w * b.h - inter) <= iouThreshold;
    });
  }
  return pick;
}
