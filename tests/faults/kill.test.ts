import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { CLI_PATH } from '../../demo/processes.js';
import { emptyFrame } from '../../demo/people.js';
import { buildSite, type Site } from '../../demo/site.js';
import { cardHash } from '../../protocol/index.js';
import { FUZZ_SEED, seededRandom } from '../fuzz/seeds.js';
import { writeSkew } from '../support/clock-skew.js';
import { allPunches, loggedPunches, outOfOrder, type CloudPunch } from '../support/punches.js';
import { logFile, refusals, refusalsWithoutReason } from '../support/refusals.js';
import { badgeAccount, lifetimes, outcomes, total } from '../support/badges.js';

/*
 * Fault injection on a real site (cloud, gateway and a terminal as separate processes, from
 * provisioned bundles): a steady stream of badges while the gateway, the cloud and the terminal
 * are each SIGKILLed at seeded random points and started again. Afterwards every punch the
 * terminal recorded is at the cloud exactly once, and nothing else is; and every badge is
 * accounted for: not delivered (the reader was down), a punch, a refusal with its logged
 * reason, or lost to the terminal's SIGKILL between read and commit, counted explicitly and
 * bounded by what was in flight at the kill. CI runs a short stream;
 * `npm run soak` (CLOCKFACE_SOAK=1) runs 10,000 badges.
 */
const BADGES = process.env.CLOCKFACE_SOAK ? 10_000 : 240;
/** A test's time grows with its badges (the soak's 10,000 take the better part of an hour on a busy machine). */
const TIMEOUT = 300_000 + BADGES * 200;
const root = join(import.meta.dirname, '..', '..');
const skewModule = join(root, 'dist/tests/support/clock-skew.js');
const HOUR = 3_600_000;
let work: string;
let site: Site;
/** Wall-clock offsets (ms) the processes read on every Date.now(): the site's (gateway and terminal) and the cloud's. */
let siteSkew: string;
let cloudSkew: string;
const skewed = (file: string) => ({ NODE_OPTIONS: `--import=${skewModule}`, CF_TEST_CLOCK_SKEW_FILE: file });
const atCloud = () => allPunches(site.api);
const siteLogs = () => ['gateway', 'cloud', 'door-1'].flatMap((name) => logFile(join(work, 'logs', `${name}.log`)));
/**
 * Messages refused anywhere on the site (a connection cut by a kill is not a message; a badge
 * the terminal did not take is accounted for with the badges).
 */
const refusedMessages = () =>
  refusals(siteLogs())
    .filter((l) => !/^(connection refused|TLS handshake refused|trigger ignored)/.test(l.msg))
    .map((l) => l.msg);
/** The terminal's FIFO behind the decision in flight (policy.queue.size, default). */
const QUEUE_SIZE = 4;

