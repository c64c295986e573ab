import { describe, expect, it } from 'vitest';
import { TriggerQueue, type IgnoredTrigger, type TriggerContext, type TriggerJob } from './trigger-queue.js';

/* The queue on its own: jobs are promises the test settles by hand, so nothing here is timed. */

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

function make(limits = { size: 2, maxWaitMs: 60_000 }) {
  const ignored: IgnoredTrigger[] = [];
  const order: string[] = [];
  const queue = new TriggerQueue<string>({ limits: () => limits, onIgnored: (i) => ignored.push(i), onIdle: () => order.push('idle') });
  /** A job that runs until its gate is settled; `seen` gets its context. */
  const job = (name: string, idle = false) => {
    const gate = deferred<string | null>();
    const started = deferred<TriggerContext>();
    const j: TriggerJob<string> = {
      kind: idle ? 'face' : 'card',
      idle,
      run: (ctx) => {
        order.push(`start ${name}`);
        started.resolve(ctx);
        return gate.promise;
      },
    };
    return { j, gate, started: started.promise };
  };
  return { queue, ignored, order, job };
}

describe('TriggerQueue', () => {
  it('runs waiting triggers in order, one at a time', async () => {
    const { queue, order, job } = make();
    const [a, b, c] = [job('a'), job('b'), job('c')];
    const ra = queue.submit(a.j);
    const rb = queue.submit(b.j);
    const rc = queue.submit(c.j);
    expect(queue.queued).toBe(2);
    a.gate.resolve('A');
    expect(await ra).toBe('A');
    await b.started;
    b.gate.resolve('B');
    expect(await rb).toBe('B');
    await c.started;
    c.gate.resolve('C');
    expect(await rc).toBe('C');
    expect(order).toEqual(['start a', 'idle', 'start b', 'idle', 'start c', 'idle']);
  });

  it('a decision that throws frees the slot: its caller gets the error, the next one runs', async () => {
    const { queue, job } = make();
    const [a, b] = [job('a'), job('b')];
    const ra = queue.submit(a.j);
    const rb = queue.submit(b.j);
    a.gate.reject(new Error('engine crashed'));
    await expect(ra).rejects.toThrow('engine crashed');
    await b.started;
    b.gate.resolve('B');
    expect(await rb).toBe('B');
  });

  it('a presented credential preempts an idle job: the idle job is told (signal), its caller gets null, its late result is dropped', async () => {
    const { queue, order, job } = make();
    const scan = job('scan', true);
    const card = job('card');
    const rs = queue.submit(scan.j);
    const scanCtx = await scan.started;
    const rc = queue.submit(card.j);
    expect(scanCtx.signal.aborted).toBe(true);
    expect(await rs).toBeNull();
    scan.gate.resolve('late'); // the engine answers after all: nobody hears it
    card.gate.resolve('CARD');
    expect(await rc).toBe('CARD');
    await queue.close();
    expect(order).toEqual(['start scan', 'start card', 'idle']);
  });

  it('refuses with a reason: queue-full past the FIFO, closed for those waiting at shutdown and for new ones', async () => {
    const { queue, ignored, job } = make({ size: 1, maxWaitMs: 60_000 });
    const [a, b, c] = [job('a'), job('b'), job('c')];
    const ra = queue.submit(a.j);
    const rb = queue.submit(b.j);
    expect(await queue.submit(c.j)).toBeNull();
    expect(ignored).toEqual([{ trigger: 'card', reason: 'queue-full' }]);
    const closing = queue.close();
    expect(await rb).toBeNull();
    a.gate.resolve('A');
    await closing;
    expect(await ra).toBe('A');
    expect(await queue.submit(job('d').j)).toBeNull();
    expect(ignored.map((i) => i.reason)).toEqual(['queue-full', 'closed', 'closed']);
  });

  it('an idle job never waits and is never traced: skipped while busy or closed', async () => {
    const { queue, ignored, job } = make();
    const a = job('a');
    const ra = queue.submit(a.j);
    expect(await queue.submit(job('scan', true).j)).toBeNull();
    a.gate.resolve('A');
    await ra;
    await queue.close();
    expect(await queue.submit(job('scan', true).j)).toBeNull();
    expect(ignored).toEqual([]);
  });
});
