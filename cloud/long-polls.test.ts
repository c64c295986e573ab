import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { LongPolls } from './long-polls.js';

/** The open long polls: each ends on a wake, on its client leaving, or when the cloud stops. */
const hour = 3_600_000;
const never = () => () => {};
const settled = async (p: Promise<void>) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setImmediate(() => r(false)))]);

describe('LongPolls', () => {
  it('ends every open poll on endAll, and a later poll does not wait at all', async () => {
    const polls = new LongPolls();
    const a = polls.wait(hour, never, new EventEmitter());
    const b = polls.wait(hour, never, new EventEmitter());
    expect(await settled(a)).toBe(false);
    expect(polls.endAll()).toBe(2);
    expect(await settled(a)).toBe(true);
    expect(await settled(b)).toBe(true);
    expect(polls.ending).toBe(true);
    expect(await settled(polls.wait(hour, never, new EventEmitter()))).toBe(true);
    expect(polls.endAll()).toBe(0);
  });

  it('ends a poll when it is woken or its client goes away, and unsubscribes either way', async () => {
    const polls = new LongPolls();
    let wake: () => void = () => {};
    let unsubscribed = 0;
    const woken = polls.wait(hour, (w) => ((wake = w), () => void unsubscribed++), new EventEmitter());
    wake();
    expect(await settled(woken)).toBe(true);
    const client = new EventEmitter();
    const gone = polls.wait(hour, () => () => void unsubscribed++, client);
    client.emit('close');
    expect(await settled(gone)).toBe(true);
    expect(unsubscribed).toBe(2);
    expect(client.listenerCount('close')).toBe(0);
    expect(polls.endAll()).toBe(0);
  });
});
