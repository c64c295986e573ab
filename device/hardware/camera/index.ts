import type { Logger } from '../../../common/log.js';
import type { CameraConfig } from '../config.js';
import type { Camera } from './camera.js';
import { ProcessCamera } from './process-camera.js';
import { ReplayCamera } from './replay-camera.js';
import { runStill, stillViaNodeLibcamera, type CommandCandidate } from './still.js';

export type { Camera, CameraStats, Frame } from './camera.js';
export { MjpegSplitter } from './mjpeg-splitter.js';
export { ProcessCamera } from './process-camera.js';
export { ReplayCamera } from './replay-camera.js';

const RPICAM_FIX = 'install the camera tools (sudo apt install rpicam-apps) and enable the camera';

/** rpicam-vid and libcamera-vid take the same options for an endless MJPEG stream to stdout. */
export function rpicamCandidates(cfg: CameraConfig): CommandCandidate[] {
  const args = ['-t', '0', '-n', '--codec', 'mjpeg', '--width', String(cfg.width), '--height', String(cfg.height), '--framerate', String(cfg.fps), '-o', '-'];
  return ['rpicam-vid', 'libcamera-vid'].map((command) => ({ command, args, fix: RPICAM_FIX }));
}

export function stillCandidates(cfg: CameraConfig): CommandCandidate[] {
  const args = ['-n', '-t', '1000', '--width', String(cfg.stillWidth), '--height', String(cfg.stillHeight), '-e', 'jpg', '-o', '-'];
  return ['rpicam-still', 'libcamera-still'].map((command) => ({ command, args, fix: RPICAM_FIX }));
}

/** ffmpeg reads the webcam (any pixel format) and writes MJPEG; -q:v 4 keeps frames face-grade. */
export function v4l2Candidates(cfg: CameraConfig): CommandCandidate[] {
  const args = [
    '-hide_banner', '-loglevel', 'error', '-f', 'v4l2', '-framerate', String(cfg.fps), '-video_size', `${cfg.width}x${cfg.height}`,
    '-i', cfg.device, '-c:v', 'mjpeg', '-q:v', '4', '-f', 'mjpeg', 'pipe:1',
  ];
  return [{ command: 'ffmpeg', args, fix: `install ffmpeg (sudo apt install ffmpeg), check ${cfg.device} exists and the service user is in group video` }];
}

export function createCamera(cfg: CameraConfig, baseDir = process.cwd(), log?: Logger): Camera | undefined {
  switch (cfg.driver) {
    case 'none':
      return undefined;
    case 'replay':
      return new ReplayCamera(resolvePath(baseDir, cfg.replayPath!), cfg.fps);
    case 'rpicam':
      return new ProcessCamera(cfg, rpicamCandidates(cfg), () => rpicamStill(cfg, log), log);
    case 'v4l2': {
      // A webcam has no separate still mode: a still is one frame from a one-shot ffmpeg.
      const still = v4l2Candidates(cfg).map((c) => ({ ...c, args: [...c.args.slice(0, -1), '-frames:v', '1', 'pipe:1'] }));
      return new ProcessCamera(cfg, v4l2Candidates(cfg), () => runStill(still, log), log);
    }
  }
}

/** node-libcamera first (camera.stillVia), then rpicam-still/libcamera-still spawned directly. */
async function rpicamStill(cfg: CameraConfig, log?: Logger): Promise<Buffer> {
  if (cfg.stillVia === 'node-libcamera') {
    const jpeg = await stillViaNodeLibcamera({ width: cfg.stillWidth, height: cfg.stillHeight }, log);
    if (jpeg) return jpeg;
  }
  return runStill(stillCandidates(cfg), log);
}

function resolvePath(baseDir: string, p: string): string {
  return p.startsWith('/') ? p : `${baseDir}/${p}`;
}
