import { randomBytes } from 'node:crypto';
import {
  PunchEvent,
  generateKeyPair,
  newMessageId,
  sealAndSign,
  verifyAndOpen,
  type KeyPair,
} from '../protocol/index.js';
import { opsPerSecond } from './measure.js';

/** seal+sign and verify+open rates for a ~300-byte punch event and a 40 KB photo event. */
export async function run(): Promise<Record<string, unknown>> {
  const deviceKey = generateKeyPair('ed25519');
  const cloudKey = generateKeyPair('x25519');
  const small = punch(null);
  const photo = punch(fakeJpeg(40 * 1024));
  return {
    smallEvent: measure(small, deviceKey, cloudKey),
    photoEvent40k: measure(photo, deviceKey, cloudKey),
    targetSmallPerSecond: 5000,
  };
}

function measure(event: PunchEvent, deviceKey: KeyPair, cloudKey: KeyPair) {
  const recipient = { keyId: cloudKey.keyId, key: cloudKey.publicKey };
  const seal = (seq: number) =>
    sealAndSign({ kind: 'event', id: event.eventId, tenant: event.tenant, device: event.device, seq: seq + 1, body: event, signer: deviceKey, recipient });
  const sample = seal(0);
  const pool = Array.from({ length: 64 }, (_, i) => seal(i));
  const signer = { keyId: deviceKey.keyId, key: deviceKey.publicKey };
  const open = (i: number) =>
    verifyAndOpen(pool[i % pool.length]!, {
      expect: { kind: 'event', tenant: event.tenant, device: event.device },
      signers: () => signer,
      recipientKeys: [cloudKey],
      requireSealed: true,
      maxAgeMs: 86_400_000,
      maxFutureMs: 300_000,
      schema: PunchEvent,
    });
  return {
    plaintextBytes: Buffer.byteLength(JSON.stringify(event)),
    envelopeBytes: sample.length,
    sealAndSignPerSecond: opsPerSecond((i) => seal(i)),
    verifyAndOpenPerSecond: opsPerSecond(open),
  };
}

function punch(photo: Buffer | null): PunchEvent {
  return {
    type: 'punch',
    eventId: newMessageId(),
    tenant: 'acme',
    device: 'door-lobby-1',
    subject: 's-abcdefghijklmnopqrst',
    credential: 'card+face',
    action: 'access',
    decision: 'granted',
    reasons: [],
    scores: { faceExists: 0.9887, similarity: 0.9672, liveness: 0.93, quality: 0.81 },
    model: 'faceapi-resnet128-v1',
    door: 'lobby',
    time: { wall: Date.now(), monotonicMs: 123456.789, clockSync: 'synced' },
    photo: photo ? photo.toString('base64') : null,
    photoDropped: false,
  };
}

/** Random bytes behind a JPEG start-of-image marker: the size of a real photo, for crypto cost. */
function fakeJpeg(bytes: number): Buffer {
  const buf = randomBytes(bytes);
  buf[0] = 0xff;
  buf[1] = 0xd8;
  buf[2] = 0xff;
  return buf;
}
