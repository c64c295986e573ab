import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { findLeftovers, sqliteFiles } from '../tests/support/raw-scan.js';
import { EventWriter } from './event-writer.js';
import { GatewayStore } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'cf-gw-wipe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gateway store: deleted copies leave the disk', () => {
  it('answered events, delivered and expired commands: none of their bytes stay after the writer thread wipes; the queue behind is intact', async () => {
    const store = new GatewayStore({ dataDir: dir });
    const writer = new EventWriter(store);
    let deletions = 0;
    store.onEnvelopeDeleted = () => deletions++;
    try {
      const events = Array.from({ length: 300 }, (_, i) => ({ id: randomUUID(), device: 'door-1', envelope: randomBytes(i % 20 === 0 ? 80_000 : 476) }));
      for (let i = 0; i < events.length; i += 25) await writer.append(events.slice(i, i + 25));
      const queued = store.nextEvents(300);
      // The cloud answered a range (a whole batch) and scattered ids (a partial answer).
      await writer.settle({ range: [queued[0]!.seq, queued[149]!.seq] }, []);
      const scattered = events.slice(150, 250).filter((_, i) => i % 2 === 0);
      await writer.settle({ ids: scattered.map((e) => e.id) }, []);
      // Sealed commands: one delivered (PUBACKed), one expired.
      const delivered = { id: randomUUID(), device: 'door-1', channel: 'cmd' as const, envelope: randomBytes(30_000), expiresAt: null };
      const expired = { id: randomUUID(), device: 'door-1', channel: 'cmd' as const, envelope: randomBytes(30_000), expiresAt: Date.now() - 1 };
      store.addOutbound(delivered);
      store.addOutbound(expired);
      expect(await writer.delivered([delivered.id])).toEqual(['cmd']);
      expect(store.expireOutbound()).toBe(1);
      expect(deletions).toBe(1); // the expiry on this connection; the writer's deletes are the gateway's to mark

      const gone = [...events.slice(0, 150), ...scattered].map((e) => e.envelope).concat(delivered.envelope, expired.envelope);
      const files = () => sqliteFiles(store.path);
      expect(findLeftovers(gone, files()).length).toBeGreaterThan(0); // deleted, not yet wiped
      expect(await writer.wipe()).toMatchObject({ complete: true });
      expect(findLeftovers(gone, files())).toEqual([]);
      const left = new Set(gone);
      expect(store.nextEvents(300).map((e) => e.envelope)).toEqual(events.filter((e) => !left.has(e.envelope)).map((e) => e.envelope));
    } finally {
      await writer.close();
      store.close();
    }
  });
});