beforeAll(async () => {
  if (!existsSync(CLI_PATH) || !existsSync(skewModule)) execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  work = mkdtempSync(join(tmpdir(), 'cf-faults-'));
  siteSkew = join(work, 'site-skew-ms');
  cloudSkew = join(work, 'cloud-skew-ms');
  writeSkew(siteSkew, 0);
  writeSkew(cloudSkew, 0);
  site = await buildSite(
    work,
    [{ id: 'door-1', mode: 'access', firstFrame: await emptyFrame(), policy: { credentials: 'card-only', photoAtPunch: false, access: { pulseMs: 100, groups: { staff: 'always' } } }, env: skewed(siteSkew) }],
    () => {},
    { gateway: skewed(siteSkew), cloud: skewed(cloudSkew) },
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
  if (work && !process.env.CF_KEEP) rmSync(work, { recursive: true, force: true });
});

describe('SIGKILL of the gateway, the cloud and a terminal during a badge stream', () => {
  it(`loses no punch and duplicates none (seed ${FUZZ_SEED}, ${BADGES} badges)`, async () => {
    const rand = seededRandom(FUZZ_SEED);
    const victims = ['gateway', 'cloud', 'door-1'];
    // Seeded kill points, spread over the stream.
    const kills = new Map<number, string>();
    for (const victim of victims) kills.set(Math.floor(BADGES * (0.1 + 0.8 * rand())), victim);
    const killed: string[] = [];
    const restarts: Promise<void>[] = [];
    // Each badge: its bytes reached the terminal's reader socket, or not (the terminal was down);
    // and when: before the terminal's SIGKILL (only its first life could read them), while it
    // was killed and started again (either life), or after (only the second life).
    let notDelivered = 0;
    const delivered = { before: 0, during: 0, after: 0 };
    let terminalPhase: keyof typeof delivered = 'before';
    for (let i = 0; i < BADGES; i++) {
      const victim = kills.get(i);
      if (victim) {
        // The stream goes on while the victim is down and starting again.
        if (victim === 'door-1') terminalPhase = 'during';
        restarts.push(site.restart(victim, 'SIGKILL').finally(() => victim === 'door-1' && (terminalPhase = 'after')));
        killed.push(victim);
      }
      const phase = terminalPhase;
      await site.key('door-1', '1001').then(
        () => delivered[phase]++,
        () => notDelivered++, // the reader is down with its terminal: the badge was not read, and the employee saw no sign of it
      );
      await new Promise((r) => setTimeout(r, 15 + Math.floor(rand() * 20)));
    }
    await Promise.all(restarts);
    expect(killed.sort()).toEqual([...victims].sort());
    expect(total(delivered) + notDelivered).toBe(BADGES);

    const doorLog = join(work, 'logs', 'door-1.log');
    await settled(doorLog, delivered.after);
    // The terminal's two lives: the one SIGKILLed, and the one started after it.
    const lives = lifetimes(doorLog).map((l) => badgeAccount(l.lines));
    expect(lives).toHaveLength(2);
    const [killedLife, nextLife] = lives as [ReturnType<typeof badgeAccount>, ReturnType<typeof badgeAccount>];

    const sent = loggedPunches(doorLog);
    const recorded = new Set(sent);
    let rows: CloudPunch[] = [];
    for (let i = 0; i < 600 + BADGES; i++) {
      rows = await atCloud().catch(() => []);
      if (rows.length >= recorded.size) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const ids = rows.map((r) => r.eventId);
    expect(new Set(ids).size).toBe(ids.length); // nothing twice
    for (const id of recorded) expect(ids, `punch ${id} lost`).toContain(id); // nothing lost
    // A punch recorded in the instant before a SIGKILL may miss its log line; never more than the kills.
    const unloggedPunches = ids.length - recorded.size;
    expect(unloggedPunches).toBeLessThanOrEqual(1);

    // Every badge accounted for. The life that ended normally decided every card it read.
    expect(outcomes(nextLife)).toBe(nextLife.reads);
    // The SIGKILLed life: cards read but not decided (the decision in flight and the FIFO
    // behind it), less a punch that reached the outbox without its log line.
    const lostInFlight = killedLife.reads - outcomes(killedLife) - unloggedPunches;
    expect(lostInFlight).toBeGreaterThanOrEqual(0);
    expect(lostInFlight).toBeLessThanOrEqual(1 + QUEUE_SIZE);
    // Bytes delivered to the reader socket but never read. The second life read every badge
    // sent after the restart, and the first read no more than were sent before it died: so
    // every unread badge is provably one the SIGKILLed life had been sent.
    expect(nextLife.reads).toBeGreaterThanOrEqual(delivered.after);
    expect(killedLife.reads).toBeLessThanOrEqual(delivered.before + delivered.during);
    const lostUnread = total(delivered) - killedLife.reads - nextLife.reads;
    expect(lostUnread).toBeGreaterThanOrEqual(0);
    const account = {
      badges: BADGES,
      notDelivered,
      punches: total(killedLife.punches) + total(nextLife.punches) + unloggedPunches,
      refused: sumByReason(killedLife.ignored, nextLife.ignored),
      lostToKill: { inFlight: lostInFlight, unread: lostUnread },
    };
    console.log(JSON.stringify(account));
    expect(account.notDelivered + account.punches + total(account.refused) + lostInFlight + lostUnread).toBe(BADGES);
    expect(account.punches).toBe(ids.length);
    // The cloud received them in the order the terminal sent them, kills or not.
    expect(outOfOrder(sent, rows)).toEqual([]);
    // Only genuine punches were sent: the refusals expected are none, at the gateway (publish),
    // the cloud (ingest) and the terminal (receipts, commands); whatever was refused says why.
    expect(refusedMessages()).toEqual([]);
    expect(refusalsWithoutReason(siteLogs())).toEqual([]);
  }, TIMEOUT);

  it('the cloud down for a day (site clocks stepped through 24 h, a gateway reboot overnight): drains exactly once, times as recorded', async () => {
    const before = new Set((await atCloud()).map((p) => p.eventId));
    const doorLog = join(work, 'logs', 'door-1.log');
    const loggedBefore = new Set(loggedPunches(doorLog));
    await site.stopCloud();
    // The day in four parts; before each, the gateway's and the terminal's wall clocks step
    // forward six hours (monotonic time does not), and the gateway reboots at "midnight".
    const perPart = Math.max(4, Math.round(BADGES / 8));
    type Part = { skew: number; from: number; to: number; ids: string[] };
    const parts: Part[] = [];
    for (let q = 0; q < 4; q++) {
      const skew = q * 6 * HOUR;
      writeSkew(siteSkew, skew);
      if (q === 2) await site.restart('gateway', 'SIGTERM');
      const seen = new Set(loggedPunches(doorLog));
      const readBefore = badgeAccount(lifetimes(doorLog).at(-1)!.lines).reads;
      let delivered = 0;
      const from = Date.now();
      for (let i = 0; i < perPart; i++) {
        await site.key('door-1', '1001').then(() => delivered++, () => undefined);
        await new Promise((r) => setTimeout(r, 20));
      }
      await settled(doorLog, readBefore + delivered); // every badge of this part read and decided (a queue drains after the stream)
      parts.push({ skew, from, to: Date.now(), ids: loggedPunches(doorLog).filter((id) => !seen.has(id)) });
    }
    const made = loggedPunches(doorLog).filter((id) => !loggedBefore.has(id));
    expect(made).toEqual(parts.flatMap((p) => p.ids));
    expect(made.length).toBeGreaterThan(2 * perPart);
    // The day is over: the cloud comes back at the end of it, its clock a day on as well.
    writeSkew(siteSkew, 24 * HOUR);
    writeSkew(cloudSkew, 24 * HOUR);
    await site.startCloud();
    let rows: CloudPunch[] = [];
    for (let i = 0; i < 600 + BADGES; i++) {
      rows = await atCloud().catch(() => []);
      if (rows.length >= before.size + made.length) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const fresh = rows.filter((r) => !before.has(r.eventId));
    expect(new Set(fresh.map((r) => r.eventId)).size).toBe(fresh.length); // nothing twice
    expect(fresh.map((r) => r.eventId).sort()).toEqual([...made].sort()); // nothing lost, nothing else
    expect(outOfOrder(made, rows)).toEqual([]);
    const byId = new Map(rows.map((r) => [r.eventId, r]));
    const reasons = (r: CloudPunch) => (Array.isArray(r.reviewReasons) ? r.reviewReasons : (JSON.parse(r.reviewReasons) as string[]));
    for (const [q, part] of parts.entries()) {
      for (const [i, id] of part.ids.entries()) {
        const p = byId.get(id)!;
        // The time the terminal recorded, on its own (stepped) clock, hours before the cloud saw it.
        expect(p.wallTime, `part ${q} punch ${i}`).toBeGreaterThanOrEqual(part.from + part.skew);
        expect(p.wallTime, `part ${q} punch ${i}`).toBeLessThanOrEqual(part.to + part.skew);
        expect(p.receivedAt - p.wallTime).toBeGreaterThanOrEqual((4 - q) * 6 * HOUR); // the cloud saw it at the day's end
        // The first punch after a step says so and is flagged; a punch that waited out the day is not.
        const stepped = q > 0 && i === 0;
        expect(p.clockSync, `part ${q} punch ${i}`).toBe(stepped ? 'stepped' : 'synced');
        expect(p.reviewState, `part ${q} punch ${i}`).toBe(stepped ? 'open' : 'none');
        if (stepped) expect(reasons(p)).toContain('clock-unsynced');
      }
    }
    // Receipts signed a day later were taken and commands still flow: nothing refused anywhere.
    expect(refusedMessages()).toEqual([]);
    expect(refusalsWithoutReason(siteLogs())).toEqual([]);
  }, TIMEOUT);
});

/** Waits until the terminal's current life has read `reads` cards (at least) and logged an outcome for every one. */
async function settled(file: string, reads = 0): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const current = badgeAccount(lifetimes(file).at(-1)!.lines);
    if (current.reads >= reads && outcomes(current) >= current.reads) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Refusals of both lives, by reason. */
function sumByReason(...parts: Array<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of parts) for (const [reason, n] of Object.entries(part)) out[reason] = (out[reason] ?? 0) + n;
  return out;
}
