import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { castFromSamples, emptyFrame, type Person } from '../demo/people.js';

/*
 * `clockface face compare | eval | inspect` as other tools run them: the built CLI in a child
 * process, on real faces cut from the photos @vladmandic/face-api ships (demo/people.ts), with
 * the JSON shapes issue 3 fixes.
 */
const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist/cli/main.js');
const work = mkdtempSync(join(tmpdir(), 'cf-face-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const groupPhoto = join(dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')), 'demo/sample1.jpg');

function face(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [cli, 'face', ...args], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let anna: Person;
let ben: Person;
const photos = join(work, 'photos');
const file = (name: string) => join(photos, name);

beforeAll(async () => {
  if (!existsSync(cli)) execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  [anna, ben] = (await castFromSamples(2)) as [Person, Person];
  mkdirSync(photos, { recursive: true });
  writeFileSync(file('anna-ref.jpg'), anna.reference);
  writeFileSync(file('anna-cam.jpg'), anna.frame);
  writeFileSync(file('ben-ref.jpg'), ben.reference);
  writeFileSync(file('ben-cam.jpg'), ben.frame);
  writeFileSync(file('empty.jpg'), await emptyFrame());
  writeFileSync(file('notes.txt'), 'not an image');
}, 120_000);

describe('clockface face compare', () => {
  it('gives similarity, match, threshold and model (+ detail), exit 0 for the same person and for different people', async () => {
    const same = await face('compare', file('anna-ref.jpg'), file('anna-cam.jpg'), '--json');
    const other = await face('compare', file('anna-ref.jpg'), file('ben-cam.jpg'), '--json');
    for (const r of [same, other]) {
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(Object.keys(out).sort()).toEqual(['detail', 'match', 'model', 'similarity', 'threshold']);
      expect(out.similarity).toBeGreaterThanOrEqual(0);
      expect(out.similarity).toBeLessThanOrEqual(1);
      expect(out.threshold).toBe(0.6);
      expect(out.model).toBe('faceapi-resnet128-v1');
    }
    expect(JSON.parse(same.stdout).match).toBe(true);
    expect(JSON.parse(other.stdout).match).toBe(false);
    expect(JSON.parse(same.stdout).similarity).toBeGreaterThan(JSON.parse(other.stdout).similarity);
  });

  it('fails with a clear message for an unreadable file and for an image without a face', async () => {
    const missing = await face('compare', file('anna-ref.jpg'), file('nobody.jpg'), '--json');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/cannot read .*nobody\.jpg: ENOENT/);
    const text = await face('compare', file('notes.txt'), file('anna-ref.jpg'));
    expect(text.code).not.toBe(0);
    expect(text.stderr).toMatch(/not a readable image/);
    const empty = await face('compare', file('anna-ref.jpg'), file('empty.jpg'), '--json');
    expect(empty.code).not.toBe(0);
    expect(empty.stderr).toMatch(/empty\.jpg: no usable face \(no-face\)/);
    expect(empty.stdout).toBe('');
  });
});

