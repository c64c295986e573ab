import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../common/log.js';
import type { Answered, EventRow, GatewayStore, OutboundChannel, OutboundRow } from './store.js';

/**
 * Durable event writes off the broker's thread: the group-commit appends and, after each
 * forwarded batch, the delete of what the cloud answered for plus its receipts. SQLite's commit (with synchronous=FULL, an
 * fsync of the WAL) blocks the thread that runs it; on the broker's event loop that stalled
 * every TLS read, parse and PUBACK for the length of each fsync. So the group-commit inserts
 * run on a worker thread with its own connection to the same store file
 * (gateway/event-writer-worker.ts), and append() resolves only when the worker reports the
 * transaction committed: what "PUBACK means on disk" promises is unchanged, the wait just no
 * longer blocks the thread.
 *
 * Two connections write to one WAL file: the worker's inserts take the write lock up front
 * (BEGIN IMMEDIATE), and so do the store's own write transactions (deletes after forwarding,
 * outbound messages, presence), which wait for the worker's commit under busy_timeout. While a
 * writer is attached the store's connection does no automatic checkpoints; the worker's does.
 *
 * If the thread dies (an uncaught error, a crash in native code, terminate()), every request
 * sent to it is refused — whether or not its transaction committed, nobody was told it did, so
 * no PUBACK went out and the terminals resend; the inserts are idempotent by event id, so a
 * group that did commit is stored once — and a new thread is started for what comes next. A
 * thread that keeps dying (more than `maxRestarts` within a minute: the file cannot be opened,
 * a broken build) is not restarted again: `onFatal` runs, and the gateway logs a fatal line and
 * exits non-zero so systemd (Restart=on-failure) starts it afresh with its queue on disk.
 *
 * Node 20 cannot run a .ts file as a worker, so the worker is always the compiled
 * dist/gateway/event-writer-worker.js: next to this file when running from dist, and in the
 * repository's dist/ when this file runs from source (vitest). Tests therefore need a build
 * (`npx tsc -p tsconfig.build.json`; `npm test` builds before vitest).
 */
export interface WriterData {
  path: string;
  durability: 'full' | 'normal';
  maxBytes?: number;
}

/** Envelopes back to back in one transferred buffer (instead of one structured clone each). */
export interface Packed {
  bytes: ArrayBuffer;
  lengths: number[];
}

export type WriteRequest =
  | { op: 'append'; ids: string[]; devices: string[]; envelopes: Packed; now: number }
  | { op: 'delivered'; ids: string[]; now: number; envelopes: Packed }
  | {
      op: 'settle';
      answered: Answered;
      outbound: { id: string; device: string; channel: OutboundChannel; expiresAt: number | null }[];
      envelopes: Packed;
      now: number;
    };

export type WriteReply = { ok: true; added?: number[]; channels?: (OutboundChannel | null)[] } | { ok: false; message: string; code?: string };

export interface EventWriterOptions {
  durability?: 'full' | 'normal';
  maxBytes?: number;
  log?: Logger;
  /** Restarts allowed within a minute before the writer gives up (default 3). */
  maxRestarts?: number;
  /** The thread keeps dying: called once; every later write is refused. */
  onFatal?: (err: Error) => void;
}

type Answer = { added: number[]; channels: (OutboundChannel | null)[] };
const EMPTY: Packed = { bytes: new ArrayBuffer(0), lengths: [] };

export function pack(envelopes: readonly Buffer[]): Packed {
  let total = 0;
  for (const e of envelopes) total += e.length;
  const bytes = new Uint8Array(total);
  const lengths: number[] = [];
  let offset = 0;
  for (const e of envelopes) {
    bytes.set(e, offset);
    offset += e.length;
    lengths.push(e.length);
  }
  return { bytes: bytes.buffer, lengths };
}

export function unpack(packed: Packed): Buffer[] {
  const all = Buffer.from(packed.bytes);
  const out: Buffer[] = [];
  let offset = 0;
  for (const length of packed.lengths) {
    out.push(all.subarray(offset, offset + length));
    offset += length;
  }
  return out;
}

export function eventWriterWorkerPath(): string {
  const here = import.meta.url;
  const url = here.endsWith('.ts') ? new URL('../dist/gateway/event-writer-worker.js', here) : new URL('./event-writer-worker.js', here);
  const path = fileURLToPath(url);
  if (!existsSync(path)) throw new Error(`event writer worker not found at ${path}: build dist first (npx tsc -p tsconfig.build.json)`);
  return path;
}

