import type { Duplex } from 'node:stream';

/**
 * Answers a connection refused at the TLS stage the way MQTT clients understand: it waits for
 * the client's CONNECT, replies CONNACK "not authorized" in the client's protocol version and
 * closes. Without it the client sees only a closed socket ("connection lost") and cannot tell a
 * refused certificate from a network fault. Nothing of the connection reaches aedes: only the
 * first bytes are read, to find the protocol level, and at most `MAX_PEEK` of them.
 */
const MAX_PEEK = 32;
/** MQTT 3.1 / 3.1.1: CONNACK, remaining length 2, no session present, return code 5. */
const CONNACK_V3_NOT_AUTHORIZED = Buffer.from([0x20, 0x02, 0x00, 0x05]);
/** MQTT 5: CONNACK, remaining length 3, no session present, reason 0x87 "not authorized", no properties. */
const CONNACK_V5_NOT_AUTHORIZED = Buffer.from([0x20, 0x03, 0x00, 0x87, 0x00]);

export function refuseWithConnack(socket: Duplex, waitMs = 5_000): void {
  let seen = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), waitMs);
  const finish = (answer: Buffer | null) => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.pause();
    if (answer) socket.end(answer, () => socket.destroy());
    else socket.destroy();
  };
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk.subarray(0, MAX_PEEK - seen.length)]);
    const level = connectProtocolLevel(seen);
    if (level === undefined && seen.length < MAX_PEEK) return;
    finish(level === null || level === undefined ? null : level >= 5 ? CONNACK_V5_NOT_AUTHORIZED : CONNACK_V3_NOT_AUTHORIZED);
  };
  socket.on('data', onData);
  socket.on('error', () => finish(null));
}

/**
 * The protocol level of a CONNECT packet from its first bytes: a number, `undefined` while more
 * bytes are needed, `null` when this is not a CONNECT.
 */
export function connectProtocolLevel(bytes: Buffer): number | null | undefined {
  if (bytes.length === 0) return undefined;
  if (bytes[0] !== 0x10) return null;
  let i = 1;
  // Remaining length: 1 to 4 bytes, the top bit says another follows.
  for (;;) {
    if (i >= bytes.length) return undefined;
    if (i > 4) return null;
    if ((bytes[i++]! & 0x80) === 0) break;
  }
  if (i + 2 > bytes.length) return undefined;
  const nameLength = bytes.readUInt16BE(i);
  if (nameLength !== 4 && nameLength !== 6) return null; // "MQTT" (3.1.1, 5) or "MQIsdp" (3.1)
  const levelAt = i + 2 + nameLength;
  return levelAt < bytes.length ? bytes[levelAt]! : undefined;
}
