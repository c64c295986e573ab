import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCESS_GROUP_ID_REGEX, Command, newSubjectId, SUBJECT_ID_REGEX, verifyAndOpen } from '../protocol/index.js';
import { openDatabase } from './db.js';
import { startHarness, type Harness } from './testing/harness.js';

/**
 * Issue 18 item 4: personal data cannot be put into ids that reach terminals. Client-chosen
 * subject ids are refused unless in the opaque form; access groups reach terminals as opaque
 * ids whatever name the admin typed; a consent policy version is a version code. Checked on
 * the commands the cloud actually queues for a terminal, opened with the terminal's key.
 */
let h: Harness;
let owner: string;
beforeAll(async () => {
  h = await startHarness(['acme']);
  owner = h.tenants.get('acme')!.ownerKey;
  await h.addDevice('acme', 'door-1');
});
afterAll(async () => h?.close());

const enroll = (body: Record<string, unknown>) => h.api('POST', '/v1/tenants/acme/subjects', { token: owner, body });

/** The bodies of every command queued for door-1, as door-1 opens them. */
function commandsForDoor(): Command[] {
  const device = h.tenants.get('acme')!.devices.get('door-1')!;
  const admin = h.tenants.get('acme')!.keys.adminSigning;
  const rows = h.service.db.prepare("SELECT envelope FROM commands WHERE tenant = 'acme' AND device = 'door-1' AND envelope IS NOT NULL ORDER BY seq").pluck().all() as Buffer[];
  return rows.map(
    (envelope) =>
      verifyAndOpen(envelope, {
        expect: { kind: 'command', tenant: 'acme', device: 'door-1' },
        signers: (keyId) => (keyId === admin.keyId ? { keyId, key: admin.publicKey } : undefined),
        recipientKeys: [device.sealing],
        maxAgeMs: Number.MAX_SAFE_INTEGER,
        maxFutureMs: Number.MAX_SAFE_INTEGER,
        now: h.clock.now(),
        schema: Command,
      }).body,
  );
}

describe('PII-shaped ids are refused at the API', () => {
  it.each(['ana-garcia', 'ana.garcia@example.com', '123456789', 's-ana-garcia', `s-${'a'.repeat(21)}`])('a client-chosen subject id %j', async (subject) => {
    const r = await enroll({ subject, cardHashes: ['a'.repeat(64)] });
    expect(r.status).toBe(400);
    expect(h.service.db.prepare('SELECT COUNT(*) FROM subjects WHERE subject = ?').pluck().get(subject)).toBe(0);
  });

  it('a subject id in the opaque form, or none (the cloud makes it), is taken', async () => {
    const mine = newSubjectId();
    expect((await enroll({ subject: mine })).json).toMatchObject({ subject: mine });
    expect((await enroll({})).json.subject).toMatch(SUBJECT_ID_REGEX);
  });

  it.each(['ana.garcia@example.com', 'Ana Garcia', 'ana-garcia', 'v1 for bob'])('a consent policy version %j, at enrollment and when consent changes', async (policyVersion) => {
    expect((await enroll({ consent: { policyVersion } })).status).toBe(400);
    const { subject } = (await enroll({})).json as { subject: string };
    expect((await h.api('POST', `/v1/tenants/acme/subjects/${subject}/consent`, { token: owner, body: { state: 'granted', policyVersion } })).status).toBe(400);
  });

  it('version codes are taken as policy versions', async () => {
    for (const policyVersion of ['v1', '2026-01', '1.2', 'v3.0.1']) expect((await enroll({ consent: { policyVersion } })).status).toBe(201);
  });
});

