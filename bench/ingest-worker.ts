import { parentPort, workerData } from 'node:worker_threads';
import { generateKeyPair } from '../protocol/index.js';
import { StandInCloud } from '../gateway/testing/stand-in-cloud.js';

/**
 * The bench's local ingest endpoint (the stand-in cloud over loopback HTTP) on its own thread,
 * so its JSON parsing and receipt signing do not slow the load generator's event loop — bare
 * Mosquitto has no ingest endpoint, and the comparison should not charge it to the terminals.
 * The gateway and Mosquitto + forwarder runs each get one. It still shares the machine's cores
 * with everything else.
 */
const { tenant, token } = workerData as { tenant: string; token: string };
const cloud = new StandInCloud({ tenant, token, adminKey: generateKeyPair('ed25519'), keepEvents: false });
const port = parentPort!;
port.on('message', (m: { op: 'stats' | 'ids' | 'stop' }) => {
  if (m.op === 'stats') port.postMessage({ stored: cloud.storedCount, duplicates: cloud.duplicates, ingestCalls: cloud.ingestCalls });
  else if (m.op === 'ids') port.postMessage({ ids: cloud.storedIds() });
  else void cloud.stop().then(() => port.postMessage({ stopped: true }));
});
void cloud.start().then((url) => port.postMessage({ url }));