export class EventWriter {
  private worker: Worker;
  /** Requests sent to the current thread and not yet answered, oldest first (it answers in order). */
  private waiting: { resolve: (answer: Answer) => void; reject: (err: Error) => void }[] = [];
  private failure: Error | null = null;
  private closed: Promise<void> | null = null;
  private readonly data: WriterData;
  private readonly deaths: number[] = [];
  /** How many times the thread was replaced after dying. */
  restarts = 0;

  constructor(
    private readonly store: GatewayStore,
    private readonly opts: EventWriterOptions = {},
  ) {
    this.data = { path: store.path, durability: opts.durability ?? 'full', ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}) };
    this.worker = this.spawn();
    // Checkpoints happen on the worker's connection, off the broker's thread.
    store.db.pragma('wal_autocheckpoint = 0');
  }

  /** The current thread (for tests that make it die). */
  get thread(): Worker {
    return this.worker;
  }

  /** Resolves once the events are committed (fsynced with durability "full"); rejects if not. */
  async append(events: readonly EventRow[], now = Date.now()): Promise<void> {
    await this.send({ op: 'append', ids: events.map((e) => e.id), devices: events.map((e) => e.device), envelopes: pack(events.map((e) => e.envelope)), now });
  }

  /**
   * Drops forwarded events the cloud answered for and keeps its receipts, in one transaction
   * (gateway/store.ts forwardSettler); resolves with the outbound rows that were new.
   */
  async settle(answered: Answered, outbound: readonly OutboundRow[], now = Date.now()): Promise<OutboundRow[]> {
    const rows = outbound.map(({ id, device, channel, expiresAt }) => ({ id, device, channel, expiresAt }));
    const { added } = await this.send({ op: 'settle', answered, outbound: rows, envelopes: pack(outbound.map((m) => m.envelope)), now });
    return added.map((i) => outbound[i]!);
  }

  /**
   * Devices PUBACKed these outbound messages: forgets them (and records command deliveries for
   * the cloud) in one transaction, like GatewayStore.markDelivered; resolves with each one's
   * channel, or null for one no longer stored.
   */
  async delivered(ids: readonly string[], now = Date.now()): Promise<(OutboundChannel | null)[]> {
    return (await this.send({ op: 'delivered', ids: [...ids], now, envelopes: EMPTY })).channels;
  }

  private send(request: WriteRequest): Promise<Answer> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('event writer is closed'));
    return new Promise<Answer>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.worker.postMessage(request, request.envelopes.bytes.byteLength ? [request.envelopes.bytes] : []);
    });
  }

  /** Lets the requests already sent finish, then closes the worker's connection and the thread. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (!this.failure) {
        const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
        this.worker.postMessage('close');
        await exited;
      }
      if (this.store.db.open) this.store.db.pragma('wal_autocheckpoint = 1000');
    })();
    return this.closed;
  }

  private spawn(): Worker {
    const worker = new Worker(eventWriterWorkerPath(), { workerData: this.data });
    worker.on('message', (reply: WriteReply) => {
      if (worker !== this.worker) return;
      const next = this.waiting.shift();
      if (!next) return;
      if (reply.ok) next.resolve({ added: reply.added ?? [], channels: reply.channels ?? [] });
      else next.reject(Object.assign(new Error(reply.message), reply.code ? { code: reply.code } : {}));
    });
    // 'error' (an uncaught exception in the thread) is followed by 'exit': the first one counts.
    worker.on('error', (err) => this.died(worker, err));
    worker.on('exit', (code) => this.died(worker, new Error(`event writer thread exited (code ${code})`)));
    return worker;
  }

  private died(worker: Worker, err: Error): void {
    if (worker !== this.worker || this.failure) return;
    const pending = this.waiting;
    this.waiting = [];
    if (this.closed) {
      this.failure = new Error('event writer is closed');
      for (const w of pending) w.reject(this.failure);
      return;
    }
    // Nothing sent to the dead thread was confirmed, so none of it was acknowledged to anyone.
    const refused = new Error(`event writer thread died (${err.message}); not written`);
    for (const w of pending) w.reject(refused);
    const now = Date.now();
    this.deaths.push(now);
    while (this.deaths.length && this.deaths[0]! < now - 60_000) this.deaths.shift();
    if (this.deaths.length > (this.opts.maxRestarts ?? 3)) {
      this.failure = new Error(`event writer thread keeps dying (${this.deaths.length} times within a minute; last: ${err.message})`);
      this.opts.log?.fatal({ err: { message: err.message } }, 'event writer thread keeps dying: giving up');
      this.opts.onFatal?.(this.failure);
      return;
    }
    this.opts.log?.error({ err: { message: err.message }, refused: pending.length }, 'event writer thread died: its pending writes are refused without PUBACK; starting a new one');
    this.restarts++;
    this.worker = this.spawn();
  }
}
