import { describe, expect, it } from 'vitest';
import { Backoff, CircuitBreaker } from './resilience.js';

describe('Backoff', () => {
  it('grows exponentially up to the cap, with full jitter below the ceiling', () => {
    const top = new Backoff(100, 1000, () => 1);
    expect([1, 2, 3, 4, 5].map(() => top.next())).toEqual([100, 200, 400, 800, 1000]);
    const bottom = new Backoff(100, 1000, () => 0);
    expect(bottom.next()).toBe(0);
    top.reset();
    expect(top.next()).toBe(100);
  });
});

describe('CircuitBreaker', () => {
  it('opens after the threshold, half-opens after the cool-down, closes on success', () => {
    let now = 0;
    const b = new CircuitBreaker(3, 1000, () => now);
    b.failure();
    b.failure();
    expect(b.state).toBe('closed');
    b.failure();
    expect(b.state).toBe('open');
    expect(b.waitMs).toBe(1000);
    now = 1000;
    expect(b.state).toBe('half-open');
    b.failure(); // the trial call failed: open again for a full cool-down
    expect(b.state).toBe('open');
    now = 2000;
    b.success();
    expect(b.state).toBe('closed');
    expect(b.waitMs).toBe(0);
  });
});
