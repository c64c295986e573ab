/**
 * `npm run demo`: a working site on this machine, then a scripted day at it. Provisioning,
 * cloud, gateway and two terminals (a door and a time clock) run as separate processes over
 * loopback with real TLS; employees are enrolled from face photos through the cloud's admin
 * API; every outcome is read back from what the system itself reports (the cloud's punches,
 * commands and photos, the gateway's queue, the relay's GPIO record), never from the script's
 * own bookkeeping. Exits 0 only when every expected outcome happened.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { cardHash, hashPin } from '../protocol/index.js';
import { castFromSamples, emptyFrame, type Person } from './people.js';
import { buildSite, type Site } from './site.js';
import { Timeline } from './timeline.js';

type Punch = Record<string, unknown> & { eventId: string; device: string; subject: string | null; decision: string; credential: string; reasons: unknown; scores: unknown };

const USAGE = 'usage: clockface demo [--keep-running] [--json-summary FILE (default ./.demo/summary-TIME.json)] [--dir DIR]';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { 'keep-running': { type: 'boolean' }, 'json-summary': { type: 'string' }, dir: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const work = values.dir ?? mkdtempSync(join(tmpdir(), 'clockface-demo-'));
  // Outside the work folder, which a passing run removes: the summary stays where it says it is.
  const summaryFile = values['json-summary'] ?? join(process.cwd(), '.demo', `summary-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(resolve(summaryFile)), { recursive: true });
  const t = new Timeline(DAY_STEPS);
  t.note('Clockface demo: one site on this machine, every part a separate process over loopback TLS.');
  t.note('Camera frames are replayed from photos that ship with @vladmandic/face-api; the card reader,');
  t.note('keypad and door relay are simulators. Everything else is the real software.');

  let site: Site | undefined;
  try {
    const cast = await castFromSamples(4);
    const [ana, ben, carl, dora] = cast as [Person, Person, Person, Person];
    const nobody = await emptyFrame();
    site = await buildSite(
      work,
      [
        { id: 'door-1', mode: 'access', firstFrame: nobody, policy: { credentials: 'card+face', access: { door: 'main-entrance', pulseMs: 500, groups: { staff: 'always' } } } },
        { id: 'clock-1', mode: 'timekeeping', firstFrame: nobody, policy: { credentials: 'card-or-face', timekeeping: { action: 'auto', debounceMs: 60_000 } } },
      ],
      (text) => t.note(text),
    );
    await day(t, site, { ana, ben, carl, dora }, nobody);
  } catch (err) {
    t.fail((err as Error).message); // a throw outside a step: the day is partial, the demo fails
  }

  console.log(`\n${t.summaryTable()}\n`);
  t.writeJson(summaryFile, { workDir: work, bundles: site?.bundles ?? null });
  console.log(`JSON summary: ${summaryFile}`);
  if (values['keep-running'] && site) {
    printWhereThingsAre(site);
    await new Promise<void>((done) => {
      process.once('SIGINT', done);
      process.once('SIGTERM', done);
    });
  }
  await site?.stop();
  if (!values['keep-running'] && !values.dir && t.allOk) rmSync(work, { recursive: true, force: true });
  else console.log(`logs and data kept in ${work}`);
  return t.allOk ? 0 : 1;
}

/** How many steps day() runs (demo/timeline.test.ts checks this against the steps below). */
export const DAY_STEPS = 15;

