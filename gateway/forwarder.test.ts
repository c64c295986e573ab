import { describe, expect, it } from 'vitest';
import { LIMITS } from '../protocol/index.js';
import { INGEST_REQUEST_BYTES, withinRequestLimit } from './forwarder.js';

describe('ingest request size', () => {
  it('keeps a batch of the largest events under the 16 MiB request cap, and always sends at least one', () => {
    const big = Array.from({ length: 500 }, () => ({ envelope: Buffer.alloc(LIMITS.eventEnvelopeBytes) }));
    const batch = withinRequestLimit(big);
    expect(batch.length).toBeGreaterThan(0);
    expect(batch.length).toBeLessThan(500);
    const requestBytes = batch.reduce((n, e) => n + Math.ceil(e.envelope.length / 3) * 4 + 256, 1024);
    expect(requestBytes).toBeLessThanOrEqual(INGEST_REQUEST_BYTES);
    expect(withinRequestLimit(big, 10)).toHaveLength(1);
    const small = Array.from({ length: 500 }, () => ({ envelope: Buffer.alloc(400) }));
    expect(withinRequestLimit(small)).toHaveLength(500);
  });

  it('reads the queue only as far as one request carries', () => {
    let read = 0;
    function* queue() {
      for (let i = 0; i < 500; i++) {
        read++;
        yield { envelope: Buffer.alloc(80_000) };
      }
    }
    const batch = withinRequestLimit(queue());
    expect(batch.length).toBeGreaterThan(150);
    expect(read).toBe(batch.length + 1);
  });
});
