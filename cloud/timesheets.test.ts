import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PunchEvent } from '../protocol/index.js';
import { opaqueSubject } from '../protocol/fixtures.js';
import { startHarness, type Harness } from './testing/harness.js';

/**
 * Timesheets from real sealed punches ingested over HTTP: pairs per subject and day in the
 * tenant's time zone (Europe/Berlin, UTC+1 in March 2026), worked minutes, missing in/out,
 * flagged punches, night shifts, auto toggles; JSON and CSV; only opaque subject ids.
 */
let h: Harness;
let owner: string;
/** Berlin wall-clock time in March 2026 (UTC+1) as epoch ms. */
const berlin = (day: number, hh: number, mm = 0) => Date.UTC(2026, 2, day, hh - 1, mm);
const ids: Record<string, string> = {};
/** Two employees, by the opaque ids terminals punch with (emp-a sorts before emp-b). */
const EMP_A = opaqueSubject('emp-a');
const EMP_B = opaqueSubject('emp-b');

beforeAll(async () => {
  h = await startHarness(['acme']);
  owner = h.tenants.get('acme')!.ownerKey;
  await h.addDevice('acme', 'door-1');
  h.clock.set(Date.UTC(2026, 2, 9, 12));
  expect((await h.api('PUT', '/v1/tenants/acme/settings', { token: owner, body: { timeZone: 'Europe/Berlin' } })).json.timeZone).toBe('Europe/Berlin');
  const punches: Array<[string, string, PunchEvent['action'], number, Partial<PunchEvent>?]> = [
    // emp-a, Monday 2 March: two pairs, 4 h + 4 h 45 min.
    ['a1', EMP_A, 'in', berlin(2, 8)],
    ['a2', EMP_A, 'out', berlin(2, 12)],
    ['a3', EMP_A, 'in', berlin(2, 12, 30)],
    ['a4', EMP_A, 'out', berlin(2, 17, 15)],
    // A denied attempt and a door-access punch are not time records.
    ['ax', EMP_A, 'out', berlin(2, 13), { decision: 'denied', reasons: ['face-mismatch'] }],
    ['ay', EMP_A, 'access', berlin(2, 14)],
    // Tuesday: in, never out (the next in is over a day later).
    ['a5', EMP_A, 'in', berlin(3, 8)],
    // Wednesday: a pair whose out was flagged by the terminal.
    ['a6', EMP_A, 'in', berlin(4, 9)],
    ['a7', EMP_A, 'out', berlin(4, 17), { decision: 'flagged', reasons: ['review-required'] }],
    // Thursday: an out with no in, then a night shift into Friday.
    ['a8', EMP_A, 'out', berlin(5, 17)],
    ['a9', EMP_A, 'in', berlin(5, 22)],
    ['a10', EMP_A, 'out', berlin(6, 6)],
    // Saturday 00:30 in Berlin is still Friday in UTC.
    ['a11', EMP_A, 'in', berlin(7, 0, 30)],
    ['a12', EMP_A, 'out', berlin(7, 2)],
    // emp-b: auto toggles the terminal recorded as such.
    ['b1', EMP_B, 'auto', berlin(2, 9)],
    ['b2', EMP_B, 'auto', berlin(2, 17, 30)],
  ];
  const items = [];
  for (const [name, subject, action, wall, patch] of punches) {
    const p = h.punch('acme', 'door-1', { subject, action, time: { wall, monotonicMs: 1, clockSync: 'synced' }, ...patch });
    ids[name] = p.event.eventId;
    items.push({ id: p.event.eventId, tenant: 'acme', device: 'door-1', envelope: p.envelope });
  }
  const r = await h.ingest('acme', items);
  expect(r.json.results.every((x: { status: string }) => x.status === 'stored')).toBe(true);
});
afterAll(async () => h?.close());

type Day = { subject: string; date: string; workedMinutes: number; incomplete: boolean; needsReview: boolean; pairs: Array<{ in: { eventId: string; local: string } | null; out: { eventId: string; local: string } | null; minutes: number | null; incomplete: string | null }> };
const sheet = async (query: string) => {
  const r = await h.api('GET', `/v1/tenants/acme/timesheets?${query}`, { token: owner });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json as { timeZone: string; days: Day[] };
};
const pairIds = (d: Day) => d.pairs.map((p) => [p.in?.eventId ?? null, p.out?.eventId ?? null, p.minutes, p.incomplete]);

