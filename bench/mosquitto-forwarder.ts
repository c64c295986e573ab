import { readFileSync } from 'node:fs';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { CloudClient, type IngestEvent } from '../gateway/cloud-client.js';
import { readEventHeader } from '../gateway/event-header.js';
import { topics } from '../protocol/index.js';

/**
 * The bench's store-and-forward client for Mosquitto (a process of its own, so the bench can
 * charge its CPU together with Mosquitto's): the way one would give Mosquitto the gateway's
 * job. A persistent session (clean: false, fixed client id, so Mosquitto keeps what it has not
 * delivered) subscribed with QoS 1 to every terminal's events topic; received events are
 * batched (at most `batchSize`, one request at a time, like gateway/forwarder.ts) into POSTs to
 * the ingest endpoint through the gateway's own CloudClient, and each event is PUBACKed to
 * Mosquitto only after the ingest answered for it, so an event leaves Mosquitto's keeping only
 * once it is at the ingest. The receipts in the answer go to the devices' ack topics (QoS 1),
 * as the gateway relays them.
 *
 * mqtt.js has no manual-ack mode that keeps reading: its ack hook (`customHandleAcks`, MQTT 5
 * only) holds the client's packet pump until the ack is given, so a batch could never hold
 * more than one event. Instead the PUBACK mqtt.js writes after each message is kept back
 * (its own callback still runs, so reading goes on) and written once the ingest answered.
 * MQTT 5 with a Receive Maximum of two batches lets Mosquitto keep that many events in flight
 * to us without changing Mosquitto's configuration (for 3.1.1 clients its default is 20).
 *
 * argv[2]: JSON { port, caFile, certFile, keyFile, tenant, ingestUrl, token, batchSize }.
 * Prints "ready" on stdout once subscribed.
 */
interface Options {
  port: number;
  caFile: string;
  certFile: string;
  keyFile: string;
  tenant: string;
  ingestUrl: string;
  token: string;
  batchSize: number;
}

const opts = JSON.parse(process.argv[2] ?? '') as Options;
const cloud = new CloudClient({ url: opts.ingestUrl, token: opts.token });

interface Received extends IngestEvent {
  messageId: number;
}

const client: MqttClient = mqtt.connect({
  protocol: 'mqtts',
  host: '127.0.0.1',
  port: opts.port,
  ca: readFileSync(opts.caFile),
  cert: readFileSync(opts.certFile),
  key: readFileSync(opts.keyFile),
  protocolVersion: 5,
  clientId: 'cf-bench-forwarder',
  clean: false,
  // MQTT 5 ends a session at disconnect unless it has an expiry: keep it like a 3.1.1 one.
  properties: { sessionExpiryInterval: 0xffffffff, receiveMaximum: opts.batchSize * 2 },
  // A dropped connection ends the run (the held PUBACKs belong to that connection).
  reconnectPeriod: 0,
});

type SendPacket = (packet: { cmd: string; messageId?: number; reasonCode?: number }, cb?: (err?: Error) => void, ...rest: unknown[]) => void;
const internals = client as unknown as { _sendPacket: SendPacket };
const sendPacket = internals._sendPacket.bind(client);
internals._sendPacket = (packet, cb, ...rest) => {
  // Keep back the PUBACK of a received event (held below until the ingest answers).
  if (packet.cmd === 'puback' && packet.messageId !== undefined && held.has(packet.messageId)) {
    cb?.();
    return;
  }
  sendPacket(packet, cb, ...rest);
};

const held = new Set<number>();
let pending: Received[] = [];
let sending = false;
let stopping = false;

client.on('message', (topic: string, payload: Buffer, packet: IPublishPacket) => {
  if (packet.qos !== 1 || packet.messageId === undefined) return;
  let header;
  try {
    header = readEventHeader(payload);
  } catch {
    return; // not an event: PUBACKed by mqtt.js as usual, nothing to forward
  }
  held.add(packet.messageId);
  pending.push({ id: header.id, tenant: opts.tenant, device: header.device, envelope: payload, messageId: packet.messageId });
  void forward();
});

/** One batch in flight at a time; what arrives meanwhile makes the next batch. */
async function forward(): Promise<void> {
  if (sending) return;
  sending = true;
  try {
    while (pending.length) {
      const batch = pending.slice(0, opts.batchSize);
      try {
        const answer = await cloud.ingest(batch);
        const answered = new Set(answer.results.map((r) => r.id));
        // Unanswered events (none with this ingest) stay first in line and go again.
        pending = [...batch.filter((e) => !answered.has(e.id)), ...pending.slice(batch.length)];
        for (const e of batch) {
          if (!answered.has(e.id)) continue;
          held.delete(e.messageId);
          sendPacket({ cmd: 'puback', messageId: e.messageId, reasonCode: 0 });
        }
        for (const r of answer.receipts) client.publish(topics.ack(r.tenant, r.device), Buffer.from(r.envelope, 'base64'), { qos: 1 });
      } catch (err) {
        // Same batch again after a pause; the events stay un-PUBACKed at Mosquitto meanwhile.
        process.stderr.write(`forwarder: ingest failed: ${err instanceof Error ? err.message : String(err)}\n`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    sending = false;
  }
}

client.on('connect', () => {
  client.subscribe(topics.tenantWildcard(opts.tenant, 'events'), { qos: 1 }, (err) => {
    if (err) {
      process.stderr.write(`forwarder: subscribe failed: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write('ready\n');
  });
});
client.on('error', (err) => process.stderr.write(`forwarder: ${err.message}\n`));
client.on('close', () => {
  if (!stopping) {
    process.stderr.write('forwarder: connection to mosquitto closed\n');
    process.exit(1);
  }
});
process.on('SIGTERM', () => {
  stopping = true;
  client.end(true, () => {
    cloud.close();
    process.exit(0);
  });
});
