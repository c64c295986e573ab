import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
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
  | {
      op: 'settle';
      answered: Answered;
      outbound: { id: string; device: string; channel: OutboundChannel; expiresAt: number | null }[];
      envelopes: Packed;
      now: number;
    };

export type WriteReply = { ok: true; added?: number[] } | { ok: false; message: string; code?: string };

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
  private readonly worker: Worker;
  /** Requests sent and not yet answered, oldest first (the worker answers in order). */
  private readonly waiting: { resolve: (added: number[]) => void; reject: (err: Error) => void }[] = [];
  private failure: Error | null = null;
  private closed: Promise<void> | null = null;

  constructor(
    private readonly store: GatewayStore,
    opts: { durability?: 'full' | 'normal'; maxBytes?: number } = {},
  ) {
    const data: WriterData = { path: store.path, durability: opts.durability ?? 'full', ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}) };
    this.worker = new Worker(eventWriterWorkerPath(), { workerData: data });
    // Checkpoints happen on the worker's connection, off the broker's thread.
    store.db.pragma('wal_autocheckpoint = 0');
    this.worker.on('message', (reply: WriteReply) => {
      const next = this.waiting.shift();
      if (!next) return;
      if (reply.ok) next.resolve(reply.added ?? []);
      else next.reject(Object.assign(new Error(reply.message), reply.code ? { code: reply.code } : {}));
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`event writer thread exited (code ${code})`)));
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
    const added = await this.send({ op: 'settle', answered, outbound: rows, envelopes: pack(outbound.map((m) => m.envelope)), now });
    return added.map((i) => outbound[i]!);
  }

  private send(request: WriteRequest): Promise<number[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('event writer is closed'));
    return new Promise<number[]>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.worker.postMessage(request, [request.envelopes.bytes]);
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

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = this.closed ? new Error('event writer is closed') : err;
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
  }
}
