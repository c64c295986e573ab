import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, isSensitiveKey } from './log.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      cb();
    },
  });
  return { lines, logger: createLogger({ name: 'test', level: 'debug', destination: stream }) };
}

describe('logger', () => {
  it('writes JSON with the role and message', () => {
    const { lines, logger } = capture();
    logger.info({ outboxDepth: 3 }, 'queued');
    expect(lines[0]).toMatchObject({ role: 'test', msg: 'queued', outboxDepth: 3, level: 30 });
  });

  it('redacts secrets, photos, templates and card numbers at any depth, by key name', () => {
    const { lines, logger } = capture();
    logger.warn(
      {
        apiKey: 'k-123',
        event: { cardNumber: '0004123456', photo: '/9j/AAAA', nested: { template: [0.1, 0.2], privateKey: 'PEM' } },
        frame: Buffer.alloc(1000),
        card_pepper: 'zq-pepper-value',
        pin: '4711',
        keyId: 'abcd',
      },
      'check',
    );
    // Without time and pid: digits such as '0.1' or '4711' can occur in them (14:39:00.183, pid 14711).
    const { time: _time, pid: _pid, ...fields } = lines[0]!;
    const text = JSON.stringify(fields);
    for (const secret of ['k-123', '0004123456', '/9j/AAAA', '0.1', 'PEM', 'zq-pepper-value', '4711']) expect(text).not.toContain(secret);
    expect(lines[0]).toMatchObject({ keyId: 'abcd', frame: '[redacted]', event: { photo: '[redacted]', cardNumber: '[redacted]' } });
  });

  it('replaces binary data under any key by its size and long strings by their length', () => {
    const { lines, logger } = capture();
    logger.info({ payload: new Uint8Array(512), blob: 'A'.repeat(5000) }, 'sizes');
    expect(lines[0]).toMatchObject({ payload: '[binary 512 bytes]', blob: '[string of 5000 chars]' });
  });

  it('keeps error messages and codes', () => {
    const { lines, logger } = capture();
    const err = Object.assign(new Error('envelope.replayed: sequence 4 was already accepted'), { code: 'envelope.replayed' });
    logger.error({ err }, 'refused');
    expect(lines[0]).toMatchObject({ err: { message: err.message, code: 'envelope.replayed' } });
  });

  it('classifies key names', () => {
    expect(['token', 'gatewayToken', 'PIN', 'pinHash', 'referencePhotos', 'descriptor', 'dataKey'].every(isSensitiveKey)).toBe(true);
    expect(['keyId', 'pinMap', 'device', 'tenant', 'subject', 'eventId', 'spinning'].some(isSensitiveKey)).toBe(false);
  });
});
