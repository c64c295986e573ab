import { afterEach, describe, expect, it, vi } from 'vitest';
import { PresenceDebounce, type PresenceState } from './presence.js';

describe('offline presence waits out its grace period', () => {
  afterEach(() => vi.useRealTimers());
  const collect = (graceMs: number) => {
    const reported: Array<[string, PresenceState, number]> = [];
    return { reported, debounce: new PresenceDebounce(graceMs, (d, s, at) => reported.push([d, s, at])) };
  };

  it('a terminal back within the grace period is never reported offline', () => {
    vi.useFakeTimers();
    const { reported, debounce } = collect(15_000);
    debounce.observe('door-1', 'online', 1);
    debounce.observe('door-1', 'offline', 2);
    vi.advanceTimersByTime(14_999);
    debounce.observe('door-1', 'online', 3);
    vi.advanceTimersByTime(60_000);
    expect(reported).toEqual([
      ['door-1', 'online', 1],
      ['door-1', 'online', 3],
    ]);
    expect(debounce.waiting).toEqual([]);
  });

  it('one that stays away is reported once, with the latest time it was seen leaving', () => {
    vi.useFakeTimers();
    const { reported, debounce } = collect(15_000);
    debounce.observe('door-1', 'offline', 20); // the broker saw the drop
    debounce.observe('door-1', 'offline', 10); // its Last Will, dated when it connected
    debounce.observe('clock-1', 'offline', 30);
    vi.advanceTimersByTime(15_000);
    expect(reported).toEqual([
      ['door-1', 'offline', 20],
      ['clock-1', 'offline', 30],
    ]);
  });

  it('grace 0 reports at once; a shutdown flushes whoever is still away', () => {
    const now = collect(0);
    now.debounce.observe('door-1', 'offline', 5);
    expect(now.reported).toEqual([['door-1', 'offline', 5]]);
    const later = collect(15_000);
    later.debounce.observe('door-1', 'offline', 7);
    expect(later.reported).toEqual([]);
    later.debounce.flush();
    expect(later.reported).toEqual([['door-1', 'offline', 7]]);
  });
});
