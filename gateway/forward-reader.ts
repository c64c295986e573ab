import type { Worker } from 'node:worker_threads';
import type { ForwardBatch } from './forwarder.js';
import type { GatewayStore } from './store.js';
import { StoreThread, type StoreThreadOptions } from './store-thread.js';

/**
 * The forwarder's reads off the broker's thread: each batch is read from the queue and its
 * ingest request encoded (base64, JSON framing) on a thread with its own connection to the
 * store file (gateway/forward-reader-worker.ts), and the encoded body is moved back without a
 * copy. On the broker's event loop a batch of punch photos (16 MiB of request, ~200 events of
 * 80 KB) held every TLS read, parse and PUBACK for 35-50 ms; on the event writer's thread it
 * would hold the next group commit instead. The reader only reads: the writer's commits and
 * these reads go on side by side (WAL).
 *
 * If the thread dies the read is refused and a new thread started (gateway/store-thread.ts);
 * nothing was sent, so the forwarder reads again: at once for a batch it was reading ahead,
 * after a pause for the queue's head.
 */
export interface ForwardReaderData {
  path: string;
  tenant: string;
}

export type ReadRequest = { op: 'batch'; limit: number; after: number };

export class ForwardReader {
  private readonly reader: StoreThread<ReadRequest, { batch: ForwardBatch }>;

  constructor(store: GatewayStore, tenant: string, opts: Omit<StoreThreadOptions, 'name'> = {}) {
    const data: ForwardReaderData = { path: store.path, tenant };
    this.reader = new StoreThread('forward-reader-worker.js', data, { name: 'forward reader', ...opts });
  }

  /** The current thread (for tests that make it die). */
  get thread(): Worker {
    return this.reader.thread;
  }

  /** The queued events after seq `after` (0: from the head), at most `limit`, encoded. */
  async next(limit: number, after = 0): Promise<ForwardBatch> {
    const { batch } = await this.reader.send({ op: 'batch', limit, after });
    // A Buffer arrives as a plain Uint8Array over the same (moved) memory.
    const { body } = batch.request;
    batch.request.body = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    return batch;
  }

  close(): Promise<void> {
    return this.reader.close();
  }
}
