import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

/** The source tree's fixtures (also when this module runs compiled from dist/, as the bench does). */
export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)).replace(/[\\/]dist([\\/])/, '$1'), '..', 'test-fixtures');

/**
 * Writes real JPEG frames (a face-api demo photo, resized and tinted per frame) at 640x480
 * and 1280x720 into a temp folder laid out the way the stand-in camera reads them.
 */
export async function makeFrameFolder(count = 4): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'cf-hw-frames-'));
  const photo = join(FIXTURES, '..', '..', '..', 'node_modules', '@vladmandic', 'face-api', 'demo', 'sample1.jpg');
  for (const [w, h] of [[640, 480], [1280, 720]] as const) {
    const dir = join(root, `${w}x${h}`);
    mkdirSync(dir);
    for (let i = 0; i < count; i++) {
      const jpeg = await sharp(photo).resize(w, h, { fit: 'cover' }).modulate({ brightness: 0.8 + i * 0.1 }).jpeg({ quality: 85 }).toBuffer();
      writeFileSync(join(dir, `f${i}.jpg`), jpeg);
    }
  }
  return root;
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
