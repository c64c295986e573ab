import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { opaqueGroup, opaqueSubject } from '../protocol/fixtures.js';
import { PolicyHolder } from './commands.js';
import { Policy } from './policy.js';
import { DeviceStore } from './store.js';
import { startTestBroker, type TestBroker } from './test-support/broker.js';
import { connectCloudSide, enrollCommand, type CloudSide } from './test-support/cloud-side.js';
import { spawnTerminal, until, writeTerminalBundle, type TerminalBundle, type TerminalProcess } from './test-support/terminal-process.js';

/*
 * Issue 18 item 4 at the terminal: whatever a cloud or a holder of the admin key signs, a
 * subject id that is a name, an access group that is a name and a policy keyed by group names
 * are refused by the contract (protocol/schemas.ts). A real terminal process on the mTLS test
 * broker reports each as a rejected command-result, and none of that text reaches its
 * database files (db, WAL, SHM) or its log.
 */
const TENANT = 'acme';
const DEVICE = 'door-pii';
const NAME_AS_SUBJECT = 'ana-garcia';
const NAME_AS_GROUP = 'bob-smith-ssn-123456789';
const dir = mkdtempSync(join(tmpdir(), 'cf-pii-ids-'));

let broker: TestBroker;
let bundle: TerminalBundle;
let cloud: CloudSide;
let terminal: TerminalProcess;

const config = (policy: Record<string, unknown>) => ({
  tenant: TENANT,
  device: DEVICE,
  mode: 'access',
  dataDir: 'data',
  mqtt: { url: broker.url },
  hardware: { camera: { driver: 'none' }, gpio: { driver: 'simulator' }, pins: { relay: 17 } },
  policy,
  faceTrigger: { scanMs: 0 },
  ops: { port: 0 },
  log: { level: 'debug' },
});

/** Every byte of the terminal's data folder (database, WAL, SHM, key): where a stored id would be. */
function dataFolderBytes(): Buffer {
  const data = join(bundle.dir, 'data');
  return Buffer.concat(readdirSync(data).map((f) => readFileSync(join(data, f))));
}

async function rejection(body: Record<string, unknown>): Promise<string> {
  const result = await cloud.resultOf(cloud.send(body));
  expect(result.outcome).toBe('rejected');
  return result.reason ?? '';
}

