import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH } from '../demo/processes.js';
import { emptyFrame } from '../demo/people.js';
import { buildSite, type Site } from '../demo/site.js';
import { cardHash, copyKey, peekHeader, topics } from '../protocol/index.js';
import { flipEnvelopeByte } from '../protocol/fixtures.js';
import { logFile } from './support/refusals.js';
import { poll } from './support/wait.js';

/*
 * Issue 18 item 3 over real processes as the demo runs them (cloud, gateway and a time clock
 * from provisioned bundles): a delivered punch is replayed to the gateway over MQTT/TLS with
 * the terminal's own certificate from its bundle, with one byte flipped in its body, its
 * signature and its header. Each copy is refused by the cloud, recorded with its reason,
 * logged with the device, raised as an alarm the admin API lists — and the stored punch is
 * unchanged. One more copy reaches the gateway while the original is still queued there (the
 * cloud down): the gateway queues it under its copy key and logs it, and the cloud judges it
 * the same way once it is back.
 */
const root = join(import.meta.dirname, '..');
let work: string;
let site: Site;
let attacker: MqttClient | null = null;

const query = <T>(file: string, sql: string, ...args: unknown[]): T[] => {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...args) as T[];
  } finally {
    db.close();
  }
};
const gatewayDb = () => join(work, 'data', 'gateway', 'gateway.sqlite');
const cloudDb = () => join(work, 'data', 'cloud', 'cloud.db');
const punches = async () => ((await site.api('GET', '/v1/tenants/acme/punches?limit=5000')).json.punches ?? []) as Array<Record<string, unknown>>;
const alarms = async () => ((await site.api('GET', '/v1/tenants/acme/alarms?state=all')).json.alarms ?? []) as Array<Record<string, unknown>>;
const logOf = (name: string) => logFile(join(work, 'logs', `${name}.log`));

beforeAll(async () => {
  if (!existsSync(CLI_PATH)) execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  work = mkdtempSync(join(tmpdir(), 'cf-tamper-'));
  site = await buildSite(
    work,
    [{ id: 'clock-1', mode: 'timekeeping', firstFrame: await emptyFrame(), policy: { credentials: 'card-only', photoAtPunch: false, timekeeping: { action: 'auto', debounceMs: 0 } } }],
    () => {},
  );
  const r = await site.api('POST', '/v1/tenants/acme/subjects', { cardHashes: [cardHash(site.pepper, '1001')] });
  if (r.status !== 201) throw new Error(`enroll: ${r.status} ${JSON.stringify(r.json)}`);
  await poll('the enrollment applied', async () => ((await site.api('GET', '/v1/tenants/acme/commands')).json.commands ?? []) as Array<{ state: string }>, (c) => c.length > 0 && c.every((x) => x.state === 'applied'));
}, 180_000);

afterAll(async () => {
  attacker?.end(true);
  await site?.stop();
  if (work && !process.env.CF_KEEP) rmSync(work, { recursive: true, force: true });
});

describe('a delivered event replayed with one byte flipped', () => {
  it('in body, signature and header: each refused, recorded, logged, alarmed; the original punch unchanged', async () => {
    // A punch waits in the gateway's queue while the cloud is away: its exact bytes are read there.
    await site.stopCloud();
    await site.key('clock-1', '1001');
    const [queued] = await poll('the punch queued at the gateway', () => query<{ id: string; envelope: Buffer }>(gatewayDb(), 'SELECT id, envelope FROM events'), (rows) => rows.length === 1);
    const original = queued!.envelope;
    const eventId = peekHeader(original).id;

    // Whoever holds the terminal's bundle (its certificate and key) publishes as the terminal;
    // the real one is stopped so the two sessions do not take each other over.
    await site.processes.get('clock-1')!.stop();
    site.processes.delete('clock-1');
    const bundle = join(site.bundles, 'devices', 'clock-1');
    attacker = await mqtt.connectAsync({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port: site.gatewayPort,
      ca: readFileSync(join(bundle, 'ca.crt')),
      cert: readFileSync(join(bundle, 'device.crt')),
      key: readFileSync(join(bundle, 'device.key')),
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    const publish = (bytes: Buffer) => attacker!.publishAsync(topics.events('acme', 'clock-1'), bytes, { qos: 1 });

    // While the original is still queued: the gateway keeps the copy apart and says so.
    const early = flipEnvelopeByte(original, 'body');
    await publish(early);
    const keys = query<{ id: string }>(gatewayDb(), 'SELECT id FROM events ORDER BY seq').map((r) => r.id);
    expect(keys).toEqual([eventId, copyKey(eventId, early)]);
    const copyLine = await poll('the gateway’s log line', () => logOf('gateway').find((l) => l.queuedAs === copyKey(eventId, early)), (l) => l !== undefined);
    expect(copyLine).toMatchObject({ level: 40, device: 'clock-1', eventId });

    await site.startCloud();
    const before = (await poll('the punch at the cloud', punches, (p) => p.some((x) => x.eventId === eventId))).find((x) => x.eventId === eventId);
    await poll('the gateway queue drained', () => query(gatewayDb(), 'SELECT id FROM events'), (rows) => rows.length === 0);
    await poll('the early copy alarmed', alarms, (a) => a.length === 1);

    // After delivery: one flipped byte in each part.
    for (const part of ['body', 'signature', 'header'] as const) await publish(flipEnvelopeByte(original, part));
    const raised = await poll('four alarms', alarms, (a) => a.length === 4);

    expect(raised.map((a) => [a.kind, a.device, a.objectId, a.acknowledgedAt])).toEqual(Array(4).fill(['event.tampered', 'clock-1', eventId, null]));
    const rejections = query<{ device: string; event_id: string; code: string; reason: string }>(cloudDb(), 'SELECT device, event_id, code, reason FROM rejections ORDER BY id');
    expect(rejections).toHaveLength(4);
    for (const r of rejections) expect(r).toMatchObject({ device: 'clock-1', event_id: eventId, code: 'event.tampered', reason: expect.stringContaining('not the device') });
    const logged = await poll('four log lines', () => logOf('cloud').filter((l) => l.msg === 'event rejected'), (l) => l.length >= 4);
    expect(logged).toHaveLength(4);
    for (const l of logged) expect(l).toMatchObject({ level: 40, device: 'clock-1', eventId, code: 'event.tampered' });
    await poll('four alarm log lines', () => logOf('cloud').filter((l) => l.msg.startsWith('ALARM') && l.kind === 'event.tampered'), (l) => l.length === 4);
    const audit = ((await site.api('GET', '/v1/tenants/acme/audit?limit=5000')).json.entries ?? []) as Array<{ action: string }>;
    expect(audit.filter((e) => e.action === 'alarm.raised')).toHaveLength(4);

    // The stored punch is exactly as it was, and there is still only one.
    const after = await punches();
    expect(after).toHaveLength(1);
    expect(after[0]).toEqual(before);
  }, 240_000);
});
