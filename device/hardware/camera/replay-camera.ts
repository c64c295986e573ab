import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { HardwareError } from '../errors.js';
import { CameraBase } from './camera.js';
import { MjpegSplitter } from './mjpeg-splitter.js';

/**
 * The simulation camera: a folder of JPEGs (name order) or one MJPEG file, looped at `fps`.
 * Frames are the files' real bytes, so everything downstream (decoding, face detection) runs
 * on real images. A folder is read again when it changes (a file added, removed or renamed
 * into place): that is how a demo or a test changes who stands in front of the camera.
 */
export class ReplayCamera extends CameraBase {
  private frameList: Buffer[] = [];
  private timer: NodeJS.Timeout | undefined;
  private next = 0;
  private folderStamp = -1;
  private lastCheck = 0;

  constructor(
    private readonly path: string,
    private readonly fps: number,
  ) {
    super();
  }

  async start(): Promise<void> {
    if (this.active) return;
    this.frameList = loadFrames(this.path);
    this.folderStamp = this.stamp();
    this.active = true;
    const tick = (): void => {
      this.reloadIfChanged();
      this.deliver(this.frameList[this.next++ % this.frameList.length]!);
    };
    tick();
    this.timer = setInterval(tick, 1000 / this.fps);
  }

  async stop(): Promise<void> {
    this.active = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.wake();
  }

  /** The replay's stills are its frames: the next one, at the file's own resolution. */
  async captureStill(): Promise<Buffer> {
    if (this.frameList.length === 0) this.frameList = loadFrames(this.path);
    return this.latest?.jpeg ?? this.frameList[0]!;
  }

  /** The folder's modification time (changes when an entry is added, removed or renamed); -1 for a file. */
  private stamp(): number {
    try {
      const st = statSync(this.path);
      return st.isDirectory() ? st.mtimeMs : -1;
    } catch {
      return -1;
    }
  }

  private reloadIfChanged(): void {
    const now = Date.now();
    if (this.folderStamp < 0 || now - this.lastCheck < 100) return;
    this.lastCheck = now;
    const stamp = this.stamp();
    if (stamp === this.folderStamp) return;
    this.folderStamp = stamp;
    try {
      this.frameList = loadFrames(this.path);
      this.next = 0;
    } catch {
      // An empty folder mid-swap: keep showing the previous frames.
    }
  }

  protected sourceName(): string {
    return 'replay';
  }

  protected garbageBytes(): number {
    return 0;
  }
}

export function loadFrames(path: string): Buffer[] {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new HardwareError('camera', `camera: replay source ${path} does not exist`, 'set hardware.camera.replayPath to a folder of .jpg files or an .mjpeg file', 'ENOENT');
  }
  let frames: Buffer[];
  if (isDir) {
    frames = readdirSync(path)
      .filter((f) => ['.jpg', '.jpeg'].includes(extname(f).toLowerCase()))
      .sort()
      .map((f) => readFileSync(join(path, f)))
      .filter((b) => b[0] === 0xff && b[1] === 0xd8);
  } else {
    frames = [];
    const splitter = new MjpegSplitter((jpeg) => frames.push(jpeg));
    splitter.push(readFileSync(path));
  }
  if (frames.length === 0) {
    throw new HardwareError('camera', `camera: replay source ${path} holds no JPEG frames`, 'put .jpg files in the folder (or point replayPath at an MJPEG file)', 'ENODATA');
  }
  return frames;
}
