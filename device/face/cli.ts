import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { FaceEngine, type FrameAnalysis } from './engine.js';
import { FaceInputError } from './errors.js';
import { QUALITY_ADVICE, type QualityReason } from './quality.js';
import { summarize } from './evaluate.js';

/**
 * `clockface face inspect | compare | eval | serve`. The JSON shapes are a contract other
 * tools rely on (see the issue and docs/PROTOCOL.md for `serve`); keep them exact.
 */
const USAGE = `Usage:
  clockface face inspect IMAGE [IMAGE...] [--json]   (several images: frames of one burst, for liveness)
  clockface face compare A B [--json]
  clockface face eval --pairs CSV [--root DIR] [--json]
  clockface face serve            (JSON lines on stdin/stdout, for the cloud's local re-check engine)`;

export async function run(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, pairs: { type: 'string' }, root: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (!cmd || cmd === '--help' || values.help) {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  switch (cmd) {
    case 'inspect':
      return inspect(positionals, values.json === true);
    case 'compare':
      return compare(positionals, values.json === true);
    case 'eval':
      return evaluate(values.pairs, values.root, values.json === true);
    case 'serve':
      return serve();
    default:
      console.error(`clockface face: unknown command "${cmd}"\n${USAGE}`);
      return 2;
  }
}

function readImage(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new FaceInputError('unreadable', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

const r3 = (n: number) => Math.round(n * 1000) / 1000;
const box = (b: { x: number; y: number; width: number; height: number }) => ({ x: Math.round(b.x), y: Math.round(b.y), width: Math.round(b.width), height: Math.round(b.height) });

const SINGLE_STILL_NOTE = 'a single still cannot show motion: pass several frames of one capture (a burst) for a liveness score';
const BACKGROUND_NOTE = 'liveness is measured on the dominant face only';

/**
 * One IMAGE: each face with its box, face-exists score, its own quality verdict and reasons;
 * `liveness: null` with a note (motion-based liveness needs frames). Several IMAGEs are taken
 * as the frames of one capture (a burst): each frame reported the same way inside `frames`,
 * plus the burst's liveness score, which the dominant face of every frame also carries.
 */
async function inspect(paths: string[], json: boolean): Promise<number> {
  if (paths.length === 0) return usage('inspect takes IMAGE [IMAGE...] (several images: the frames of one burst)');
  const engine = await FaceEngine.create();
  const images = paths.map(readImage);
  const analyses: FrameAnalysis[] = [];
  for (const image of images) analyses.push(await engine.analyze(image, { everyFace: true }));
  // The frames already analysed are handed in as `known`: the burst step only ranks and fuses.
  const burst = paths.length > 1 ? await engine.analyzeBurst(images, analyses) : null;
  const liveness = burst?.liveness ?? null;
  const livenessNote = paths.length === 1 ? SINGLE_STILL_NOTE : liveness === null ? 'fewer than two frames showed a face' : undefined;
  const frameReport = (path: string, a: FrameAnalysis) => ({
    image: path,
    width: a.width,
    height: a.height,
    faces: a.faces.map((f, i) => {
      const reasons = i === 0 ? a.reasons : f.quality!.reasons;
      const faceLiveness = i === 0 ? liveness : null;
      return {
        box: box(f.box),
        faceExists: r3(f.faceExists),
        dominant: i === 0,
        quality: { ok: reasons.length === 0, score: r3(f.quality!.score), reasons, metrics: roundAll(f.quality!.metrics) },
        liveness: faceLiveness === null ? null : r3(faceLiveness),
        ...(faceLiveness === null ? { livenessNote: i === 0 ? livenessNote : BACKGROUND_NOTE } : {}),
      };
    }),
    verdict: { usable: a.reasons.length === 0, reasons: a.reasons, advice: a.reasons.map(advice) },
    timings: roundAll(a.timings),
  });
  const head = { model: engine.modelId, backend: engine.backend };
  const tail = { liveness: liveness === null ? null : r3(liveness), ...(livenessNote ? { livenessNote } : {}) };
  const frames = paths.map((p, i) => frameReport(p, analyses[i]!));
  const report = burst
    ? { ...head, frames, burst: { frames: paths.length, used: burst.used, dropped: burst.dropped, bestIndex: burst.bestIndex }, ...tail }
    : { ...frames[0]!, ...head, ...tail };
  if (json) console.log(JSON.stringify(report));
  else {
    for (const f of frames) {
      console.log(`${f.image}: ${f.width}x${f.height}, ${f.faces.length} face(s) [${engine.modelId} on ${engine.backend}]`);
      for (const [i, face] of f.faces.entries()) {
        const q = face.quality.ok ? 'quality ok' : `quality: ${face.quality.reasons.map(advice).join('; ')}`;
        console.log(`  face ${i + 1}${face.dominant ? ' (dominant)' : ''}: box ${JSON.stringify(face.box)} face-exists ${face.faceExists}, ${q}`);
      }
      console.log(f.verdict.usable ? '  usable' : `  not usable: ${f.verdict.advice.join('; ')}`);
    }
    console.log(liveness === null ? `liveness: none (${livenessNote})` : `liveness over ${paths.length} frames: ${r3(liveness)}`);
  }
  return 0;
}

function advice(r: string): string {
  if (r === 'no-face') return 'no face found';
  if (r === 'several-faces') return 'several faces: one person at a time';
  return QUALITY_ADVICE[r as QualityReason] ?? r;
}

function roundAll<T extends object>(o: T): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, r3(v as number)]));
}

