import { describe, expect, it } from 'vitest';
import { ReaderPause } from './reader-pause.js';

describe('ReaderPause', () => {
  it('the exclusive run waits for the read in flight, and a read asked meanwhile waits for it', async () => {
    const pause = new ReaderPause();
    const order: string[] = [];
    let finishRead!: () => void;
    const first = pause.read(async () => {
      order.push('read 1 starts');
      await new Promise<void>((r) => (finishRead = r));
      order.push('read 1 ends');
    });
    const wipe = pause.exclusive(async () => {
      order.push('wipe');
    });
    const second = pause.read(async () => {
      order.push('read 2');
    });
    await Promise.resolve();
    expect(order).toEqual(['read 1 starts']);
    finishRead();
    await Promise.all([first, wipe, second]);
    expect(order).toEqual(['read 1 starts', 'read 1 ends', 'wipe', 'read 2']);
  });

  it('a failed exclusive run releases the reads', async () => {
    const pause = new ReaderPause();
    await expect(pause.exclusive(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(pause.read(async () => 'read')).resolves.toBe('read');
  });
});
