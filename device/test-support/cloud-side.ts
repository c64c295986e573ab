import mqtt, { type MqttClient } from 'mqtt';
import { DeviceEvent, cardHash, hashPin, newMessageId, publicKeyRef, rawPublicKey, sealAndSign, topics, verifyAndOpen, type KeyPair } from '../../protocol/index.js';
import type { DeviceEventBody } from '../events.js';
import type { TestBroker } from './broker.js';
import { until } from './terminal-process.js';
import { opaqueGroup } from '../../protocol/fixtures.js';

/**
 * The cloud's end of a terminal's link, for tests: a client on the test broker (its peer
 * certificate) that opens and verifies every event with the cloud key, acknowledges it with a
 * signed receipt, records door decisions, and sends signed, sealed commands.
 */
export interface CloudSide {
  /** Every event received, opened and verified, in arrival order. */
  received: DeviceEventBody[];
  doorMessages: Array<{ result: string }>;
  /** The sequence number of the last command sent (send it again to replay). */
  readonly seq: number;
  /** Sends a command (body fields beyond the common ones); returns its id. */
  send(body: Record<string, unknown>, opts?: { seq?: number }): string;
  /** Sends a command and waits for the terminal to report it applied; throws with the reason otherwise. */
  command(body: Record<string, unknown>): Promise<void>;
  /** Waits for the command-result of `commandId`. */
  resultOf(commandId: string): Promise<Extract<DeviceEventBody, { type: 'command-result' }>>;
  close(): Promise<void>;
}

export interface CloudKeys {
  tenant: string;
  device: string;
  admin: KeyPair;
  cloudSealing: KeyPair;
  deviceSigning: KeyPair;
  deviceSealing: KeyPair;
}

export async function connectCloudSide(broker: TestBroker, k: CloudKeys, clientId = 'cloud-side'): Promise<CloudSide> {
  const ref = (key: KeyPair) => publicKeyRef(key.algorithm, rawPublicKey(key.publicKey));
  const client: MqttClient = await mqtt.connectAsync(broker.url, { ca: broker.ca.certPem, cert: broker.peer.certPem, key: broker.peer.keyPem, clientId, reconnectPeriod: 0 });
  await client.subscribeAsync([topics.events(k.tenant, k.device), topics.door(k.tenant, k.device)], { qos: 1 });
  const received: DeviceEventBody[] = [];
  const doorMessages: Array<{ result: string }> = [];
  let seq = 0;
  let receiptSeq = 0;
  client.on('message', (topic, payload) => {
    if (topic.endsWith('/door')) {
      doorMessages.push(JSON.parse(payload.toString()) as { result: string });
      return;
    }
    const { body } = verifyAndOpen(payload, {
      expect: { kind: 'event', tenant: k.tenant, device: k.device },
      signers: (id) => (id === ref(k.deviceSigning).keyId ? ref(k.deviceSigning) : undefined),
      recipientKeys: [k.cloudSealing],
      maxAgeMs: 86_400_000,
      maxFutureMs: 300_000,
      schema: DeviceEvent,
    });
    received.push(body);
    const receipt = sealAndSign({
      kind: 'receipt', id: newMessageId(), tenant: k.tenant, device: k.device, seq: ++receiptSeq, signer: k.admin,
      body: { type: 'ack', tenant: k.tenant, device: k.device, eventIds: [body.eventId], at: Date.now() },
    });
    client.publish(topics.ack(k.tenant, k.device), receipt, { qos: 1 });
  });

  const side: CloudSide = {
    received,
    doorMessages,
    get seq() {
      return seq;
    },
    send(body, opts = {}) {
      const now = Date.now();
      const commandId = newMessageId();
      const envelope = sealAndSign({
        kind: 'command',
        id: commandId,
        tenant: k.tenant,
        device: k.device,
        seq: opts.seq ?? ++seq,
        body: { commandId, tenant: k.tenant, device: k.device, issuedAt: now, expiresAt: now + 60_000, ...body },
        signer: k.admin,
        recipient: ref(k.deviceSealing),
        expiresAt: now + 60_000,
      });
      client.publish(topics.cmd(k.tenant, k.device), envelope, { qos: 1 });
      return commandId;
    },
    async resultOf(commandId) {
      const find = () => received.find((e): e is Extract<DeviceEventBody, { type: 'command-result' }> => e.type === 'command-result' && e.commandId === commandId);
      await until(() => find() !== undefined, `result of command ${commandId}`);
      return find()!;
    },
    async command(body) {
      const r = await side.resultOf(side.send(body));
      if (r.outcome !== 'applied') throw new Error(`${String(body.type)} ${r.outcome}: ${r.reason ?? ''}`);
    },
    async close() {
      await client.endAsync();
    },
  };
  return side;
}

/** An enroll-subject command body as the cloud sends it: card hash with the tenant pepper, optional PIN, reference photo. */
export function enrollCommand(pepper: Buffer, subject: string, card: string, opts: { photo?: Buffer; pin?: string; consent?: boolean } = {}) {
  return {
    type: 'enroll-subject',
    record: {
      subject,
      cardHashes: [cardHash(pepper, card)],
      pinHash: opts.pin ? hashPin(pepper, opts.pin) : null,
      faceConsent: opts.consent ?? true,
      accessGroups: [opaqueGroup('staff')],
      templates: [],
      referencePhotos: opts.photo ? [opts.photo.toString('base64')] : [],
    },
  };
}
