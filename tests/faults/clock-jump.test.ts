import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyFrame } from '../../demo/people.js';
import { CLI_PATH } from '../../demo/processes.js';
import { buildSite, type Site } from '../../demo/site.js';
import { cardHash } from '../../protocol/index.js';
import { writeSkew } from '../support/clock-skew.js';
import { allPunches, loggedPunches, outOfOrder, type CloudPunch } from '../support/punches.js';
import { logFile, refusals } from '../support/refusals.js';

/*
 * A terminal's wall clock jumps while it works (someone sets it two hours ahead, then NTP pulls
 * it back an hour behind real time): the terminal process runs with a preloaded clock skew it
 * cannot tell from a real one. Every punch still reaches the cloud exactly once; the first
 * punch after each jump says "stepped", and punches stamped in the future are flagged for review.
 */
const root = join(import.meta.dirname, '..', '..');
const skewModule = join(root, 'dist/tests/support/clock-skew.js');
let work: string;
let skewFile: string;
let site: Site;

beforeAll(async () => {
  if (!existsSync(CLI_PATH) || !existsSync(skewModule)) execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  work = mkdtempSync(join(tmpdir(), 'cf-clock-'));
  skewFile = join(work, 'skew-ms');
  writeSkew(skewFile, 0);
  site = await buildSite(
    work,
    [
      {
        id: 'door-1',
        mode: 'access',
        firstFrame: await emptyFrame(),
        policy: { credentials: 'card-only', photoAtPunch: false, access: { pulseMs: 100, groups: { staff: 'always' } } },
        env: { NODE_OPTIONS: `--import=${skewModule}`, CF_TEST_CLOCK_SKEW_FILE: skewFile },
      },
    ],
    () => {},
  );
  const r = await site.api('POST', '/v1/tenants/acme/subjects', { cardHashes: [cardHash(site.pepper, '1001')], accessGroups: ['staff'] });
  if (r.status !== 201) throw new Error(`enroll: ${r.status}`);
  for (let i = 0; i < 200; i++) {
    const cmds = ((await site.api('GET', '/v1/tenants/acme/commands')).json.commands ?? []) as Array<{ state: string }>;
    if (cmds.length > 0 && cmds.every((c) => c.state === 'applied')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
}, 180_000);

afterAll(async () => {
  await site?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('a clock jump on a terminal', () => {
  it('loses nothing; the punch after each jump says "stepped"; future-stamped punches are flagged', async () => {
    const hour = 3_600_000;
    const phases = [0, 2 * hour, -hour, 0];
    for (const skew of phases) {
      writeSkew(skewFile, skew);
      for (let i = 0; i < 4; i++) {
        await site.key('door-1', '1001');
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const made = loggedPunches(join(work, 'logs', 'door-1.log'));
    expect(made).toHaveLength(16);
    type Row = CloudPunch;
    let rows: Row[] = [];
    for (let i = 0; i < 300 && rows.length < made.length; i++) {
      rows = await allPunches(site.api, { pageSize: 5 }); // small pages: the paging itself is under test too
      if (rows.length < made.length) await new Promise((r) => setTimeout(r, 100));
    }
    expect(rows.map((r) => r.eventId).sort()).toEqual([...made].sort()); // each exactly once
    expect(outOfOrder(made, rows)).toEqual([]); // a jumping wall clock does not reorder them
    const byId = new Map(rows.map((r) => [r.eventId, r]));
    const inOrder = made.map((id) => byId.get(id)!);
    // The first punch of each phase after the first follows a jump.
    for (const first of [4, 8, 12]) expect(inOrder[first]!.clockSync, `punch ${first}`).toBe('stepped');
    const reasons = (r: Row) => (Array.isArray(r.reviewReasons) ? r.reviewReasons : (JSON.parse(r.reviewReasons) as string[]));
    for (const r of inOrder.slice(4, 8)) {
      expect(r.reviewState).toBe('open'); // stamped two hours in the future
      expect(reasons(r)).toContain('clock-unsynced');
    }
    for (const r of inOrder.slice(1, 4)) expect(r.reviewState).toBe('none');
    // Nothing was refused for its time: not the punches at the gateway or the cloud, not the
    // cloud's receipts or commands at the terminal (a refusal here is a time window somewhere).
    const logs = ['gateway', 'cloud', 'door-1'].flatMap((name) => logFile(join(work, 'logs', `${name}.log`)));
    expect(refusals(logs).map((l) => `${l.msg} ${String(l.reason ?? '')}`)).toEqual([]);
  }, 240_000);
});
