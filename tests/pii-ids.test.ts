import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH } from '../demo/processes.js';
import { emptyFrame } from '../demo/people.js';
import { buildSite, type Site } from '../demo/site.js';
import { cardHash } from '../protocol/index.js';
import { poll } from './support/wait.js';

/*
 * Issue 18 item 4 over real processes as the demo runs them: personal data typed into the
 * admin API as an id is refused, and what an admin may type freely (an access group's name)
 * stays in the cloud — the door terminal grants by the group's opaque id, and none of the
 * names is anywhere in the terminal's database files (database, WAL, shared memory).
 */
const root = join(import.meta.dirname, '..');
const GROUP = 'bob-smith-ssn-123456789';
let work: string;
let site: Site;

const terminalFiles = () => {
  const dir = join(work, 'data', 'door-1');
  const all = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? all(join(d, e.name)) : [join(d, e.name)]));
  return all(dir).filter((f) => /\.(db|sqlite)(-wal|-shm)?$/.test(f));
};

beforeAll(async () => {
  if (!existsSync(CLI_PATH)) execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  work = mkdtempSync(join(tmpdir(), 'cf-pii-ids-'));
  site = await buildSite(
    work,
    [{ id: 'door-1', mode: 'access', firstFrame: await emptyFrame(), policy: { credentials: 'card-only', photoAtPunch: false, access: { pulseMs: 100, groups: { [GROUP]: 'always' } } } }],
    () => {},
  );
}, 180_000);

afterAll(async () => {
  await site?.stop();
  if (work && !process.env.CF_KEEP) rmSync(work, { recursive: true, force: true });
});

describe('ids that reach terminals', () => {
  it('PII-shaped ids are refused at the API', async () => {
    const subject = await site.api('POST', '/v1/tenants/acme/subjects', { subject: 'ana-garcia', cardHashes: [cardHash(site.pepper, '1001')] });
    expect(subject.status).toBe(400);
    const email = await site.api('POST', '/v1/tenants/acme/subjects', { cardHashes: [cardHash(site.pepper, '1001')], consent: { policyVersion: 'ana.garcia@example.com' } });
    expect(email.status).toBe(400);
    const policy = await site.api('PUT', '/v1/tenants/acme/devices/door-1/policy', { policy: { access: { groups: { staff: 'Ana Garcia' } } } });
    expect(policy.status).toBe(400);
    expect((await site.api('GET', '/v1/tenants/acme/commands')).json.commands).toEqual([]);
  });

  it('a group named with personal data works at the door by its id; the name never reaches the terminal', async () => {
    const r = await site.api('POST', '/v1/tenants/acme/subjects', { cardHashes: [cardHash(site.pepper, '1001')], accessGroups: [GROUP] });
    expect(r.status).toBe(201);
    await poll('the enrollment applied', async () => ((await site.api('GET', '/v1/tenants/acme/commands')).json.commands ?? []) as Array<{ state: string }>, (c) => c.length > 0 && c.every((x) => x.state === 'applied'));

    await site.key('door-1', '1001');
    const [punch] = await poll('the punch at the cloud', async () => ((await site.api('GET', '/v1/tenants/acme/punches')).json.punches ?? []) as Array<Record<string, unknown>>, (p) => p.length === 1);
    expect(punch).toMatchObject({ subject: r.json.subject, decision: 'granted' });
    expect(site.relayPulses('door-1')).toBe(1);

    const files = terminalFiles();
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const bytes = readFileSync(f);
      expect({ file: f, holdsName: bytes.includes(Buffer.from('bob-smith')) }).toEqual({ file: f, holdsName: false });
    }
  });
});
