import { workerData } from 'node:worker_threads';
import type { ForwardReaderData, ReadRequest } from './forward-reader.js';
import { readForwardBatch } from './forwarder.js';
import { serveStoreRequests } from './store-thread.js';
import { eventQueue, openStoreConnection } from './store.js';

/**
 * The forward reader's thread (gateway/forward-reader.ts): its own connection to the store
 * file, which it only reads. Each request reads the queue's next batch and encodes its ingest
 * request; the body's memory is moved to the broker's thread with the answer.
 */
const { path, tenant } = workerData as ForwardReaderData;
const db = openStoreConnection(path, {});
const queue = eventQueue(db);
serveStoreRequests(
  db,
  (req: ReadRequest) => ({ batch: readForwardBatch(queue(req.limit + 1, req.after), req.limit, tenant) }),
  ({ batch }) => [batch.request.body.buffer as ArrayBuffer],
);
