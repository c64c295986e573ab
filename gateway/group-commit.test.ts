import { describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit.js';

describe('GroupCommit', () => {
  it('writes what arrives together as one group and calls back in order, barriers included', async () => {
    const groups: number[][] = [];
    const order: string[] = [];
    let release!: () => void;
    const writer = new GroupCommit<number>((items) => {
      groups.push(items);
      // The first group stays open until released: what arrives meanwhile forms the next one.
      if (groups.length === 1) return new Promise<void>((r) => (release = r));
    });
    writer.afterQueued(() => order.push('idle barrier'));
    expect(order).toEqual(['idle barrier']);
    writer.add(1, () => order.push('1'));
    writer.afterQueued(() => order.push('after 1'));
    writer.add(2, () => order.push('2'));
    await new Promise((r) => setImmediate(r));
    writer.add(3, () => order.push('3'));
    writer.afterQueued(() => order.push('after 3'));
    release();
    await writer.drained();
    expect(groups).toEqual([[1, 2], [3]]);
    expect(order).toEqual(['idle barrier', '1', 'after 1', '2', '3', 'after 3']);
  });

  it('a failed write fails its items; a barrier behind them is still called', async () => {
    const writer = new GroupCommit<number>(() => Promise.reject(new Error('disk full')));
    const results: (string | null)[] = [];
    writer.add(1, (err) => results.push(err?.message ?? null));
    writer.afterQueued(() => results.push('barrier'));
    await writer.drained();
    expect(results).toEqual(['disk full', 'barrier']);
  });
});