describe('timesheets', () => {
  it('pairs punches per subject and day in the tenant time zone, with worked minutes and what needs a person', async () => {
    const { timeZone, days } = await sheet('from=2026-03-02&to=2026-03-07');
    expect(timeZone).toBe('Europe/Berlin');
    expect(days.map((d) => `${d.subject} ${d.date}`)).toEqual([`${EMP_A} 2026-03-02`, `${EMP_A} 2026-03-03`, `${EMP_A} 2026-03-04`, `${EMP_A} 2026-03-05`, `${EMP_A} 2026-03-07`, `${EMP_B} 2026-03-02`]);
    const [mon, tue, wed, thu, sat, b] = days as [Day, Day, Day, Day, Day, Day];
    expect(pairIds(mon)).toEqual([[ids.a1, ids.a2, 240, null], [ids.a3, ids.a4, 285, null]]);
    expect(mon).toMatchObject({ workedMinutes: 525, incomplete: false, needsReview: false });
    expect(mon.pairs[0]!.in!.local).toBe('2026-03-02T08:00:00+01:00');
    expect(pairIds(tue)).toEqual([[ids.a5, null, null, 'missing-out']]);
    expect(tue).toMatchObject({ workedMinutes: 0, incomplete: true });
    expect(pairIds(wed)).toEqual([[ids.a6, ids.a7, 480, null]]);
    expect(wed).toMatchObject({ workedMinutes: 480, needsReview: true, incomplete: false });
    // The night shift belongs to the day it began.
    expect(pairIds(thu)).toEqual([[null, ids.a8, null, 'missing-in'], [ids.a9, ids.a10, 480, null]]);
    expect(thu).toMatchObject({ workedMinutes: 480, incomplete: true });
    expect(pairIds(sat)).toEqual([[ids.a11, ids.a12, 90, null]]);
    expect(pairIds(b)).toEqual([[ids.b1, ids.b2, 510, null]]);
    // Only opaque ids: the report carries no names or other subject data.
    expect(JSON.stringify(days)).not.toMatch(/cardHash|pin|name/i);
  });

  it('moves the day boundary with the time zone setting', async () => {
    await h.api('PUT', '/v1/tenants/acme/settings', { token: owner, body: { timeZone: 'UTC' } });
    try {
      const { days } = await sheet(`from=2026-03-06&to=2026-03-07&subject=${EMP_A}`);
      // 00:30 Berlin is 23:30 UTC on Friday.
      expect(days.map((d) => d.date)).toEqual(['2026-03-06']);
      expect(pairIds(days[0]!)).toEqual([[ids.a11, ids.a12, 90, null]]);
      expect(days[0]!.pairs[0]!.in!.local).toBe('2026-03-06T23:30:00+00:00');
    } finally {
      await h.api('PUT', '/v1/tenants/acme/settings', { token: owner, body: { timeZone: 'Europe/Berlin' } });
    }
  });

  it('filters by subject and range; an out whose in lies before the range is not reported as missing its in', async () => {
    const { days } = await sheet(`from=2026-03-06&to=2026-03-06&subject=${EMP_A}`);
    expect(days).toEqual([]);
    const b = await sheet(`from=2026-03-01&to=2026-03-31&subject=${EMP_B}`);
    expect(b.days.map((d) => d.subject)).toEqual([EMP_B]);
  });

  it('serves CSV for payroll, one row per pair', async () => {
    const r = await h.api('GET', `/v1/tenants/acme/timesheets?from=2026-03-02&to=2026-03-04&subject=${EMP_A}&format=csv`, { token: owner });
    expect(r.status).toBe(200);
    const lines = r.bytes.toString('utf8').trimEnd().split('\r\n');
    expect(lines[0]).toBe('subject,date,in,out,minutes,incomplete,needs_review,in_event,out_event');
    expect(lines.slice(1)).toEqual([
      `${EMP_A},2026-03-02,2026-03-02T08:00:00+01:00,2026-03-02T12:00:00+01:00,240,,no,${ids.a1},${ids.a2}`,
      `${EMP_A},2026-03-02,2026-03-02T12:30:00+01:00,2026-03-02T17:15:00+01:00,285,,no,${ids.a3},${ids.a4}`,
      `${EMP_A},2026-03-03,2026-03-03T08:00:00+01:00,,,missing-out,no,${ids.a5},`,
      `${EMP_A},2026-03-04,2026-03-04T09:00:00+01:00,2026-03-04T17:00:00+01:00,480,,yes,${ids.a6},${ids.a7}`,
    ]);
  });

  it('refuses bad ranges and unknown time zones with clear errors', async () => {
    for (const q of ['from=2026-02-30&to=2026-03-01', 'from=2026-03-05&to=2026-03-01', 'from=2025-01-01&to=2026-03-01', 'from=2026-03-01', 'from=03/01/2026&to=2026-03-02']) {
      const r = await h.api('GET', `/v1/tenants/acme/timesheets?${q}`, { token: owner });
      expect(r.status, q).toBe(400);
      expect(r.json.error, q).toBeTruthy();
    }
    const tz = await h.api('PUT', '/v1/tenants/acme/settings', { token: owner, body: { timeZone: 'Mars/Olympus_Mons' } });
    expect(tz.status).toBe(400);
    expect(tz.json.error).toMatch(/IANA time zone/);
  });

  it('is in the OpenAPI document', async () => {
    const doc = (await h.api('GET', '/openapi.json')).json;
    const op = doc.paths['/v1/tenants/{tenant}/timesheets'].get;
    expect(op.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['format', 'from', 'subject', 'tenant', 'to']);
  });
});
