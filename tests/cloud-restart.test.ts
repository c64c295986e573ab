import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect as connectUnix } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../common/free-port.js';
import { CLI_PATH, startRole, type RoleProcess } from '../demo/processes.js';
import { cardHash } from '../protocol/index.js';
import { clockface } from './support/cli.js';

/*
 * A cloud restart with a site attached, every part a real process from its provisioned bundle
 * (as systemd runs them): the cloud serves HTTPS with its certificate from the tenant CA, the
 * gateway checks it with the tenant's ca.crt and long-polls it for commands, a terminal is
 * connected to the gateway. SIGTERM to the cloud must answer the open long polls and exit at
 * once (not sit out a 30 s poll); the gateway takes that as one outage, keeps the punch made
 * meanwhile, and picks up where it left off when the cloud is back: the punch arrives once,
 * and a command queued after the restart reaches the terminal through a new long poll.
 * (`npm run bench -- cloud-stop` measures the stop time.)
 */
const root = resolve(import.meta.dirname, '..');
let work: string;
let dir: string;
let cloudUrl: string;
let cloudConfig: string;
let ownerKey: string;
let ca: Buffer;
const running = new Map<string, RoleProcess>();

/** An HTTPS call to the cloud trusting only the tenant CA, as the gateway does. */
function call(method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  return new Promise((done, fail) => {
    const req = request(
      new URL(path, cloudUrl),
      { method, ca, agent: false, headers: { authorization: `Bearer ${opts.token ?? ownerKey}`, ...(payload ? { 'content-type': 'application/json' } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown> }));
      },
    );
    req.on('error', fail);
    req.end(payload);
  });
}

