import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventWriter } from '../gateway/event-writer.js';
import { forwardSettler, GatewayStore } from '../gateway/store.js';
import { round } from './measure.js';

/**
 * `npm run bench -- gateway-wipe`: what wiping deleted copies costs the gateway (common/wipe.ts).
 *  - settle: dropping a forwarded batch of 500 events (the forwarder's delete) with
 *    secure_delete off and on, interleaved A/B/A/B on one file, median ms per batch;
 *  - wipe: one wipe (VACUUM, checkpoint TRUNCATE) on the event writer's thread, against the
 *    queue still live behind it: group commits (and so PUBACKs) wait this long once per
 *    quarter of wipeWithinSeconds. Median of 5.
 */
const SMALL = 476;
const PHOTO = 80_000;

export async function run(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'cf-bench-wipe-'));
  try {
    return { settle500: settleAB(join(dir, 'settle')), wipe: await wipes(dir) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const events = (n: number, bytes: number) => Array.from({ length: n }, () => ({ id: randomUUID(), device: 'door-1', envelope: randomBytes(bytes) }));

function settleAB(dataDir: string) {
  const store = new GatewayStore({ dataDir, durability: 'full' });
  const settle = forwardSettler(store.db);
  const times: Record<'off' | 'on', number[]> = { off: [], on: [] };
  for (let round = 0; round < 40; round++) {
    for (const mode of ['off', 'on'] as const) {
      store.db.pragma(`secure_delete = ${mode === 'on' ? 'ON' : 'OFF'}`);
      store.appendEvents(events(500, SMALL));
      const head = store.nextEvents(500);
      const t = performance.now();
      settle({ range: [head[0]!.seq, head[head.length - 1]!.seq] }, [], Date.now());
      times[mode].push(performance.now() - t);
    }
  }
  store.close();
  return { eventBytes: SMALL, secureDeleteOffMs: round(median(times.off)), secureDeleteOnMs: round(median(times.on)) };
}

async function wipes(dir: string) {
  const cases = [
    { name: 'empty', live: 0, bytes: SMALL },
    { name: 'small2k', live: 2_000, bytes: SMALL },
    { name: 'small10k', live: 10_000, bytes: SMALL },
    { name: 'photos50', live: 50, bytes: PHOTO },
    { name: 'photos150', live: 150, bytes: PHOTO },
  ];
  const out: Record<string, unknown> = {};
  for (const c of cases) {
    const store = new GatewayStore({ dataDir: join(dir, c.name), durability: 'full' });
    const writer = new EventWriter(store);
    const ms: number[] = [];
    let vacuumedBytes = 0;
    for (let i = 0; i < c.live; i += 500) await writer.append(events(Math.min(500, c.live - i), c.bytes));
    for (let rep = 0; rep < 5; rep++) {
      // A forwarded batch goes (the queue behind it stays), then the wipe.
      await writer.append(events(200, c.bytes));
      const head = store.nextEvents(1_000_000).slice(-200);
      await writer.settle({ range: [head[0]!.seq, head[head.length - 1]!.seq] }, []);
      const t = performance.now();
      const outcome = await writer.wipe();
      ms.push(performance.now() - t);
      vacuumedBytes = outcome.vacuumedBytes;
    }
    out[c.name] = { liveEvents: c.live, eventBytes: c.bytes, liveMiB: round(vacuumedBytes / 1048576), wipeMs: round(median(ms)) };
    await writer.close();
    store.close();
  }
  return out;
}
