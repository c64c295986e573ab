import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { FaceEngine } from '../device/face/engine.js';
import { leaveOneOut } from '../device/face/evaluate.js';
import type { FaceTemplate } from '../device/face/template.js';

/**
 * The leave-one-out table of docs/face-engine.md (1:1 and 1:N as the terminal decides), on a
 * labelled photo set: `identities.csv` with header `file,identity`, paths relative to its
 * folder. CLOCKFACE_FACES_IDENTITIES names the file; default ../shared/faces/identities.csv.
 * Accuracy, not speed: it runs from `npm run bench -- face-loo` because that is where the
 * project's measurement commands live.
 */
export async function run(): Promise<Record<string, unknown>> {
  const file = resolve(process.env.CLOCKFACE_FACES_IDENTITIES ?? join(process.cwd(), '../shared/faces/identities.csv'));
  // Not in the repository (see ../shared/faces/README.md): without it there is nothing to measure.
  if (!existsSync(file)) return { skipped: `${file} not found (set CLOCKFACE_FACES_IDENTITIES)` };
  const lines = readFileSync(file, 'utf8').trim().split(/\r?\n/);
  if (lines[0]?.replace(/\s/g, '') !== 'file,identity') throw new Error(`${file}: header must be "file,identity"`);
  const engine = await FaceEngine.create();
  const photos: { subject: string; template: FaceTemplate }[] = [];
  const failures: string[] = [];
  for (const line of lines.slice(1)) {
    const [name, subject] = line.split(',').map((s) => s.trim());
    if (!name || !subject) throw new Error(`${file}: expected file,identity in "${line}"`);
    const a = await engine.analyze(readFileSync(resolve(dirname(file), name)));
    if (a.template) photos.push({ subject, template: a.template });
    else failures.push(name);
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  const t = engine.thresholds;
  const at = (verify: number, identify: number) => leaveOneOut(photos, { verify, identify, margin: t.identifyMargin });
  return {
    identities: file,
    model: engine.modelId,
    backend: engine.backend,
    failuresToEnroll: failures,
    defaults: at(t.verify, t.identify),
    verifyAtIdentifyThreshold: at(t.identify, t.identify).verify,
    identifyAtVerifyThreshold: (({ identifyEnrolled, identifyNotEnrolled }) => ({ identifyEnrolled, identifyNotEnrolled }))(at(t.verify, t.verify)),
  };
}