async function compare(paths: string[], json: boolean): Promise<number> {
  if (paths.length !== 2) return usage('compare takes two images A B');
  const engine = await FaceEngine.create();
  const [a, b] = [await usableFace(engine, paths[0]!), await usableFace(engine, paths[1]!)];
  const similarity = engine.similarity(a.template!, b.template!);
  const threshold = engine.thresholds.verify;
  const result = {
    similarity: r3(similarity),
    match: similarity >= threshold,
    threshold,
    model: engine.modelId,
    detail: {
      backend: engine.backend,
      a: { image: paths[0], box: box(a.dominant!.box), faceExists: r3(a.dominant!.faceExists), quality: a.reasons },
      b: { image: paths[1], box: box(b.dominant!.box), faceExists: r3(b.dominant!.faceExists), quality: b.reasons },
    },
  };
  if (json) console.log(JSON.stringify(result));
  else console.log(`similarity ${result.similarity} — ${result.match ? 'same person' : 'different people'} (threshold ${threshold}, ${engine.modelId})`);
  return 0;
}

async function usableFace(engine: FaceEngine, path: string): Promise<FrameAnalysis> {
  const a = await engine.analyze(readImage(path));
  if (!a.template) throw new FaceInputError('unreadable', `${path}: no usable face (${a.reasons.join(', ')})`);
  return a;
}

