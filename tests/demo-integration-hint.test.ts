import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH } from '../demo/processes.js';
import { emptyFrame } from '../demo/people.js';
import { buildSite, type Site } from '../demo/site.js';
import { cardHash } from '../protocol/index.js';
import { logFile } from './support/refusals.js';

/*
 * `npm run demo -- --keep-running` ends with a Mosquitto command to try. Run exactly that line
 * (site.integrationHint, which the demo prints) in a shell against a site built as the demo
 * builds it — provisioned bundles, cloud, gateway and a door terminal as separate processes —
 * and hold it to what it promises: the terminal's status and its door decision for a badge
 * arrive, with the integration's own certificate, and the terminal is never pushed off the broker.
 */
const root = join(import.meta.dirname, '..');
let work: string;
let site: Site;
let sub: ChildProcess | undefined;

beforeAll(async () => {
  if (!existsSync(CLI_PATH)) execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  work = mkdtempSync(join(tmpdir(), 'cf-demo-hint-'));
  site = await buildSite(work, [{ id: 'door-1', mode: 'access', firstFrame: await emptyFrame(), policy: { credentials: 'card-only', photoAtPunch: false, access: { pulseMs: 100, groups: { staff: 'always' } } } }], () => {});
  const r = await site.api('POST', '/v1/tenants/acme/subjects', { cardHashes: [cardHash(site.pepper, '1001')], accessGroups: ['staff'] });
  if (r.status !== 201) throw new Error(`enroll: ${r.status}`);
  for (let i = 0; i < 300; i++) {
    const cmds = ((await site.api('GET', '/v1/tenants/acme/commands')).json.commands ?? []) as Array<{ state: string }>;
    if (cmds.length > 0 && cmds.every((c) => c.state === 'applied')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
}, 180_000);

afterAll(async () => {
  sub?.kill('SIGKILL');
  await site?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 50));
}

describe('the demo\'s Mosquitto hint', () => {
  it('reads door-1\'s status and door decision with the integration certificate, and door-1 stays connected', async () => {
    expect(site.integrationHint).toMatch(/^mosquitto_sub .*--cert \S+\/integrations\/door-panel\/integration\.crt .*-t 'cf\/v1\/acme\/\+\/door'/);
    const gatewayLog = join(work, 'logs', 'gateway.log');
    const linesBefore = logFile(gatewayLog).length;
    sub = spawn('sh', ['-c', site.integrationHint], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    sub.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    sub.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    sub.once('exit', (code) => (err += `\n[exited ${code}]`));
    // door-1's status is retained: it arrives as soon as the subscription is in place.
    await until(() => /^cf\/v1\/acme\/door-1\/status \{.*"state":"online"/m.test(out) || err.includes('[exited'));
    expect(err).toBe('');
    await site.key('door-1', '1001');
    await until(() => /^cf\/v1\/acme\/door-1\/door \{.*"result":"granted"/m.test(out) || err.includes('[exited'));
    const decision = JSON.parse(out.split('\n').find((l) => l.startsWith('cf/v1/acme/door-1/door '))!.slice('cf/v1/acme/door-1/door '.length)) as Record<string, unknown>;
    expect(decision).toMatchObject({ type: 'door', tenant: 'acme', device: 'door-1', result: 'granted' });
    expect(site.relayPulses('door-1')).toBeGreaterThanOrEqual(1);

    const since = logFile(gatewayLog).slice(linesBefore);
    // The command connected as the integration, in a session of its own...
    expect(since.some((l) => l.msg === 'client connected' && String(l.session).startsWith('acme/integration/door-panel/'))).toBe(true);
    // ...and the terminal was never pushed off the broker (the old hint used door-1's own certificate).
    expect(since.filter((l) => l.msg === 'client disconnected' && l.session === 'acme/device/door-1')).toEqual([]);
    expect(since.filter((l) => l.msg === 'connection refused')).toEqual([]);
  }, 120_000);
});