beforeAll(async () => {
  broker = await startTestBroker(TENANT, DEVICE);
  bundle = writeTerminalBundle(join(dir, 'bundle'), { ca: broker.ca.certPem, cert: broker.device.certPem, key: broker.device.keyPem });
  cloud = await connectCloudSide(broker, { tenant: TENANT, device: DEVICE, ...bundle });
  terminal = await spawnTerminal(bundle, config({ credentials: 'card-only', access: { groups: { [opaqueGroup('staff')]: 'always' } } }));
  await until(() => terminal.log().includes('link connected'), 'the link');
  // The terminal subscribes to its command topic just after connecting: knock until it answers.
  let answered = false;
  for (let round = 0; !answered && round < 30; round++) {
    const id = cloud.send({ type: 'remote-unlock', door: 'door', pulseMs: null });
    for (let i = 0; i < 50 && !answered; i++) {
      answered = cloud.received.some((e) => e.type === 'command-result' && e.commandId === id);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  if (!answered) throw new Error(`the terminal never answered a command:\n${terminal.log()}`);
}, 60_000);

afterAll(async () => {
  terminal?.proc.kill('SIGKILL');
  terminal?.remove();
  await cloud?.close();
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a terminal refuses free text in the ids that reach it', () => {
  it('an enroll whose subject id is a name is rejected with the rule, not the name', async () => {
    const reason = await rejection(enrollCommand(bundle.pepper, NAME_AS_SUBJECT, '1001'));
    expect(reason).toMatch(/record\.subject: subject id must be "s-" and 20 base32 characters/);
    expect(reason).not.toContain(NAME_AS_SUBJECT);
  });

  it('an enroll whose access group is a name is rejected', async () => {
    const body = enrollCommand(bundle.pepper, opaqueSubject('ana'), '1002');
    body.record.accessGroups = [NAME_AS_GROUP];
    const reason = await rejection(body);
    expect(reason).toMatch(/record\.accessGroups\.0: access group id must be "g-" and 12 base32 characters/);
    expect(reason).not.toContain(NAME_AS_GROUP);
  });

  it('a config-update whose policy keys an access group by name is rejected whole; the old policy stays', async () => {
    const reason = await rejection({ type: 'config-update', config: { policy: { credentials: 'card-only', access: { groups: { [NAME_AS_GROUP]: 'always', [opaqueGroup('night')]: 'always' } } } } });
    expect(reason).toMatch(/config\.policy\.access\.groups: 1 of 2 keys is not an access group id/);
    expect(reason).not.toContain(NAME_AS_GROUP);
  });

  it('the same commands with opaque ids are applied (the refusals above are about the ids alone)', async () => {
    const body = enrollCommand(bundle.pepper, opaqueSubject('ana'), '1002');
    await cloud.command(body);
    await cloud.command({ type: 'config-update', config: { policy: { credentials: 'card-only', access: { groups: { [opaqueGroup('staff')]: 'always', [opaqueGroup('night')]: 'always' } } } } });
  });

  it('nothing of the refused text is in the database files or the log; only the opaque subject is stored', async () => {
    terminal.proc.kill('SIGTERM');
    expect(await terminal.exited).toBe(0);
    const bytes = dataFolderBytes();
    expect(bytes.includes(Buffer.from(NAME_AS_SUBJECT))).toBe(false);
    expect(bytes.includes(Buffer.from(NAME_AS_GROUP))).toBe(false);
    expect(terminal.log()).not.toContain(NAME_AS_SUBJECT);
    expect(terminal.log()).not.toContain(NAME_AS_GROUP);
    const store = bundle.openStore();
    try {
      expect(store.subjectCount()).toBe(1);
      expect(store.getSubject(opaqueSubject('ana'))?.accessGroups).toEqual([opaqueGroup('staff')]);
      expect(Object.keys(JSON.parse(store.getSetting('policy')!).access.groups)).toEqual([opaqueGroup('staff'), opaqueGroup('night')]);
    } finally {
      store.close();
    }
  });
});

describe("the terminal's own policy", () => {
  it('a config file whose policy keys a group by name stops the terminal at start, naming the key path and not the name', async () => {
    const other = writeTerminalBundle(join(dir, 'bundle-bad-config'), { ca: broker.ca.certPem, cert: broker.device.certPem, key: broker.device.keyPem });
    const start = spawnTerminal(other, config({ access: { groups: { [NAME_AS_GROUP]: 'always' } } }));
    const error = await start.then(() => null, (err: Error) => err.message);
    expect(error).toMatch(/policy\.access\.groups: 1 of 1 keys is not an access group id/);
    expect(error).not.toContain(NAME_AS_GROUP);
  });

  it('a policy saved by an older release with group names is dropped at start for the config file policy', () => {
    const store = new DeviceStore(join(dir, 'legacy.db'), randomBytes(32));
    try {
      store.setSetting('policy', JSON.stringify({ access: { groups: { [NAME_AS_GROUP]: 'always' } } }));
      const initial = Policy.parse({ access: { groups: { [opaqueGroup('staff')]: 'always' } } });
      const holder = new PolicyHolder(store, initial);
      expect(holder.get().access.groups).toEqual({ [opaqueGroup('staff')]: 'always' });
      expect(store.getSetting('policy')).not.toContain(NAME_AS_GROUP);
      expect(holder.savedRefused).toMatch(/access\.groups: 1 of 1 keys is not an access group id/);
      expect(holder.savedRefused).not.toContain(NAME_AS_GROUP);
    } finally {
      store.close();
    }
  });
});
