import { spawn } from 'node:child_process';
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
 * Runs the first installed still-capture program and returns the JPEG it writes to stdout.
 * node-libcamera is not on the npm registry this project can use, so this spawns
 * rpicam-still / libcamera-still directly, which is exactly what node-libcamera does.
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
