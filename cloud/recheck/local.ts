import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from '../../common/log.js';
import { EngineError, type DetectedFace, type FaceBox, type RecheckEngine } from './engine.js';

/**
 * The on-premises engine: the project's own face worker (`clockface face serve`) as a child
 * process speaking JSON lines (docs/PROTOCOL.md, "Face worker"). Requests are matched to
 * answers by id; if the worker dies, pending calls fail as retryable and the next call
 * starts a fresh worker.
 */
interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
}

export class LocalFaceEngine implements RecheckEngine {
  readonly name = 'local';
  private child: ChildProcessWithoutNullStreams | undefined;
  private ready: Promise<void> | undefined;
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  model: string | null = null;

  constructor(private readonly command: string[], private readonly log?: Logger, private readonly readyTimeoutMs = 120_000) {}

  private start(): Promise<void> {
    if (this.ready) return this.ready;
    const [cmd, ...args] = this.command;
    const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr.resume();
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new EngineError('face worker did not become ready in time', true)), this.readyTimeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new EngineError(`face worker could not start: ${err.message}`, true));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new EngineError(`face worker exited (${code}) before it was ready`, true));
        this.fail(new EngineError(`face worker exited (${code})`, true));
      });
      createInterface({ input: child.stdout }).on('line', (line) => {
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return; // not a protocol line
        }
        if (msg.ready === true) {
          clearTimeout(timer);
          this.model = typeof msg.model === 'string' ? msg.model : null;
          this.log?.info({ model: this.model, backend: msg.backend }, 'face worker ready');
          resolve();
          return;
        }
        const p = this.pending.get(String(msg.id));
        if (!p) return;
        this.pending.delete(String(msg.id));
        if (msg.ok === true) p.resolve(msg);
        else p.reject(new EngineError(`face worker: ${String(msg.error ?? 'failed')}`, false));
      });
    });
    this.ready.catch(() => {
      this.ready = undefined;
      this.child = undefined;
    });
    return this.ready;
  }

  private fail(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.ready = undefined;
    this.child = undefined;
  }

  private async request(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    await this.start();
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child!.stdin.write(`${JSON.stringify({ id, ...body })}\n`);
    });
  }

  async detectFaces(jpeg: Buffer): Promise<{ faces: DetectedFace[] }> {
    const r = await this.request({ op: 'detect', image: jpeg.toString('base64') });
    const faces = Array.isArray(r.faces) ? (r.faces as Array<{ confidence?: unknown; box?: Partial<FaceBox> }>) : [];
    return {
      faces: faces.map((f) => ({
        confidence: typeof f.confidence === 'number' ? f.confidence : 0,
        ...(f.box && typeof f.box.left === 'number' ? { box: f.box as FaceBox } : {}),
      })),
    };
  }

  async compareFaces(source: Buffer, target: Buffer): Promise<{ similarity: number | null }> {
    const r = await this.request({ op: 'compare', source: source.toString('base64'), target: target.toString('base64') });
    return { similarity: typeof r.similarity === 'number' ? r.similarity : null };
  }

  async close(): Promise<void> {
    const child = this.child;
    this.fail(new EngineError('face engine closed', true));
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.stdin.end();
      setTimeout(() => child.kill('SIGTERM'), 2000).unref();
    });
  }
}
