import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { FaceEngine } from '../device/face/engine.js';
import { TemplateIndex } from '../device/face/matcher.js';
import type { FaceTemplate } from '../device/face/template.js';
import { percentile, round } from './measure.js';
import { seededRandom } from '../tests/fuzz/seeds.js';
import { oneFaceFrame } from '../demo/people.js';

/**
 * The face engine on one 640x480 frame with one face (cut around the face of a demo photo that
 * ships with @vladmandic/face-api, as bench/device.ts does): per-stage latency and frame →
 * decision (decode + detect + landmarks + quality gate + embedding + 1:1 match against the
 * subject's templates). Then 1:N search over 1k / 10k / 100k templates (random unit-length
 * 128-d vectors plus one planted genuine template of the frame's face), and peak RSS.
 */
const FRAMES = 40;
const WARMUP = 5;
const SEARCHES = 60;

function stats(samples: number[]): { median: number; p95: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { median: round(percentile(s, 50), 3), p95: round(percentile(s, 95), 3), n: s.length };
}


function randomUnit(next: () => number, dims: number): Float32Array {
  const v = new Float32Array(dims);
  let n = 0;
  for (let i = 0; i < dims; i++) {
    // Sum of uniforms: close enough to a Gaussian for a direction on the sphere.
    const x = next() + next() + next() - 1.5;
    v[i] = x;
    n += x * x;
  }
  const k = 1 / Math.sqrt(n);
  for (let i = 0; i < dims; i++) v[i]! *= k;
  return v;
}

export async function run(): Promise<Record<string, unknown>> {
  const tLoad = performance.now();
  const engine = await FaceEngine.create();
  const loadMs = performance.now() - tLoad;
  const frame = await oneFaceFrame(engine);
  // The enrolled subject: templates from the frame itself and from a smaller re-encoding of it.
  const enrolledFrom = [frame, await sharp(frame).resize(480, 360).jpeg({ quality: 75 }).toBuffer()];
  const enrolled: FaceTemplate[] = [];
  for (const jpeg of enrolledFrom) {
    const a = await engine.analyze(jpeg);
    if (!a.template) throw new Error(`bench frame has no usable face (${a.reasons.join(', ')})`);
    enrolled.push(a.template);
  }
  const oneToOne = new TemplateIndex(engine.modelId, 128);
  const others = seededRandom(7);
  for (let s = 0; s < 200; s++) oneToOne.set(`s-${s}`, [{ model: engine.modelId, vector: randomUnit(others, 128) }]);
  oneToOne.set('s-bench', enrolled);

  const stage = { decode: [] as number[], detect: [] as number[], landmarks: [] as number[], quality: [] as number[], landmarksAndQuality: [] as number[], embed: [] as number[], match: [] as number[], frameToDecision: [] as number[] };
  let accepted = 0;
  let lastSimilarity = 0;
  for (let i = 0; i < FRAMES + WARMUP; i++) {
    const t0 = performance.now();
    const a = await engine.analyze(frame, { onlyIfUsable: true });
    const t1 = performance.now();
    const similarity = a.template ? oneToOne.verify('s-bench', a.template) : null;
    const t2 = performance.now();
    const accept = similarity !== null && similarity >= engine.thresholds.verify;
    if (i < WARMUP) continue;
    if (accept) accepted++;
    lastSimilarity = similarity ?? 0;
    stage.decode.push(a.timings.decodeMs);
    stage.detect.push(a.timings.detectMs);
    stage.landmarks.push(a.timings.landmarksMs);
    stage.quality.push(a.timings.qualityMs);
    stage.landmarksAndQuality.push(a.timings.landmarksMs + a.timings.qualityMs);
    stage.embed.push(a.timings.embedMs);
    stage.match.push(t2 - t1);
    stage.frameToDecision.push(t2 - t0);
  }

  const search: Record<string, unknown> = {};
  const gen = seededRandom(20261123);
  const probe = enrolled[0]!;
  for (const size of [1_000, 10_000, 100_000]) {
    const index = new TemplateIndex(engine.modelId, 128, size);
    // Two templates per subject, like a real gallery; the planted genuine is one of the enrolled subject's.
    for (let s = 0; s < size / 2 - 1; s++) index.set(`p-${s}`, [{ model: engine.modelId, vector: randomUnit(gen, 128) }, { model: engine.modelId, vector: randomUnit(gen, 128) }]);
    index.set('s-bench', [enrolled[1]!, { model: engine.modelId, vector: randomUnit(gen, 128) }]);
    const times: number[] = [];
    let found = 0;
    for (let i = 0; i < SEARCHES + 5; i++) {
      const t0 = performance.now();
      const r = index.identify(probe);
      const t = performance.now() - t0;
      if (i < 5) continue;
      times.push(t);
      if (r.outcome === 'match' && r.best?.subject === 's-bench') found++;
    }
    search[`templates${size / 1000}k`] = { templates: index.size, subjects: index.subjectCount, ms: stats(times), plantedFound: `${found}/${SEARCHES}` };
  }

  const fd = stats(stage.frameToDecision);
  const n100k = (search.templates100k as { ms: { median: number } }).ms.median;
  return {
    backend: engine.backend,
    embeddingModel: engine.models.embeddingModel,
    detectorModel: engine.models.detectorModel,
    detectorInputSize: engine.config.detectorInputSize,
    modelLoadMs: round(loadMs),
    frame: { width: 640, height: 480, faces: 1, accepted: `${accepted}/${FRAMES}`, similarity: round(lastSimilarity, 3) },
    stagesMs: {
      decode: stats(stage.decode),
      detect: stats(stage.detect),
      landmarks: stats(stage.landmarks),
      quality: stats(stage.quality),
      landmarksAndQuality: stats(stage.landmarksAndQuality),
      embed: stats(stage.embed),
      match1to1: stats(stage.match),
      frameToDecision: fd,
    },
    oneToN: search,
    peakRssMB: round(process.resourceUsage().maxRSS / 1024, 1),
    targets: {
      frameToDecisionMedianMs: 120,
      frameToDecisionMet: fd.median <= 120,
      oneToN100kMedianMs: 10,
      oneToN100kMet: n100k <= 10,
    },
    note: 'WASM backend unless @tensorflow/tfjs-node is installed; 1 frame analysed at a time; 1:1 against the subject\'s 2 templates in an index of 201 subjects',
  };
}
