import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Harness } from '../cloud/testing/harness.js';
import { buildServer } from '../cloud/server.js';
import { createLogger } from '../common/log.js';
import type { PunchBody } from '../device/events.js';
import { WasmTerminalFaceEngine } from '../device/face/terminal-engine.js';
import type { DeviceService } from '../device/service.js';
import type { Gateway } from '../gateway/gateway.js';
import { until } from '../gateway/testing/fixture.js';
import { cardHash } from '../protocol/index.js';
import { badge, startInProcessSite, type InProcessSite } from './support/site.js';
import { oneFaceFrame } from '../demo/people.js';

/*
 * The three tiers as one system, in one process but over their real protocols: two terminals
 * (a door with badge + face on the real face engine, a time clock with badge only) publish over
 * mTLS MQTT to the site gateway, which stores and forwards over HTTP to the real cloud (SQLite,
 * photo vault, receipts). Enrollment goes the other way: the admin API → signed, sealed
 * command → gateway → terminal, which computes the template from the reference photo.
 * Every punch made at a terminal must be in the cloud exactly once with the same decision,
 * subject, credential and scores, and every outbox must drain (each receipt came back).
 */
const log = createLogger({ name: 'cross-tier', level: process.env.CF_TEST_LOG ?? 'silent' });

let stack: InProcessSite;
let h: Harness;
let gw: Gateway;
let face: WasmTerminalFaceEngine;
const terminals = new Map<string, DeviceService>();
const made: PunchBody[] = [];

/** Badges a card and waits for the terminal's decision (and the end of the result screen). */
async function badgeAt(service: DeviceService, card: number): Promise<PunchBody> {
  const { punch } = await badge(service, card);
  await new Promise((r) => setTimeout(r, 120));
  return punch;
}

const pending = (s: DeviceService) => s.store.pending(1000).length;

beforeAll(async () => {
  face = await WasmTerminalFaceEngine.create();
  stack = await startInProcessSite(log);
  ({ cloud: h, gateway: gw } = stack);
  const employee = await oneFaceFrame(face.engine);
  const start = async (id: string, policy: Record<string, unknown>, mode: 'access' | 'timekeeping') => {
    const service = await stack.startTerminal(id, { frame: employee, policy, mode, face });
    service.terminal.on('punch', (p) => made.push(p));
    terminals.set(id, service);
  };
  await start('door-1', { credentials: 'card+face', access: { pulseMs: 100, groups: { staff: 'always' } } }, 'access');
  await start('clock-1', { credentials: 'card-only', timekeeping: { action: 'auto', debounceMs: 0 } }, 'timekeeping');
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

describe('terminals → gateway → cloud', () => {
  it('enrolls through the cloud, then every punch arrives exactly once with its decision and scores, across a cloud outage', async () => {
    const t = h.tenants.get('acme')!;
    const reference = await oneFaceFrame(face.engine);
    const enrolled = await h.api('POST', '/v1/tenants/acme/subjects', {
      token: t.ownerKey,
      body: { cardHashes: [cardHash(t.keys.pepper, '1001')], accessGroups: ['staff'], consent: { policyVersion: 'v1' }, referencePhotos: [reference.toString('base64')] },
    });
    expect(enrolled.status).toBe(201);
    const subject = enrolled.json.subject as string;
    const door = terminals.get('door-1')!;
    const clock = terminals.get('clock-1')!;
    // The signed enroll command reaches both terminals through the gateway; the door computes a template.
    await until(() => door.store.getSubject(subject) !== undefined && clock.store.getSubject(subject) !== undefined, 50);
    await until(() => door.store.templatesOf(subject).length > 0, 50);

    const expected: Record<string, PunchBody['decision']> = {};
    const round = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const known = i % 4 !== 3;
        for (const terminal of [door, clock]) {
          const p = await badgeAt(terminal, known ? 1001 : 2002);
          expected[p.eventId] = known ? 'granted' : 'denied';
        }
      }
    };
    await round(8);

    // The cloud goes away for a while: terminals keep deciding, the gateway queues.
    const atCloud = () => h.service.db.prepare('SELECT COUNT(*) FROM punches').pluck().get() as number;
    await h.app.close();
    const beforeOutage = atCloud();
    await round(8);
    expect(atCloud()).toBe(beforeOutage);
    expect(gw.store.eventBacklog().depth).toBeGreaterThan(0); // held durably at the site
    expect(pending(door) + pending(clock)).toBeGreaterThan(0); // and no receipts while the cloud is away
    const app = await buildServer({ service: h.service, maxWaitSeconds: 5 });
    await app.listen({ host: '127.0.0.1', port: stack.cloudPort });
    h.app = app;
    await round(4);

    // Every outbox drains: each event was stored at the cloud and its receipt came back.
    await until(() => pending(door) === 0 && pending(clock) === 0, 50);
    const rows = (await h.api('GET', '/v1/tenants/acme/punches?limit=5000', { token: t.ownerKey })).json.punches as Array<Record<string, unknown>>;
    expect(rows).toHaveLength(made.length);
    expect(new Set(rows.map((r) => r.eventId)).size).toBe(made.length);
    const byId = new Map(rows.map((r) => [r.eventId as string, r]));
    for (const p of made) {
      const row = byId.get(p.eventId)!;
      expect(row, p.eventId).toBeDefined();
      expect(p.decision).toBe(expected[p.eventId]);
      expect(row).toMatchObject({ device: p.device, decision: p.decision, subject: p.subject, credential: p.credential });
      const scores = typeof row.scores === 'string' ? JSON.parse(row.scores) : row.scores;
      expect(scores).toEqual(p.scores);
    }
    // The door checked the face on the real engine: granted punches carry a high similarity.
    const doorGrants = made.filter((p) => p.device === 'door-1' && p.decision === 'granted');
    expect(doorGrants.length).toBe(15);
    for (const p of doorGrants) expect(p.scores.similarity!).toBeGreaterThan(0.6);
  }, 240_000);
});
