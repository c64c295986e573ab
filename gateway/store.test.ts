import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { withinRequestLimit } from './forwarder.js';
import { copyKey } from '../protocol/index.js';
import { eventQueue, forwardSettler, GatewayStore } from './store.js';

const dirs: string[] = [];
function tempDir() {
  const d = mkdtempSync(join(tmpdir(), 'cf-gw-store-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('GatewayStore (SQLite file)', () => {
  it('queues a second copy with other bytes under its copy key, once, and reports it', () => {
    const s = new GatewayStore({ dataDir: tempDir() });
    const original = Buffer.from('the device sent this');
    const tampered = Buffer.from('the device sent thiz');
    s.appendEvents([{ id: 'e1', device: 'd1', envelope: original }]);
    // In a later group, and within one group (the chunked insert path: 64 rows and more).
    expect(s.appendEvents([{ id: 'e1', device: 'd1', envelope: tampered }])).toEqual([{ id: 'e1', device: 'd1', key: copyKey('e1', tampered) }]);
    const many = Array.from({ length: 64 }, (_, i) => ({ id: `m${i}`, device: 'd2', envelope: Buffer.from(`m${i}`) }));
    const other = Buffer.from('m7 changed');
    expect(s.appendEvents([...many, { id: 'm7', device: 'd2', envelope: other }, { id: 'e1', device: 'd1', envelope: tampered }])).toEqual([{ id: 'm7', device: 'd2', key: copyKey('m7', other) }]);
    expect(s.appendEvents(many)).toEqual([]);
    const queued = s.nextEvents(100);
    expect(queued).toHaveLength(1 + 1 + 64 + 1);
    expect(queued.find((e) => e.id === copyKey('e1', tampered))!.envelope.equals(tampered)).toBe(true);
    expect(queued.find((e) => e.id === 'e1')!.envelope.equals(original)).toBe(true);
    s.close();
  });

  it('keeps events in arrival order, ignores repeated ids, and survives reopening', () => {
    const dir = tempDir();
    const a = new GatewayStore({ dataDir: dir });
    a.appendEvents([
      { id: 'e1', device: 'd1', envelope: Buffer.from('one') },
      { id: 'e2', device: 'd2', envelope: Buffer.from('two') },
    ]);
    expect(a.appendEvents([{ id: 'e1', device: 'd1', envelope: Buffer.from('one') }])).toEqual([]);
    a.close();
    const b = new GatewayStore({ dataDir: dir });
    expect(b.nextEvents(10).map((e) => [e.id, e.envelope.toString()])).toEqual([
      ['e1', 'one'],
      ['e2', 'two'],
    ]);
    forwardSettler(b.db)({ ids: ['e1'] }, [], Date.now());
    expect(b.eventBacklog().depth).toBe(1);
    expect(b.db.pragma('journal_mode', { simple: true })).toBe('wal');
    b.close();
  });

  it('reads a queue of punch photos only as far as one ingest request, and stays usable after', () => {
    const s = new GatewayStore({ dataDir: tempDir(), durability: 'normal' });
    const photo = Buffer.alloc(80_000, 7);
    s.appendEvents(Array.from({ length: 300 }, (_, i) => ({ id: `e${i}`, device: 'd1', envelope: photo })));
    const queue = eventQueue(s.db);
    const batch = withinRequestLimit(queue(500));
    expect(batch.length).toBeGreaterThan(150);
    expect(batch.length).toBeLessThan(300);
    expect(batch.map((e) => e.id)).toEqual(Array.from({ length: batch.length }, (_, i) => `e${i}`));
    // Stopping early ended the read: the connection takes writes and a fresh read at once.
    s.appendEvents([{ id: 'late', device: 'd1', envelope: Buffer.from('x') }]);
    expect(s.eventBacklog().depth).toBe(301);
    expect(withinRequestLimit(queue(2)).map((e) => e.id)).toEqual(['e0', 'e1']);
    s.close();
  });

  it('reports the backlog as the depth and the age of the queue head, punch photos and all', () => {
    const s = new GatewayStore({ dataDir: tempDir(), durability: 'normal' });
    expect(s.eventBacklog(5_000)).toEqual({ depth: 0, oldestAgeSeconds: 0 });
    const photo = Buffer.alloc(80_000, 3);
    s.appendEvents(Array.from({ length: 40 }, (_, i) => ({ id: `old${i}`, device: 'd1', envelope: photo })), 1_000);
    s.appendEvents(Array.from({ length: 10 }, (_, i) => ({ id: `new${i}`, device: 'd2', envelope: photo })), 4_000);
    expect(s.eventBacklog(11_000)).toEqual({ depth: 50, oldestAgeSeconds: 10 });
    forwardSettler(s.db)({ range: [1, 40] }, [], 11_000);
    expect(s.eventBacklog(11_000)).toEqual({ depth: 10, oldestAgeSeconds: 7 });
    s.close();
  });

  it('keeps outbound messages until delivered or expired and records command deliveries', () => {
    const s = new GatewayStore({ dataDir: tempDir(), durability: 'normal' });
    expect(s.addCommands([{ commandId: 'c1', device: 'd1', envelope: Buffer.from('x'), expiresAt: 2000 }, { commandId: 'c2', device: 'd1', envelope: Buffer.from('y'), expiresAt: 500 }], '7', 0)).toBe(2);
    expect(s.addCommands([{ commandId: 'c1', device: 'd1', envelope: Buffer.from('x'), expiresAt: 2000 }], '8', 0)).toBe(0);
    expect(s.getValue('commandCursor')).toBe('8');
    expect(s.pendingOutbound('d1', 'cmd', 1000).map((m) => m.id)).toEqual(['c1']);
    expect(s.expireOutbound(1000)).toBe(1);
    expect(s.markDelivered('c1', 1234)).toBe('cmd');
    expect(s.markDelivered('c1', 1235)).toBeNull();
    expect(s.pendingDeliveryReports()).toEqual([{ commandId: 'c1', at: 1234 }]);
    s.addOutbound({ id: 'r1', device: 'd1', channel: 'ack', envelope: Buffer.from('r'), expiresAt: null });
    expect(s.markDelivered('r1')).toBe('ack');
    expect(s.pendingDeliveryReports()).toHaveLength(1);
    s.close();
  });
});
