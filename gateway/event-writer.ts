import type { Worker } from 'node:worker_threads';
import type { WipeOutcome } from '../common/wipe.js';
import { StoreThread, type StoreThreadOptions } from './store-thread.js';
import type { Answered, EventCopy, EventRow, GatewayStore, OutboundChannel, OutboundRow } from './store.js';

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
 * If the thread dies, every request sent to it is refused (gateway/store-thread.ts) — whether
 * or not its transaction committed, nobody was told it did, so no PUBACK went out and the
 * terminals resend; the inserts are idempotent by event id, so a group that did commit is
 * stored once — and a new thread is started for what comes next.
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
    }
  | { op: 'wipe'; envelopes: Packed };

export type WriteAnswer = { added?: number[]; channels?: (OutboundChannel | null)[]; copies?: EventCopy[]; wipe?: WipeOutcome };

/** The writer's own settings, and its thread's (log, restarts allowed, what to do on giving up). */
export interface EventWriterOptions extends Omit<StoreThreadOptions, 'name'> {
  durability?: 'full' | 'normal';
  maxBytes?: number;
}

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

export class EventWriter {
  private readonly writer: StoreThread<WriteRequest, WriteAnswer>;

  constructor(
    private readonly store: GatewayStore,
    { durability = 'full', maxBytes, ...thread }: EventWriterOptions = {},
  ) {
    const data: WriterData = { path: store.path, durability, ...(maxBytes !== undefined ? { maxBytes } : {}) };
    this.writer = new StoreThread('event-writer-worker.js', data, { name: 'event writer', ...thread });
    // Checkpoints happen on the worker's connection, off the broker's thread.
    store.db.pragma('wal_autocheckpoint = 0');
  }

  /** The current thread (for tests that make it die). */
  get thread(): Worker {
    return this.writer.thread;
  }

  /** How many times the thread was replaced after dying. */
  get restarts(): number {
    return this.writer.restarts;
  }

  /**
   * Resolves once the events are committed (fsynced with durability "full"), with the second
   * copies it queued (gateway/store.ts eventInserter); rejects if not committed.
   */
  async append(events: readonly EventRow[], now = Date.now()): Promise<EventCopy[]> {
    const { copies = [] } = await this.send({ op: 'append', ids: events.map((e) => e.id), devices: events.map((e) => e.device), envelopes: pack(events.map((e) => e.envelope)), now });
    return copies;
  }

  /**
   * Drops forwarded events the cloud answered for and keeps its receipts, in one transaction
   * (gateway/store.ts forwardSettler); resolves with the outbound rows that were new.
   */
  async settle(answered: Answered, outbound: readonly OutboundRow[], now = Date.now()): Promise<OutboundRow[]> {
    const rows = outbound.map(({ id, device, channel, expiresAt }) => ({ id, device, channel, expiresAt }));
    const { added = [] } = await this.send({ op: 'settle', answered, outbound: rows, envelopes: pack(outbound.map((m) => m.envelope)), now });
    return added.map((i) => outbound[i]!);
  }

  /**
   * Devices PUBACKed these outbound messages: forgets them (and records command deliveries for
   * the cloud) in one transaction, like GatewayStore.markDelivered; resolves with each one's
   * channel, or null for one no longer stored.
   */
  async delivered(ids: readonly string[], now = Date.now()): Promise<(OutboundChannel | null)[]> {
    return (await this.send({ op: 'delivered', ids: [...ids], now, envelopes: EMPTY })).channels ?? [];
  }

  /**
   * Wipes what was deleted so far from the file, its free pages and the WAL (common/wipe.ts:
   * VACUUM, then a checkpoint that truncates the WAL) on the writer's thread: the broker's
   * thread never waits for it, group commits queue behind it.
   */
  async wipe(): Promise<WipeOutcome> {
    const { wipe } = await this.send({ op: 'wipe', envelopes: EMPTY });
    return wipe!;
  }

  private send(request: WriteRequest): Promise<WriteAnswer> {
    return this.writer.send(request, request.envelopes.bytes.byteLength ? [request.envelopes.bytes] : []);
  }

  /** Lets the requests already sent finish, then closes the worker's connection and the thread. */
  async close(): Promise<void> {
    await this.writer.close();
    if (this.store.db.open) this.store.db.pragma('wal_autocheckpoint = 1000');
  }
}