describe('access groups reach terminals as opaque ids', () => {
  it('a group named with personal data is kept in the cloud; the terminal gets its id', async () => {
    const name = 'bob-smith-ssn-123456789';
    const r = await enroll({ cardHashes: ['b'.repeat(64)], accessGroups: [name, 'staff', name] });
    expect(r.status).toBe(201);
    const { subject } = r.json as { subject: string };

    const enrolled = commandsForDoor().find((c) => c.type === 'enroll-subject' && c.record.subject === subject);
    expect(enrolled?.type).toBe('enroll-subject');
    const groups = enrolled!.type === 'enroll-subject' ? enrolled!.record.accessGroups : [];
    expect(groups).toHaveLength(2);
    for (const g of groups) expect(g).toMatch(ACCESS_GROUP_ID_REGEX);
    expect(JSON.stringify(enrolled)).not.toContain('bob-smith');

    // Admins see both; the same name is the same group next time.
    const record = await h.api('GET', `/v1/tenants/acme/subjects/${subject}`, { token: owner });
    expect(record.json.accessGroups).toEqual([{ id: groups[0], name }, { id: groups[1], name: 'staff' }]);
    const list = (await h.api('GET', '/v1/tenants/acme/access-groups', { token: owner })).json.groups as Array<{ id: string; name: string }>;
    expect(list.find((g) => g.name === name)!.id).toBe(groups[0]);
    const again = await h.api('POST', '/v1/tenants/acme/access-groups', { token: owner, body: { name } });
    expect(again).toMatchObject({ status: 200, json: { id: groups[0], name } });
    // By id too; an id the directory does not hold is refused, not taken for a name.
    expect((await enroll({ accessGroups: [groups[1]] })).status).toBe(201);
    expect((await enroll({ accessGroups: ['g-aaaaaaaaaaaa'] })).status).toBe(400);
  });

  it('a policy pushed to a terminal carries group ids and schedule codes only', async () => {
    const sent = await h.api('PUT', '/v1/tenants/acme/devices/door-1/policy', {
      token: owner,
      body: { policy: { credentials: 'card-only', access: { groups: { 'Night shift (Ana Garcia)': 'night', staff: 'always' }, schedules: { night: [] } } } },
    });
    expect(sent.status).toBe(200);
    const cmd = commandsForDoor().find((c) => c.commandId === sent.json.commandId);
    expect(cmd?.type).toBe('config-update');
    const policy = (cmd as Extract<Command, { type: 'config-update' }>).config.policy as { access: { groups: Record<string, string> } };
    expect(Object.keys(policy.access.groups)).toHaveLength(2);
    for (const [id, schedule] of Object.entries(policy.access.groups)) {
      expect(id).toMatch(ACCESS_GROUP_ID_REGEX);
      expect(['night', 'always']).toContain(schedule);
    }
    expect(JSON.stringify(cmd)).not.toContain('Ana');

    const bad = (groups: Record<string, unknown>) => h.api('PUT', '/v1/tenants/acme/devices/door-1/policy', { token: owner, body: { policy: { access: { groups } } } });
    expect((await bad({ staff: 'Ana Garcia' })).status).toBe(400);
    expect((await bad({ 'g-aaaaaaaaaaaa': 'always' })).status).toBe(400);
    expect((await h.api('PUT', '/v1/tenants/acme/devices/door-9/policy', { token: owner, body: { policy: {} } })).status).toBe(404);
  });
});

describe('migration of a file written before the directory', () => {
  it('maps the access group names subjects hold to ids, once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cf-groups-'));
    try {
      const file = join(dir, 'cloud.db');
      const old = openDatabase(file);
      const insert = old.prepare("INSERT INTO subjects (tenant, subject, card_hashes, access_groups, face_consent, created_at, updated_at) VALUES (?, ?, '[]', ?, 0, 0, 0)");
      insert.run('acme', 's-1', JSON.stringify(['staff', 'bob-smith-ssn-123456789']));
      insert.run('acme', 's-2', JSON.stringify(['staff']));
      insert.run('globex', 's-1', JSON.stringify(['staff']));
      old.close();

      const db = openDatabase(file);
      const groups = (tenant: string, subject: string) => JSON.parse(db.prepare('SELECT access_groups FROM subjects WHERE tenant = ? AND subject = ?').pluck().get(tenant, subject) as string) as string[];
      const [staff, bob] = groups('acme', 's-1');
      expect(staff).toMatch(ACCESS_GROUP_ID_REGEX);
      expect(bob).toMatch(ACCESS_GROUP_ID_REGEX);
      expect(groups('acme', 's-2')).toEqual([staff]);
      expect(groups('globex', 's-1')[0]).not.toBe(staff); // each tenant has its own directory
      expect(db.prepare("SELECT name FROM access_groups WHERE tenant = 'acme' AND id = ?").pluck().get(bob)).toBe('bob-smith-ssn-123456789');
      db.close();
      const reopened = openDatabase(file);
      expect(JSON.parse(reopened.prepare("SELECT access_groups FROM subjects WHERE tenant = 'acme' AND subject = 's-1'").pluck().get() as string)).toEqual([staff, bob]);
      reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
