import type { Duplex } from 'node:stream';

/**
 * Refuses oversized MQTT packets from their fixed header, before the body is buffered.
 * aedes has no packet size limit of its own and would buffer a packet of any length until it
 * is complete; this scanner walks the stream's packet boundaries (type byte, variable-length
 * "remaining length", body) on every read the broker makes and reports the first packet whose
 * declared length is over the limit, so the connection can be cut at once.
 */
export class PacketSizeScanner {
  private state: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private bodyLeft = 0;

  constructor(private readonly maxPacketBytes: number) {}

  /** Feeds bytes; returns the declared size of an oversized packet, or null while all is well. */
  push(chunk: Uint8Array): number | null {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'type') {
        i++;
        this.state = 'length';
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else if (this.state === 'length') {
        const byte = chunk[i++]!;
        this.length += (byte & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes++;
        if (byte & 0x80) {
          // MQTT allows at most four length bytes; a fifth is a malformed (or hostile) stream.
          if (this.lengthBytes >= 4) return Number.POSITIVE_INFINITY;
          continue;
        }
        const total = 1 + this.lengthBytes + this.length;
        if (total > this.maxPacketBytes) return total;
        this.bodyLeft = this.length;
        this.state = this.bodyLeft === 0 ? 'type' : 'body';
      } else {
        const take = Math.min(this.bodyLeft, chunk.length - i);
        i += take;
        this.bodyLeft -= take;
        if (this.bodyLeft === 0) this.state = 'type';
      }
    }
    return null;
  }
}

/**
 * Wraps a socket's read() (aedes pulls data with conn.read(null)) so every chunk passes the
 * scanner first. On an oversized packet the socket is destroyed and onViolation is told.
 */
export function guardPacketSize(socket: Duplex, maxPacketBytes: number, onViolation: (declaredBytes: number) => void): void {
  const scanner = new PacketSizeScanner(maxPacketBytes);
  const read = socket.read.bind(socket);
  socket.read = (size?: number) => {
    const chunk = read(size) as Buffer | string | null;
    if (chunk !== null && typeof chunk !== 'string') {
      const over = scanner.push(chunk);
      if (over !== null) {
        onViolation(over);
        socket.destroy();
        return null;
      }
    }
    return chunk;
  };
}
