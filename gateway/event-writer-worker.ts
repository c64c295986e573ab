import { workerData } from 'node:worker_threads';
import { wipeDeleted } from '../common/wipe.js';
import { unpack, type WriteAnswer, type WriteRequest, type WriterData } from './event-writer.js';
import { serveStoreRequests } from './store-thread.js';
import { deliveryMarker, eventInserter, forwardSettler, openStoreConnection } from './store.js';

/**
 * The event writer's thread (gateway/event-writer.ts): its own connection to the store file,
 * with the store's settings (WAL, synchronous FULL or NORMAL, busy timeout, quota). It runs the
 * group-commit inserts, the forwarded-batch settlements and the batched
 * deliveries (outbound messages the devices PUBACKed) one request at a time, in arrival
 * order, and answers each only after its transaction has committed (and, with FULL, been
 * fsynced); the broker sends the PUBACKs on that answer. It is also the connection that
 * checkpoints the WAL (the store's connection has automatic checkpoints off while a writer is
 * attached), so no checkpoint stalls the broker's thread either, and the one that wipes
 * deleted copies (VACUUM and a checkpoint that truncates the WAL, common/wipe.ts).
 */
const { path, durability, maxBytes } = workerData as WriterData;
const db = openStoreConnection(path, { durability, ...(maxBytes !== undefined ? { maxBytes } : {}) });
const insert = eventInserter(db);
const settle = forwardSettler(db);
const markDelivered = deliveryMarker(db);

function run(req: WriteRequest): WriteAnswer {
  if (req.op === 'delivered') return { channels: markDelivered(req.ids, req.now) };
  if (req.op === 'wipe') return { wipe: wipeDeleted(db) };
  const envelopes = unpack(req.envelopes);
  if (req.op === 'append') {
    const copies = insert(req.ids.map((id, i) => ({ id, device: req.devices[i]!, envelope: envelopes[i]! })), req.now);
    return copies.length ? { copies } : {};
  }
  return { added: settle(req.answered, req.outbound.map((m, i) => ({ ...m, envelope: envelopes[i]! })), req.now) };
}

serveStoreRequests(db, run);
