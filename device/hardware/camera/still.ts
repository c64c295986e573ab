import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../../common/log.js';
import { HardwareError } from '../errors.js';

export interface CommandCandidate {
  command: string;
  args: string[];
  /** What to try when it is missing or fails. */
  fix: string;
}

const STILL_TIMEOUT_MS = 15_000;

/**
 * Runs the first installed still-capture program and returns the JPEG it writes to stdout
 * (rpicam-still, then libcamera-still). The fallback when node-libcamera cannot take the still.
 */
export async function runStill(candidates: CommandCandidate[], log?: Logger): Promise<Buffer> {
  let lastMissing: CommandCandidate | undefined;
  for (const cand of candidates) {
    try {
      return await capture(cand);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        log?.info({ command: cand.command }, 'still program not installed; trying the next one');
        lastMissing = cand;
        continue;
      }
      throw err;
    }
  }
  throw new HardwareError('camera', `camera: none of ${candidates.map((c) => c.command).join(', ')} is installed`, lastMissing?.fix ?? 'install rpicam-apps', 'ENOENT');
}

function capture(cand: CommandCandidate): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(cand.command, cand.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), STILL_TIMEOUT_MS);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString('utf8')).slice(-2000)));
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const jpeg = Buffer.concat(out);
      if (code === 0 && jpeg.length > 4 && jpeg[0] === 0xff && jpeg[1] === 0xd8) return resolve(jpeg);
      const why = signal === 'SIGKILL' ? `timed out after ${STILL_TIMEOUT_MS} ms` : `exited ${signal ?? code} without a JPEG`;
      reject(new HardwareError('camera', `camera: ${cand.command} ${why}: ${err.trim().split('\n').pop() ?? ''}`, cand.fix, 'ESTILL'));
    });
  });
}

export interface LibcameraStillOptions {
  width: number;
  height: number;
  timeoutMs?: number;
}

/**
 * A full-resolution still through node-libcamera (which runs `libcamera-still` through a shell).
 * It writes to a file in a private temp folder (0700), read back and deleted at once: the
 * photo of a person never lingers on disk. Returns undefined when node-libcamera did not run the
 * program (it is not installed under that name, or node-libcamera's NODE_ENV=test dry run), so
 * the caller can fall back to spawning rpicam-still itself. node-libcamera has no timeout of its
 * own; ours stops waiting, and rpicam's own --timeout ends the program.
 */
export async function stillViaNodeLibcamera(opts: LibcameraStillOptions, log?: Logger): Promise<Buffer | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'cf-still-'));
  const file = join(dir, 'still.jpg');
  const waitMs = opts.timeoutMs ?? STILL_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  try {
    const { still } = await import('node-libcamera');
    const run = still({ output: file, width: opts.width, height: opts.height, nopreview: true, timeout: 1000, encoding: 'jpg' });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HardwareError('camera', `camera: libcamera-still gave no still within ${waitMs} ms`, 'check the camera with rpicam-hello; restart the terminal if the camera stack hangs', 'ETIMEDOUT')), waitMs);
    });
    await Promise.race([run, timeout]);
    let jpeg: Buffer;
    try {
      jpeg = readFileSync(file);
    } catch {
      return undefined; // nothing ran (dry run) or it wrote nothing: let the caller try directly
    }
    return jpeg.length > 4 && jpeg[0] === 0xff && jpeg[1] === 0xd8 ? jpeg : undefined;
  } catch (err) {
    if (err instanceof HardwareError) throw err;
    const e = err as { code?: unknown; message?: string };
    if (e.code === 127 || /not found/i.test(e.message ?? '')) {
      log?.info('libcamera-still not installed under that name; taking the still directly');
      return undefined;
    }
    throw new HardwareError('camera', `camera: libcamera-still failed: ${(e.message ?? String(err)).split('\n').slice(-2).join(' ').trim()}`, 'check the camera with rpicam-hello --list-cameras and the cable', 'ESTILL');
  } finally {
    if (timer) clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  }
}
