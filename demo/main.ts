/**
 * `npm run demo`. Until the terminal, gateway and cloud tiers exist this demo walks through the
 * wire contract they will share, for real: keys are generated, a punch event is sealed for the
 * cloud and signed by a terminal, opened, and then tampered with and replayed to show each
 * refusal. It says what it does not yet show, and exits non-zero if any outcome differs.
 */
import {
  MemorySequenceStore,
  PunchEvent,
  ProtocolError,
  generateKeyPair,
  newMessageId,
  newSubjectId,
  peekHeader,
  sealAndSign,
  topics,
  verifyAndOpen,
  type PublicKeyRef,
} from '../protocol/index.js';

interface Step {
  name: string;
  expected: string;
  actual: string;
  ok: boolean;
}

export async function run(_argv: string[]): Promise<number> {
  const steps: Step[] = [];
  const check = (name: string, expected: string, act: () => string) => {
    let actual: string;
    try {
      actual = act();
    } catch (err) {
      actual = err instanceof ProtocolError ? `refused: ${err.code}` : `crashed: ${(err as Error).message}`;
    }
    const ok = actual === expected;
    steps.push({ name, expected, actual, ok });
    console.log(`${ok ? '✔' : '✘'} ${name.padEnd(46)} ${actual}`);
  };

  console.log('Clockface demo — the wire contract between tiers');
  console.log('(terminal, gateway and cloud services are not built yet: this shows the sealed, signed');
  console.log(' punch event they will exchange, with keys generated just now; no camera, no network)\n');

  const tenant = 'acme';
  const device = 'door-lobby-1';
  const deviceKey = generateKeyPair('ed25519');
  const cloudKey = generateKeyPair('x25519');
  const cloudRecipient: PublicKeyRef = { keyId: cloudKey.keyId, key: cloudKey.publicKey };
  const trusted = (id: string) => (id === deviceKey.keyId ? { keyId: deviceKey.keyId, key: deviceKey.publicKey } : undefined);
  const sequences = new MemorySequenceStore();
  const now = Date.now();

  const event: PunchEvent = {
    type: 'punch',
    eventId: newMessageId(),
    tenant,
    device,
    subject: newSubjectId(),
    credential: 'card+face',
    action: 'access',
    decision: 'granted',
    reasons: [],
    scores: { faceExists: 0.9887, similarity: 0.9672, liveness: 0.93, quality: 0.81 },
    model: 'faceapi-resnet128-v1',
    door: 'lobby',
    time: { wall: now, monotonicMs: performance.now(), clockSync: 'synced' },
    photo: null,
    photoDropped: false,
  };
  const sealed = sealAndSign({ kind: 'event', id: event.eventId, tenant, device, seq: 1, body: event, signer: deviceKey, recipient: cloudRecipient });
  console.log(`topic   ${topics.events(tenant, device)}`);
  console.log(`sealed  ${sealed.length} bytes; the gateway sees only: ${JSON.stringify(peekHeader(sealed))}\n`);

  const open = (bytes: Buffer) =>
    verifyAndOpen(bytes, {
      expect: { kind: 'event', tenant, device },
      signers: trusted,
      recipientKeys: [cloudKey],
      requireSealed: true,
      sequences,
      maxAgeMs: 30 * 86_400_000,
      maxFutureMs: 300_000,
      schema: PunchEvent,
    });

  check('cloud opens the punch', 'granted, similarity 0.9672', () => {
    const { body } = open(sealed);
    return `${body.decision}, similarity ${body.scores.similarity}`;
  });
  check('the same bytes again (replay)', 'refused: envelope.replayed', () => {
    open(sealed);
    return 'accepted';
  });
  const flipped = Buffer.from(sealed);
  flipped.writeUInt8(flipped.readUInt8(flipped.length - 100) ^ 0x01, flipped.length - 100);
  check('one bit flipped in the ciphertext', 'refused: envelope.signature-invalid', () => {
    open(flipped);
    return 'accepted';
  });
  const otherDevice = generateKeyPair('ed25519');
  const forged = sealAndSign({ kind: 'event', id: newMessageId(), tenant, device, seq: 2, body: event, signer: otherDevice, recipient: cloudRecipient });
  check('signed by a key the cloud does not trust', 'refused: envelope.unknown-signer', () => {
    open(forged);
    return 'accepted';
  });
  const wrongCloud = generateKeyPair('x25519');
  const misrouted = sealAndSign({
    kind: 'event', id: newMessageId(), tenant, device, seq: 3, body: event, signer: deviceKey,
    recipient: { keyId: wrongCloud.keyId, key: wrongCloud.publicKey },
  });
  check('sealed to another cloud key', 'refused: envelope.wrong-recipient', () => {
    open(misrouted);
    return 'accepted';
  });
  check('an id with an MQTT wildcard', 'refused: id.invalid', () => topics.events('acme', 'door/#'));

  const failed = steps.filter((s) => !s.ok);
  console.log(`\n${steps.length - failed.length} of ${steps.length} expected outcomes happened.`);
  return failed.length === 0 ? 0 : 1;
}