async function day(t: Timeline, site: Site, cast: Record<'ana' | 'ben' | 'carl' | 'dora', Person>, nobody: Buffer): Promise<void> {
  const { ana, ben, carl, dora } = cast;
  const punches = async () => ((await site.api('GET', '/v1/tenants/acme/punches?limit=5000')).json.punches ?? []) as Punch[];
  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe().catch(() => undefined);
      if (v) return v;
      if (Date.now() > until) throw new Error(`gave up waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 150));
    }
  };
  /** The next punch from a terminal that the cloud has stored (after `known` punches). */
  const nextPunch = async (device: string, seen: Set<string>) =>
    waitFor(`a punch from ${device} at the cloud`, async () => (await punches()).find((p) => p.device === device && !seen.has(p.eventId)));
  const seenIds = async () => new Set((await punches()).map((p) => p.eventId));
  const pulsesAfter = async (terminal: string, before: number, settleMs = 1200) => {
    await new Promise((r) => setTimeout(r, settleMs));
    return site.relayPulses(terminal) - before;
  };
  const describe = (p: Punch) => `${p.decision} (${p.credential}${Array.isArray(p.reasons) && p.reasons.length ? `: ${(p.reasons as string[]).join(', ')}` : ''})`;
  const similarity = (p: Punch) => ((p.scores as { similarity?: number | null } | null)?.similarity ?? null);

  await t.step('every service started and reported READY=1 to its supervisor', 'cloud, gateway, door-1, clock-1', async () =>
    [...site.processes.values()].filter((p) => p.notifications.some((n) => n.split('\n').includes('READY=1'))).map((p) => p.name).join(', '),
  );
  await t.step('both terminals connected to the gateway over mTLS (presence at the cloud)', 'door-1 online, clock-1 online', async () => {
    const online = await waitFor('presence', async () => {
      const list = ((await site.api('GET', '/v1/tenants/acme/devices')).json.devices ?? []) as Array<{ device: string; presence: string | null }>;
      const state = Object.fromEntries(list.map((d) => [d.device, d.presence]));
      return state['door-1'] === 'online' && state['clock-1'] === 'online' ? state : undefined;
    });
    return `door-1 ${online['door-1']}, clock-1 ${online['clock-1']}`;
  });

  // --- Enrollment through the admin API: signed, sealed commands carry it to the terminals.
  const enroll = async (card: string, person: Person | null, extra: Record<string, unknown> = {}) => {
    const r = await site.api('POST', '/v1/tenants/acme/subjects', {
      cardHashes: [cardHash(site.pepper, card)],
      accessGroups: ['staff'],
      consent: { policyVersion: 'v1' },
      referencePhotos: person ? [person.reference.toString('base64')] : [],
      ...extra,
    });
    if (r.status !== 201) throw new Error(`enrollment refused: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json.subject as string;
  };
  let ids: Record<string, string> = {};
  await t.step('four employees enrolled; every terminal applied the signed commands', '8 of 8 commands applied', async () => {
    ids = {
      ana: await enroll('1001', ana),
      ben: await enroll('1002', null), // no reference photo yet: it comes later in the day
      carl: await enroll('1003', carl),
      dora: await enroll('1004', dora, { pinHash: hashPin(site.pepper, '2468') }),
    };
    const applied = await waitFor('commands applied', async () => {
      const cmds = ((await site.api('GET', '/v1/tenants/acme/commands')).json.commands ?? []) as Array<{ state: string; type: string }>;
      const enrolls = cmds.filter((c) => c.type === 'enroll-subject');
      return enrolls.length === 8 && enrolls.every((c) => c.state === 'applied') ? enrolls.length : undefined;
    }, 60_000);
    return `${applied} of 8 commands applied`;
  });

  // --- 08:55 Ana badges at the door and looks at the camera.
  let seen = await seenIds();
  let pulses = site.relayPulses('door-1');
  site.show('door-1', ana.frame);
  await new Promise((r) => setTimeout(r, 300));
  await site.key('door-1', '1001');
  await t.step('Ana: badge + face at the door → granted, relay pulsed', 'granted (card+face), 1 pulse', async () => {
    const p = await nextPunch('door-1', seen);
    return `${describe(p)}, ${await pulsesAfter('door-1', pulses)} pulse`;
  });

  // --- 09:02 someone holds Ana's badge but is not Ana.
  seen = await seenIds();
  pulses = site.relayPulses('door-1');
  site.show('door-1', carl.frame);
  await new Promise((r) => setTimeout(r, 300));
  await site.key('door-1', '1001');
  await t.step("impostor with Ana's badge → denied, no relay pulse", 'denied (card+face: face-mismatch), 0 pulses', async () => {
    const p = await nextPunch('door-1', seen);
    return `${describe(p)}, ${await pulsesAfter('door-1', pulses)} pulses`;
  });
  site.show('door-1', nobody);

  // --- 09:05 Carl clocks in at the time clock by face alone.
  seen = await seenIds();
  site.show('clock-1', carl.frame);
  await t.step('Carl: face only at the time clock → clock-in', `granted (face) for Carl, action in`, async () => {
    const p = await nextPunch('clock-1', seen);
    return `${describe(p)} for ${p.subject === ids.carl ? 'Carl' : 'someone else'}, action ${String(p.action)}`;
  });
  site.show('clock-1', nobody);

  // --- 09:30 Dora withdraws face consent; she uses badge + PIN from now on.
  await t.step("Dora withdraws face consent: the terminals drop her template", 'withdrawal applied on 2 terminals', async () => {
    const r = await site.api('POST', `/v1/tenants/acme/subjects/${ids.dora}/consent`, { state: 'withdrawn', policyVersion: 'v1' });
    if (r.status !== 200) throw new Error(`consent refused: ${r.status}`);
    const n = await waitFor('withdrawal applied', async () => {
      const cmds = ((await site.api('GET', `/v1/tenants/acme/commands?subject=${ids.dora}`)).json.commands ?? []) as Array<{ state: string; type: string }>;
      const later = cmds.filter((c) => c.type !== 'enroll-subject');
      return later.length >= 2 && later.every((c) => c.state === 'applied') ? later.length : undefined;
    });
    return `withdrawal applied on ${n} terminals`;
  });
  seen = await seenIds();
  pulses = site.relayPulses('door-1');
  site.show('door-1', dora.frame);
  await site.key('door-1', '1004');
  await new Promise((r) => setTimeout(r, 500)); // the screen asks for her PIN
  await site.key('door-1', '2468#');
  await t.step('Dora: badge + PIN at the door (no face used) → granted', 'granted (card+pin), 1 pulse', async () => {
    const p = await nextPunch('door-1', seen);
    return `${describe(p)}, ${await pulsesAfter('door-1', pulses)} pulse`;
  });
  site.show('door-1', nobody);

  // --- 11:00 the cloud is unreachable; the site keeps working and keeps every punch.
  const beforeOutage = await seenIds();
  await site.stopCloud();
  t.note('the cloud is down (process stopped); terminals keep deciding, the gateway keeps every punch on disk');
  const outagePulses = site.relayPulses('door-1');
  site.show('door-1', ana.frame);
  for (let i = 0; i < 3; i++) {
    await site.key('door-1', '1001');
    // One badge at a time: a grant while the last pulse still runs extends it (one pulse, two grants).
    await waitFor('the door to open and close for Ana', async () => site.relayPulses('door-1') - outagePulses > i && site.relayIdle('door-1'), 15_000).catch(() => undefined);
  }
  site.show('door-1', nobody);
  await t.step('cloud down: the door still opens for Ana; punches wait in the gateway queue', '3 pulses, 3 punches queued at the gateway', async () => {
    const depth = await waitFor('queued punches', async () => {
      const metrics = await (await fetch(`http://127.0.0.1:${site.gatewayOpsPort}/metrics`)).text();
      const m = /^cf_gateway_backlog_depth(?:\{[^}]*\})?\s+(\d+)/m.exec(metrics);
      const n = m ? Number(m[1]) : 0;
      // The last pulse may still be running (500 ms) when its punch is queued: wait for both.
      return n >= 3 && site.relayPulses('door-1') - outagePulses >= 3 ? n : undefined;
    });
    return `${site.relayPulses('door-1') - outagePulses} pulses, ${depth} punches queued at the gateway`;
  });
  await site.startCloud();
  await t.step('cloud back: the backlog drains, each punch stored exactly once', '3 new punches, no duplicates', async () => {
    const all = await waitFor('the backlog', async () => {
      const list = await punches();
      return list.filter((p) => !beforeOutage.has(p.eventId)).length >= 3 ? list : undefined;
    }, 60_000);
    const unique = new Set(all.map((p) => p.eventId)).size;
    return `${all.filter((p) => !beforeOutage.has(p.eventId)).length} new punches, ${unique === all.length ? 'no duplicates' : `${all.length - unique} duplicates`}`;
  });

  // --- Re-check: the cloud scores each punch photo against the reference (local face engine).
  await t.step('re-check scores arrive for punch photos (0..1), the impostor flagged for review', 'Ana re-checked as a match; impostor flagged', async () => {
    const list = await waitFor('re-check results', async () => {
      const all = await punches();
      const ana = all.filter((p) => p.subject === ids.ana && typeof p.photoId === 'string');
      return ana.length > 0 && ana.every((p) => p.recheckState === 'done') ? all : undefined;
    }, 90_000);
    const anaOk = list.find((p) => p.subject === ids.ana && p.decision === 'granted' && p.recheckState === 'done' && (p.recheckSimilarity as number) >= 0.6 && (p.recheckSimilarity as number) <= 1);
    const impostor = list.find((p) => p.subject === ids.ana && p.decision === 'denied' && p.recheckState === 'done');
    return `Ana re-checked as ${anaOk ? 'a match' : 'no match'}; impostor ${impostor?.reviewState === 'open' ? 'flagged' : `not flagged (${String(impostor?.reviewState)})`}`;
  });

  // --- 14:00 Ben has no reference photo yet: his badge alone does not open the door.
  seen = await seenIds();
  site.show('door-1', ben.frame);
  await site.key('door-1', '1002');
  await t.step('Ben without a reference photo → denied', 'denied (card+face: no-template)', async () => describe(await nextPunch('door-1', seen)));
  await t.step("the admin pushes Ben's reference photo; the terminals compute his template", 'reference applied on 2 terminals', async () => {
    const r = await site.api('PUT', `/v1/tenants/acme/subjects/${ids.ben}/reference`, { referencePhotos: [ben.reference.toString('base64')] });
    if (r.status !== 200) throw new Error(`reference refused: ${r.status} ${JSON.stringify(r.json)}`);
    const n = await waitFor('reference applied', async () => {
      const cmds = ((await site.api('GET', `/v1/tenants/acme/commands?subject=${ids.ben}`)).json.commands ?? []) as Array<{ state: string; type: string }>;
      const later = cmds.filter((c) => c.type !== 'enroll-subject');
      return later.length >= 2 && later.every((c) => c.state === 'applied') ? later.length : undefined;
    });
    return `reference applied on ${n} terminals`;
  });
  seen = await seenIds();
  await new Promise((r) => setTimeout(r, 1500));
  await site.key('door-1', '1002');
  await t.step('Ben again, with the pushed reference → granted', 'granted (card+face)', async () => {
    const p = await nextPunch('door-1', seen);
    return describe(p) + (similarity(p) === null ? ' (no score)' : '');
  });
  site.show('door-1', nobody);

  // --- 17:00 Ana leaves the company. Retention is the tenant's setting: with a leaver delay of
  // 0 days her photos go at once; longer delays are the sweeper's job (cloud/retention.test.ts
  // runs the 90-day, 7-year and contract-end cases on a fake clock).
  await t.step('Ana leaves: her photos are deleted (tenant retention: leaver delay 0 days)', 'all of her photos deleted', async () => {
    const s = await site.api('PUT', '/v1/tenants/acme/settings', { leaverPhotoDays: 0 });
    if (s.status !== 200) throw new Error(`settings refused: ${s.status} ${JSON.stringify(s.json)}`);
    const mine = (await punches()).filter((p) => p.subject === ids.ana && typeof p.photoId === 'string');
    if (mine.length === 0) throw new Error('Ana has no punch photos to delete');
    const left = await site.api('POST', `/v1/tenants/acme/subjects/${ids.ana}/leave`);
    if (left.status !== 200) throw new Error(`leave refused: ${left.status}`);
    const gone = await waitFor('the sweep', async () => {
      const codes = await Promise.all(mine.map(async (p) => (await site.api('GET', `/v1/tenants/acme/photos/${String(p.photoId)}`)).status));
      return codes.every((c) => c === 404) ? codes.length : undefined;
    });
    return gone === mine.length ? 'all of her photos deleted' : `${gone} of ${mine.length} deleted`;
  });
}

function printWhereThingsAre(site: Site): void {
  console.log(`
Everything keeps running until Ctrl-C. Where things are:
  cloud API        ${site.cloudUrl}  (owner key: ${join(site.work, 'owner.key')}; CA: ${join(site.bundles, 'tenant', 'ca.crt')}; OpenAPI at /openapi.json)
  cloud metrics    http://127.0.0.1:${site.cloudOpsPort}/metrics
  gateway MQTT     mqtts://localhost:${site.gatewayPort}  (client certificates only)
  gateway metrics  http://127.0.0.1:${site.gatewayOpsPort}/metrics
${[...site.terminals.values()].map((t) => `  ${t.id.padEnd(16)} metrics http://127.0.0.1:${t.opsPort}/metrics; badge: echo 1001 | socat - UNIX-CONNECT:${t.readerFeed}; camera folder ${t.cameraDir}`).join('\n')}
  bundles          ${site.bundles}  (tenant/, gateways/site-1/, devices/*, integrations/door-panel/)
  logs             ${join(site.work, 'logs')}
Door decisions and terminal status, as a door-access panel reads them (its own integration certificate; docs/facilities-guide.md):
  ${site.integrationHint}`);
}