describe('clockface face eval', () => {
  // Pairs name photos relative to the CSV's folder, one photo under two spellings, one with no face.
  const rows = [
    ['anna-ref.jpg', 'anna-cam.jpg', '1'],
    ['./anna-ref.jpg', 'ben-cam.jpg', '0'],
    ['ben-ref.jpg', 'ben-cam.jpg', 'true'],
    ['anna-cam.jpg', 'ben-ref.jpg', 'false'],
    ['anna-ref.jpg', 'empty.jpg', '0'],
    ['empty.jpg', 'ben-ref.jpg', '0'],
  ];
  const csv = `a,b,same\n${rows.map((r) => r.join(',')).join('\n')}\n`;

  function check(stdout: string) {
    const out = JSON.parse(stdout);
    expect(Object.keys(out).sort()).toEqual(['pairs', 'summary']);
    expect(out.pairs).toHaveLength(rows.length);
    for (const [i, p] of out.pairs.entries()) {
      expect(p.a).toBe(rows[i]![0]);
      expect(p.b).toBe(rows[i]![1]);
      expect(p.same).toBe(rows[i]![2] === '1' || rows[i]![2] === 'true');
      const withFace = !rows[i]!.includes('empty.jpg');
      if (withFace) {
        expect(Object.keys(p).sort()).toEqual(['a', 'b', 'match', 'same', 'similarity']);
        expect(p.similarity).toBeGreaterThanOrEqual(0);
        expect(p.similarity).toBeLessThanOrEqual(1);
        // The decision at the default 1:1 threshold: here it is right on every scored pair.
        expect(p.match).toBe(p.same);
      } else {
        expect(p.similarity).toBeNull();
        expect(p.match).toBe(false);
        expect(p.reason).toBe('no-face');
      }
    }
    const s = out.summary;
    // Five distinct photos, each analysed once although ./anna-ref.jpg and anna-ref.jpg are the same file.
    expect(s.photos).toBe(5);
    expect(s.pairs).toBe(6);
    expect(s.scored).toBe(4);
    expect(s.genuine).toBe(2);
    expect(s.impostor).toBe(2);
    expect(s.failuresToEnroll).toBe(1);
    for (const k of ['tarAtFar1', 'tarAtFar01', 'tarAtFar0', 'eer', 'bestThresholdAccuracy']) expect(typeof s[k], k).toBe('number');
    expect(s.tarAtFar0).toBe(1);
    expect(s.eer).toBe(0);
    expect(s.bestThresholdAccuracy).toBe(1);
    return out;
  }

  it('reads paths relative to the CSV folder, and the same rows relative to --root', async () => {
    writeFileSync(join(photos, 'pairs.csv'), csv);
    const beside = await face('eval', '--pairs', join(photos, 'pairs.csv'), '--json');
    expect(beside.code, beside.stderr).toBe(0);
    const a = check(beside.stdout);

    const elsewhere = join(work, 'lists');
    mkdirSync(elsewhere, { recursive: true });
    writeFileSync(join(elsewhere, 'pairs.csv'), csv);
    const rooted = await face('eval', '--pairs', join(elsewhere, 'pairs.csv'), '--root', photos, '--json');
    expect(rooted.code, rooted.stderr).toBe(0);
    expect(check(rooted.stdout).pairs).toEqual(a.pairs);
    // Without --root the second CSV's folder holds no photos: every pair is reported, none scored.
    const lost = JSON.parse((await face('eval', '--pairs', join(elsewhere, 'pairs.csv'), '--json')).stdout);
    expect(lost.summary.scored).toBe(0);
    expect(lost.pairs[0].reason).toMatch(/cannot read .*anna-ref\.jpg: ENOENT/);
  });
});

describe('clockface face inspect', () => {
  const keysOfFace = ['box', 'dominant', 'faceExists', 'liveness', 'livenessNote', 'quality'];

  it('one face: box, face-exists, quality verdict with reasons, liveness null with why', async () => {
    const r = await face('inspect', file('anna-cam.jpg'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.faces).toHaveLength(1);
    const f = out.faces[0];
    expect(Object.keys(f).sort()).toEqual(keysOfFace);
    expect(Object.keys(f.box).sort()).toEqual(['height', 'width', 'x', 'y']);
    expect(f.faceExists).toBeGreaterThan(0.4);
    expect(f.quality).toMatchObject({ ok: true, reasons: [] });
    expect(f.liveness).toBeNull();
    expect(f.livenessNote).toMatch(/single still cannot show motion/);
    expect(out.liveness).toBeNull();
    expect(out.livenessNote).toMatch(/single still cannot show motion/);
    expect(out.verdict).toEqual({ usable: true, reasons: [], advice: [] });
  });

  it('a group photo: every face has its own quality verdict', async () => {
    const r = await face('inspect', groupPhoto, '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.faces.length).toBeGreaterThanOrEqual(2);
    expect(out.faces.filter((f: { dominant: boolean }) => f.dominant)).toHaveLength(1);
    for (const f of out.faces) {
      expect(Object.keys(f).sort()).toEqual(keysOfFace);
      expect(typeof f.quality.ok).toBe('boolean');
      expect(Array.isArray(f.quality.reasons)).toBe(true);
      expect(f.quality.ok).toBe(f.quality.reasons.length === 0);
      expect(typeof f.quality.metrics.interPupilPx).toBe('number');
    }
    expect(out.faces[0].quality.reasons).toContain('several-faces');
    expect(out.verdict.usable).toBe(false);
  });

  it('several images are one burst: each frame reported, the burst liveness score, and a still replay scores 0', async () => {
    const r = await face('inspect', file('anna-cam.jpg'), file('anna-cam.jpg'), file('empty.jpg'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.frames.map((f: { image: string }) => f.image)).toEqual([file('anna-cam.jpg'), file('anna-cam.jpg'), file('empty.jpg')]);
    expect(out.frames[2].faces).toEqual([]);
    expect(out.burst).toEqual({ frames: 3, used: 2, dropped: [{ index: 2, reasons: ['no-face'] }], bestIndex: 0 });
    // The same frame twice is a still held up to the camera: no motion, liveness 0.
    expect(out.liveness).toBe(0);
    expect(out.livenessNote).toBeUndefined();
    expect(out.frames[0].faces[0].liveness).toBe(0);
  });

  it('fails with a clear message for a file it cannot read', async () => {
    const r = await face('inspect', file('nobody.jpg'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/cannot read .*nobody\.jpg/);
  });
});
