import { describe, expect, it } from 'vitest';
import { AdmissionQueue, PublishThrottle } from './throttle.js';

describe('PublishThrottle', () => {
  it('admits a burst at once, then spaces publishes at the rate instead of refusing them', () => {
    const t = new PublishThrottle(10, 5, 0);
    for (let i = 0; i < 5; i++) expect(t.take(0)).toBe(0);
    // Over the burst: each further publish waits for its own token (100 ms apart at 10/s).
    expect(t.take(0)).toBe(100);
    expect(t.take(0)).toBe(200);
    // Time pays the debt back: 200 ms later both waiting tokens have accrued, the bucket is at 0.
    expect(t.take(200)).toBe(100);
  });

  it('lets a client that waits for its PUBACKs go on for ever at the rate', () => {
    const t = new PublishThrottle(200, 1000, 0);
    let now = 0;
    for (let i = 0; i < 10_000; i++) {
      const wait = t.take(now);
      expect(wait).not.toBeNull();
      now += wait! + 1; // the next publish goes out after the PUBACK, 1 ms later
    }
    // 1,000 from the burst, the other 9,000 at 200/s: about 45 s, never a refusal.
    expect(now).toBeGreaterThan(44_000);
  });

  it('calls it a flood only when more than the burst is waiting for tokens at once', () => {
    const t = new PublishThrottle(10, 5, 0);
    for (let i = 0; i < 10; i++) expect(t.take(0)).not.toBeNull();
    expect(t.take(0)).toBeNull();
    // Refills cap at the burst: a long pause does not bank more than `burst` tokens.
    const rested = new PublishThrottle(10, 5, 0);
    for (let i = 0; i < 5; i++) rested.take(1_000_000);
    expect(rested.take(1_000_000)).toBe(100);
  });
});

describe('AdmissionQueue', () => {
  it('admits late publishes in arrival order, even when a later one is due sooner', async () => {
    const q = new AdmissionQueue();
    const order: string[] = [];
    await new Promise<void>((resolve) => {
      q.schedule(20, () => order.push('first'));
      q.schedule(0, () => order.push('second'));
      q.schedule(5, () => {
        order.push('third');
        resolve();
      });
    });
    expect(order).toEqual(['first', 'second', 'third']);
    expect(q.idle).toBe(true);
  });
});
