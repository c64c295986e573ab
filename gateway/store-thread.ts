import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parentPort, Worker } from 'node:worker_threads';
import type { Logger } from '../common/log.js';

/**
 * A worker thread with its own connection to the store file, so that SQLite work blocks it and
 * not the broker's event loop: the event writer (gateway/event-writer.ts) and the forwarder's
 * batch reader (gateway/forward-reader.ts) each run one. The thread answers requests one at a
 * time in the order they were sent.
 *
 * If the thread dies (an uncaught error, a crash in native code, terminate()), every request
 * sent to it is refused — whether or not its transaction committed, nobody was told it did —
 * and a new thread is started for what comes next. A thread that keeps dying (more than
 * `maxRestarts` within a minute: the file cannot be opened, a broken build) is not restarted
 * again: `onFatal` runs, and the gateway logs a fatal line and exits non-zero so systemd
 * (Restart=on-failure) starts it afresh with its queue on disk.
 *
 * Node 20 cannot run a .ts file as a worker, so the worker is always the compiled file in
 * dist/gateway/: next to this file when running from dist, and in the repository's dist/ when
 * this file runs from source (vitest). Tests therefore need a build
 * (`npx tsc -p tsconfig.build.json`; `npm test` builds before vitest).
 */
export type StoreReply<T> = ({ ok: true } & T) | { ok: false; message: string; code?: string };

export interface StoreThreadOptions {
  /** For logs and errors: "event writer", "forward reader". */
  name: string;
  log?: Logger;
  /** Restarts allowed within a minute before the thread is given up (default 3). */
  maxRestarts?: number;
  /** The thread keeps dying: called once; every later request is refused. */
  onFatal?: (err: Error) => void;
}

/** Where the compiled worker file (e.g. "event-writer-worker.js") is. */
export function storeWorkerPath(file: string): string {
  const here = import.meta.url;
  const url = here.endsWith('.ts') ? new URL(`../dist/gateway/${file}`, here) : new URL(`./${file}`, here);
  const path = fileURLToPath(url);
  if (!existsSync(path)) throw new Error(`${file} not found at ${path}: build dist first (npx tsc -p tsconfig.build.json)`);
  return path;
}

export class StoreThread<Request, Answer> {
  private worker: Worker;
  /** Requests sent to the current thread and not yet answered, oldest first. */
  private waiting: { resolve: (answer: Answer) => void; reject: (err: Error) => void }[] = [];
  private failure: Error | null = null;
  private closed: Promise<void> | null = null;
  private readonly path: string;
  private readonly deaths: number[] = [];
  /** How many times the thread was replaced after dying. */
  restarts = 0;

  constructor(
    file: string,
    private readonly data: unknown,
    private readonly opts: StoreThreadOptions,
  ) {
    this.path = storeWorkerPath(file);
    this.worker = this.spawn();
  }

  /** The current thread (for tests that make it die). */
  get thread(): Worker {
    return this.worker;
  }

  /** Sends a request (moving `transfer` to the thread); resolves with its answer. */
  send(request: Request, transfer: ArrayBuffer[] = []): Promise<Answer> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error(`${this.opts.name} is closed`));
    return new Promise<Answer>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.worker.postMessage(request, transfer);
    });
  }

  /** Lets the requests already sent finish, then closes the thread's connection and the thread. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.failure) return;
      const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
      this.worker.postMessage('close');
      await exited;
    })();
    return this.closed;
  }

  private spawn(): Worker {
    const worker = new Worker(this.path, { workerData: this.data });
    worker.on('message', (reply: StoreReply<Answer>) => {
      if (worker !== this.worker) return;
      const next = this.waiting.shift();
      if (!next) return;
      if (reply.ok) next.resolve(reply as Answer);
      else next.reject(Object.assign(new Error(reply.message), reply.code ? { code: reply.code } : {}));
    });
    // 'error' (an uncaught exception in the thread) is followed by 'exit': the first one counts.
    worker.on('error', (err) => this.died(worker, err));
    worker.on('exit', (code) => this.died(worker, new Error(`${this.opts.name} thread exited (code ${code})`)));
    return worker;
  }

  private died(worker: Worker, err: Error): void {
    if (worker !== this.worker || this.failure) return;
    const pending = this.waiting;
    this.waiting = [];
    const { name, log } = this.opts;
    if (this.closed) {
      this.failure = new Error(`${name} is closed`);
      for (const w of pending) w.reject(this.failure);
      return;
    }
    const refused = new Error(`${name} thread died (${err.message}); not done`);
    for (const w of pending) w.reject(refused);
    const now = Date.now();
    this.deaths.push(now);
    while (this.deaths.length && this.deaths[0]! < now - 60_000) this.deaths.shift();
    if (this.deaths.length > (this.opts.maxRestarts ?? 3)) {
      this.failure = new Error(`${name} thread keeps dying (${this.deaths.length} times within a minute; last: ${err.message})`);
      log?.fatal({ err: { message: err.message } }, `${name} thread keeps dying: giving up`);
      this.opts.onFatal?.(this.failure);
      return;
    }
    log?.error({ err: { message: err.message }, refused: pending.length }, `${name} thread died: its pending requests are refused; starting a new one`);
    this.restarts++;
    this.worker = this.spawn();
  }
}

/**
 * The thread's side: answers each request, in order, with what `handle` returns (moving the
 * buffers `transfer` names) or with the error it threw; "close" closes the connection and lets
 * the thread end.
 */
export function serveStoreRequests<Request, Answer extends object>(
  db: { close(): unknown },
  handle: (request: Request) => Answer,
  transfer: (answer: Answer) => ArrayBuffer[] = () => [],
): void {
  const port = parentPort;
  if (!port) throw new Error('a store worker runs as a worker thread only');
  port.on('message', (request: Request | 'close') => {
    if (request === 'close') {
      db.close();
      port.close();
      return;
    }
    let reply: StoreReply<Answer>;
    let moved: ArrayBuffer[] = [];
    try {
      const answer = handle(request);
      reply = { ok: true, ...answer };
      moved = transfer(answer);
    } catch (err) {
      const e = err as Error & { code?: unknown };
      reply = { ok: false, message: e.message, ...(typeof e.code === 'string' ? { code: e.code } : {}) };
    }
    port.postMessage(reply, moved);
  });
}
