/**
 * Child process for the crash test: writes one punch to the outbox (durably), says so on
 * stdout, then waits to be SIGKILLed before anything is published.
 * argv: dbFile dataKeyHex keysJsonFile
 */
import { readFileSync } from 'node:fs';
import { keyPairFromPem, newMessageId, newSubjectId, publicKeyRef } from '../../protocol/index.js';
import { DeviceStore } from '../store.js';
import { EventRecorder } from '../events.js';

const [dbFile, keyHex, keysFile] = process.argv.slice(2) as [string, string, string];
const keys = JSON.parse(readFileSync(keysFile, 'utf8')) as { tenant: string; device: string; signingPem: string; cloudPublic: string };
const store = new DeviceStore(dbFile, Buffer.from(keyHex, 'hex'));
const recorder = new EventRecorder({
  tenant: keys.tenant,
  device: keys.device,
  store,
  signer: keyPairFromPem('ed25519', keys.signingPem),
  cloud: publicKeyRef('x25519', keys.cloudPublic),
  limits: { maxEvents: 100, maxBytes: 10_000_000 },
});
const eventId = newMessageId();
recorder.record({
  type: 'punch', eventId, tenant: keys.tenant, device: keys.device, subject: newSubjectId(), credential: 'card', action: 'access',
  decision: 'granted', reasons: [], scores: { faceExists: null, similarity: null, liveness: null, quality: null }, model: null, door: 'lobby',
  time: { wall: Date.now(), monotonicMs: 1, clockSync: 'synced' }, photo: null, photoDropped: false,
});
process.stdout.write(`queued ${eventId}\n`);
setInterval(() => undefined, 60_000);