const logOf = (name: string) =>
  readFileSync(running.get(name)!.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const startCloud = async () =>
  running.set('cloud', await startRole({ name: 'cloud', args: ['cloud', '--config', cloudConfig], logDir: join(work, 'logs'), env: { CLOCKFACE_LOG__LEVEL: 'debug' } }));

const punchesAtCloud = async () => ((await call('GET', '/v1/tenants/acme/punches?limit=5000')).json.punches ?? []) as Array<{ eventId: string }>;

beforeAll(async () => {
  if (!existsSync(CLI_PATH)) execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  work = mkdtempSync(join(tmpdir(), 'cf-cloud-restart-'));
  dir = join(work, 'acme');
  clockface(['provision', 'tenant', 'init', '--out', dir, '--tenant', 'acme']);
  clockface(['provision', 'tenant', 'export-cloud', '--out', dir]);
  const cert = JSON.parse(clockface(['provision', 'cloud', 'cert', '--out', dir, '--host', 'localhost', '--alt-name', '127.0.0.1'])) as { cert: string; key: string };
  ca = readFileSync(join(dir, 'tenant', 'ca.crt'));

  const cloudPort = await freePort();
  cloudUrl = `https://127.0.0.1:${cloudPort}`;
  cloudConfig = join(work, 'cloud.json');
  writeFileSync(cloudConfig, JSON.stringify({ dataDir: join(work, 'data', 'cloud'), http: { host: '127.0.0.1', port: cloudPort, tls: { cert: cert.cert, key: cert.key } }, tenants: [{ id: 'acme', keysDir: join(dir, 'cloud', 'acme') }], ops: { port: 0 } }));
  ownerKey = (JSON.parse(clockface(['cloud', 'api-key', 'create', '--config', cloudConfig, '--tenant', 'acme', '--role', 'owner'])) as { key: string }).key;
  writeFileSync(join(work, 'owner.key'), ownerKey, { mode: 0o600 });
  await startCloud();

  const viaCloud = ['--cloud', cloudUrl, '--api-key-file', join(work, 'owner.key'), '--cloud-ca', join(dir, 'tenant', 'ca.crt')];
  clockface(['provision', 'gateway', 'add', '--out', dir, '--gateway', 'site-1', '--host', 'localhost', '--alt-name', '127.0.0.1', ...viaCloud]);
  clockface(['provision', 'device', 'add', '--out', dir, '--device', 'door-1', '--gateway', 'site-1', '--profile', 'simulator', '--mode', 'access', ...viaCloud]);

  const gatewayPort = await freePort();
  running.set(
    'gateway',
    await startRole({
      name: 'gateway',
      args: ['gateway', '--config', join(dir, 'gateways', 'site-1', 'config.json')],
      logDir: join(work, 'logs'),
      env: {
        CLOCKFACE_DATA_DIR: join(work, 'data', 'gateway'),
        CLOCKFACE_MQTT__HOST: '127.0.0.1',
        CLOCKFACE_MQTT__PORT: String(gatewayPort),
        CLOCKFACE_OPS__PORT: '0',
        // Production waits up to a minute between tries at a cloud that is down; quicker here.
        CLOCKFACE_FORWARDER__BACKOFF_MAX_MS: '1000',
        CLOCKFACE_FORWARDER__BREAKER_COOLDOWN_MS: '1000',
      },
    }),
  );
  running.set(
    'door-1',
    await startRole({
      name: 'door-1',
      args: ['device', '--config', join(dir, 'devices', 'door-1', 'config.json')],
      logDir: join(work, 'logs'),
      env: {
        CLOCKFACE_DATA_DIR: join(work, 'data', 'door-1'),
        CLOCKFACE_MQTT__URL: `mqtts://localhost:${gatewayPort}`,
        CLOCKFACE_OPS__PORT: '0',
        CLOCKFACE_HARDWARE__READER: JSON.stringify({ driver: 'simulator', protocol: 'line', lineFormat: 'decimal', repeatWindowMs: 0, simulatedFeed: join(work, 'reader.sock') }),
      },
    }),
  );
}, 180_000);

afterAll(async () => {
  for (const p of [...running.values()].reverse()) await p.stop();
  if (work && !process.env.CF_KEEP) rmSync(work, { recursive: true, force: true });
});

describe('the cloud restarts under a site that long-polls it over HTTPS', () => {
  it('answers the open long polls and exits on SIGTERM; the gateway rides out the outage and loses nothing', async () => {
    await until('door-1 online at the cloud (the gateway reaches the cloud over HTTPS)', async () => {
      const { devices } = (await call('GET', '/v1/tenants/acme/devices')).json as { devices: Array<{ device: string; presence: string | null }> };
      return devices.some((d) => d.device === 'door-1' && d.presence === 'online');
    });
    expect(logOf('gateway').filter((l) => l.reason === 'cloud-certificate-untrusted')).toEqual([]);

    // A long poll of 30 s (the gateway's own are 25 s, so the cloud's log tells this one apart), open before the SIGTERM.
    const token = readFileSync(join(dir, 'gateways', 'site-1', 'gateway.token'), 'utf8').trim();
    const poll = call('GET', '/v1/gateway/commands?wait=30', { token }).catch((err: Error) => ({ status: 0, json: { error: err.message } as Record<string, unknown> }));
    await until('the 30 s long poll waiting at the cloud', () => logOf('cloud').some((l) => l.msg === 'long poll waiting' && l.waitMs === 30_000));
    const gatewayLogBefore = logOf('gateway').length;
    const cloud = running.get('cloud')!;
    expect(await cloud.stop('SIGTERM', 60_000)).toBe(0);

    // The poll was answered by the stopping cloud (an empty answer, not an error), not by its 30 s timer.
    const answered = await poll;
    expect(answered.status, JSON.stringify(answered.json)).toBe(200);
    expect(answered.json.commands).toEqual([]);
    const stopping = logOf('cloud').find((l) => l.msg === 'stopping: open long polls answered, connections closing');
    expect(stopping?.longPolls as number).toBeGreaterThanOrEqual(1);
    expect(logOf('cloud').some((l) => l.msg === 'cloud stopped' && typeof l.stopMs === 'number')).toBe(true);

    // A punch while the cloud is down waits in the gateway's queue.
    await new Promise<void>((done, fail) => {
      const socket = connectUnix(join(work, 'reader.sock'), () => socket.end('1001\r\n', () => done()));
      socket.once('error', fail);
    });
    await until('the punch at door-1', () => logOf('door-1').some((l) => l.msg === 'punch'));
    const punchId = logOf('door-1').find((l) => l.msg === 'punch')!.eventId as string;

    await startCloud();
    await until('the punch made during the outage at the cloud', async () => (await punchesAtCloud()).some((p) => p.eventId === punchId));
    expect((await punchesAtCloud()).filter((p) => p.eventId === punchId)).toHaveLength(1);

    // A command queued after the restart reaches the terminal: the gateway long-polls the new cloud.
    const pepper = Buffer.from(readFileSync(join(dir, 'tenant', 'card-pepper.key'), 'utf8').trim(), 'base64');
    const enrolled = await call('POST', '/v1/tenants/acme/subjects', { body: { cardHashes: [cardHash(pepper, '1002')], accessGroups: ['staff'] } });
    expect(enrolled.status).toBe(201);
    await until('the enrollment applied at door-1', async () => {
      const { commands } = (await call('GET', '/v1/tenants/acme/commands')).json as { commands: Array<{ state: string }> };
      return commands.length === 1 && commands[0]!.state === 'applied';
    });

    // One outage, told once: a warning when the poll first fails, a line when it is back.
    const outage = logOf('gateway').slice(gatewayLogBefore);
    expect(outage.filter((l) => l.msg === 'command poll failed; will retry' && l.level === 40)).toHaveLength(1);
    expect(outage.some((l) => l.msg === 'command poll reaches the cloud again')).toBe(true);
  }, 180_000);
});
