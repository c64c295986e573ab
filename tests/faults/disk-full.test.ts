import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../cloud/server.js';
import { createLogger } from '../../common/log.js';
import type { PunchBody } from '../../device/events.js';
import type { DeviceService } from '../../device/service.js';
import { until } from '../../gateway/testing/fixture.js';
import { cardHash } from '../../protocol/index.js';
import { badge, startInProcessSite, type InProcessSite } from '../support/site.js';
import { emptyFrame } from '../../demo/people.js';
import { logLines, refusals, refusalsWithoutReason } from '../support/refusals.js';
import { opaqueSubject } from '../../protocol/fixtures.js';

/*
 * The gateway's queue runs out of disk while the cloud is away (a 192 KB quota stands in for a
 * full SD card: SQLite fails the write exactly as on ENOSPC). The gateway must refuse new events
 * cleanly, with no PUBACK, so the terminal keeps them; once the cloud is back and forwarding
 * frees space, everything flows again and arrives exactly once.
 */
const lines: string[] = [];
const log = createLogger({ name: 'disk-full', level: 'info', destination: { write: (l: string) => void lines.push(l) } });
let stack: InProcessSite;
let door: DeviceService;
const made: PunchBody[] = [];

beforeAll(async () => {
  stack = await startInProcessSite(log, {}, { maxQueueBytes: 192 * 1024 });
  door = await stack.startTerminal('door-1', { frame: await emptyFrame(), mode: 'access', face: null, policy: { credentials: 'card-only', photoAtPunch: false, access: { pulseMs: 100, groups: { staff: 'always' } } } });
  const pepper = stack.cloud.tenants.get('acme')!.keys.pepper;
  // The terminal's policy names the group by its opaque id from the cloud's directory; so does the subject.
  door.store.upsertSubject({ subject: opaqueSubject('s-1'), cardHashes: [cardHash(pepper, '1001')], pinHash: null, faceConsent: false, accessGroups: [await stack.accessGroupId('staff')], suspended: false }, null);
  door.terminal.on('punch', (p) => made.push(p));
  await until(() => door.link.connected);
}, 60_000);

afterAll(async () => {
  await stack?.close();
});

describe('disk full on the gateway queue', () => {
  it('refuses new events without PUBACK while full, keeps them at the terminal, and recovers with nothing lost or doubled', async () => {
    const { cloud, gateway } = stack;
    await cloud.app.close(); // the cloud is away: the queue only grows
    const BADGES = 400;
    for (let i = 0; i < BADGES; i++) {
      const { punch } = await badge(door, 1001);
      expect(punch.decision).toBe('granted'); // the door keeps working
      await new Promise((r) => setTimeout(r, 5));
    }
    // Full: the gateway holds only part of the day, the rest waits in the terminal's outbox.
    await until(() => lines.some((l) => l.includes('durable queue write failed')));
    const queued = gateway.store.eventBacklog().depth;
    expect(queued).toBeGreaterThan(0);
    expect(queued).toBeLessThan(BADGES);
    expect(door.store.pending(5000).length).toBe(BADGES); // nothing acknowledged: all still kept
    const refusal = lines.find((l) => l.includes('durable queue write failed'))!;
    expect(refusal).toMatch(/full|SQLITE_FULL/i);
    // The refusals expected are exactly these: publishes left without PUBACK for the full queue.
    // Nothing else was refused (the terminal took no receipt or command as invalid).
    const refused = refusals(logLines(lines));
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(refused.map((l) => l.msg))).toEqual(new Set(['durable queue write failed: no PUBACK, the device will retry']));

    // The cloud is back: forwarding frees space, the terminal's backlog gets through.
    const app = await buildServer({ service: cloud.service, maxWaitSeconds: 5 });
    await app.listen({ host: '127.0.0.1', port: stack.cloudPort });
    cloud.app = app;
    await until(() => door.store.pending(5000).length === 0, 50);
    const ids = cloud.service.db.prepare('SELECT event_id FROM punches').pluck().all() as string[];
    expect(ids.length).toBe(BADGES);
    expect(new Set(ids)).toEqual(new Set(made.map((p) => p.eventId)));
  }, 240_000);

  // Fails today: gateway/broker.ts logs the full-queue refusal as { err } with no `reason` field
  // (the SQLite error is in err.message/err.code, but the issue asks for a reason on every refusal).
  it('every refusal line of the gateway and the terminal carries a reason', () => {
    expect(refusals(logLines(lines)).length).toBeGreaterThan(0);
    expect(refusalsWithoutReason(logLines(lines))).toEqual([]);
  });
});