async function evaluate(pairsFile: string | undefined, rootArg: string | undefined, json: boolean): Promise<number> {
  if (!pairsFile) return usage('eval needs --pairs CSV');
  const root = resolve(rootArg ?? dirname(pairsFile));
  const lines = readFileSync(pairsFile, 'utf8').trim().split(/\r?\n/);
  if (lines[0]?.replace(/\s/g, '') !== 'a,b,same') throw new Error(`${pairsFile}: header must be "a,b,same"`);
  const pairs = lines.slice(1).map((line, i) => {
    const [a, b, same] = line.split(',').map((s) => s.trim());
    if (!a || !b || !['0', '1', 'true', 'false'].includes(same ?? '')) throw new Error(`${pairsFile}:${i + 2}: expected a,b,same`);
    return { a, b, same: same === '1' || same === 'true' };
  });
  const engine = await FaceEngine.create();
  // Each photo once, however many pairs name it and however it is spelled (./x.jpg, x.jpg, an
  // absolute path): photos are keyed by their resolved path.
  const photos = new Map<string, { template: FrameAnalysis['template']; reason: string | null }>();
  const pathOf = (name: string) => resolve(root, name);
  for (const path of new Set(pairs.flatMap((p) => [pathOf(p.a), pathOf(p.b)]))) {
    try {
      const a = await engine.analyze(readImage(path));
      photos.set(path, { template: a.template, reason: a.template ? null : a.reasons.join(', ') });
    } catch (err) {
      photos.set(path, { template: null, reason: (err as Error).message });
    }
    if (!json) process.stderr.write('.');
  }
  const threshold = engine.thresholds.verify;
  // The summary and `match` both use the unrounded similarity; only the printed rows are rounded.
  const scored: { same: boolean; similarity: number }[] = [];
  const out = pairs.map((p) => {
    const [ta, tb] = [photos.get(pathOf(p.a))!, photos.get(pathOf(p.b))!];
    if (!ta.template || !tb.template) {
      return { a: p.a, b: p.b, same: p.same, similarity: null, match: false, reason: ta.reason ?? tb.reason };
    }
    const similarity = engine.similarity(ta.template, tb.template);
    scored.push({ same: p.same, similarity });
    return { a: p.a, b: p.b, same: p.same, similarity: r3(similarity), match: similarity >= threshold };
  });
  const fte = [...photos.values()].filter((p) => !p.template).length;
  const summary = {
    ...summarize(scored.filter((p) => p.same).map((p) => p.similarity), scored.filter((p) => !p.same).map((p) => p.similarity), threshold, pairs.length, fte),
    /** Distinct photos analysed (each once). */
    photos: photos.size,
    model: engine.modelId,
    backend: engine.backend,
  };
  if (json) console.log(JSON.stringify({ pairs: out, summary }));
  else {
    process.stderr.write('\n');
    console.log(JSON.stringify(summary, null, 2));
  }
  return 0;
}

/** JSON-lines worker: one request per line in, one answer per line out; logs never on stdout. */
async function serve(): Promise<number> {
  const engine = await FaceEngine.create();
  const write = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
  write({ ready: true, model: engine.modelId, backend: engine.backend });
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const MAX_LINE = 16 * 1024 * 1024;
  const relBox = (a: FrameAnalysis, b: { x: number; y: number; width: number; height: number }) => ({
    left: r3(Math.max(0, b.x / a.width)), top: r3(Math.max(0, b.y / a.height)), width: r3(b.width / a.width), height: r3(b.height / a.height),
  });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let id: unknown = null;
    try {
      if (line.length > MAX_LINE) throw new Error(`request line larger than ${MAX_LINE} bytes`);
      let req: { id?: unknown; op?: unknown; image?: unknown; source?: unknown; target?: unknown };
      try {
        req = JSON.parse(line);
      } catch {
        throw new Error('request is not valid JSON');
      }
      id = typeof req.id === 'number' || typeof req.id === 'string' ? req.id : null;
      const img = (v: unknown, what: string) => {
        if (typeof v !== 'string' || v.length === 0) throw new Error(`${what} must be a base64 image`);
        return Buffer.from(v, 'base64');
      };
      if (req.op === 'detect') {
        const a = await engine.analyze(img(req.image, 'image'));
        write({ id, ok: true, faces: a.faces.map((f) => ({ box: relBox(a, f.box), confidence: r3(f.faceExists) })), model: engine.modelId });
      } else if (req.op === 'compare') {
        const s = await engine.analyze(img(req.source, 'source'));
        const t = await engine.analyze(img(req.target, 'target'));
        const similarity = s.template && t.template ? engine.similarity(s.template, t.template) : null;
        const threshold = engine.thresholds.verify;
        write({
          id, ok: true, similarity: similarity === null ? null : r3(similarity), match: similarity !== null && similarity >= threshold, threshold, model: engine.modelId,
          sourceFace: s.dominant ? { box: relBox(s, s.dominant.box), confidence: r3(s.dominant.faceExists) } : null,
          targetFaces: t.dominant ? [{ box: relBox(t, t.dominant.box), confidence: r3(t.dominant.faceExists), similarity: similarity === null ? null : r3(similarity) }] : [],
        });
      } else {
        throw new Error(`unknown op ${JSON.stringify(req.op)} (expected "detect" or "compare")`);
      }
    } catch (err) {
      write({ id, ok: false, error: (err as Error).message });
    }
  }
  return 0;
}

function usage(msg: string): number {
  console.error(`clockface face: ${msg}\n${USAGE}`);
  return 2;
}
