import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pulses, readRecordFile } from '../device/hardware/gpio/sim.js';
import { CLI_PATH, inheritedEnv, startRole, type RoleProcess, type StartOptions } from './processes.js';
import { freePort } from '../common/free-port.js';
import { mosquittoSubCommand } from '../provisioning/integration.js';

/**
 * A whole site on loopback, built the way facilities staff build one: `clockface provision`
 * writes the tenant and the bundles; the cloud gets the tenant's exported keys; the gateway and
 * the terminals start from their bundles as separate processes. What a unit file would set per
 * machine (ports, data folders) and what stands in for the wall hardware (a camera replaying
 * photos, a card reader/keypad fed over a socket, the GPIO simulator's record of the relay)
 * are environment overrides on top of each bundle's config.
 */
export interface Terminal {
  id: string;
  cameraDir: string;
  readerFeed: string;
  gpioRecord: string;
  opsPort: number;
  process: RoleProcess;
}

export interface Site {
  work: string;
  bundles: string;
  /** The door-access integration's bundle (ca.crt, integration.crt, integration.key). */
  integrationBundle: string;
  /** A shell command (mosquitto_sub) that reads door decisions and status with the integration's certificate. */
  integrationHint: string;
  cloudUrl: string;
  cloudOpsPort: number;
  gatewayPort: number;
  gatewayOpsPort: number;
  ownerKey: string;
  pepper: Buffer;
  terminals: Map<string, Terminal>;
  processes: Map<string, RoleProcess>;
  /** The cloud's admin API over HTTPS as the owner (the cloud's certificate checked against the tenant CA); json is {} for a body that is not JSON. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }>;
  stopCloud(): Promise<void>;
  startCloud(): Promise<void>;
  /** Stops a role with a signal (SIGKILL: no goodbye) and starts it again exactly as before. */
  restart(name: string, signal: NodeJS.Signals): Promise<void>;
  /** Puts a person (a camera frame) in front of a terminal's camera; null leaves nobody there. */
  show(terminal: string, frame: Buffer): void;
  /** What the terminal's reader sends: a card number line, or keypad digits ending in '#'. */
  key(terminal: string, line: string): Promise<void>;
  relayPulses(terminal: string): number;
  /** Whether the terminal's relay is released (no pulse running). */
  relayIdle(terminal: string): boolean;
  stop(): Promise<void>;
}

// Provisioning steps run as the CLI would; a deadline, so a hung step fails the demo instead of stalling it.
const clockface = (args: string[]) => execFileSync(process.execPath, [CLI_PATH, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: inheritedEnv(), timeout: 120_000 });

export interface TerminalPlan {
  id: string;
  mode: 'access' | 'timekeeping';
  policy: Record<string, unknown>;
  firstFrame: Buffer;
  /** Extra environment for this terminal's process (tests: e.g. a skewed clock). */
  env?: Record<string, string>;
}

/** Extra environment for the cloud's and the gateway's processes (tests: e.g. a skewed clock). */
export interface RoleEnv {
  cloud?: Record<string, string>;
  gateway?: Record<string, string>;
}

export async function buildSite(work: string, plans: TerminalPlan[], progress: (text: string) => void, roleEnv: RoleEnv = {}): Promise<Site> {
  const bundles = join(work, 'acme');
  const logs = join(work, 'logs');
  mkdirSync(logs, { recursive: true });
  const processes = new Map<string, RoleProcess>();
  const terminals = new Map<string, Terminal>();
  const launches = new Map<string, StartOptions>();
  const launch = async (opts: StartOptions) => {
    launches.set(opts.name, opts);
    const p = await startRole(opts);
    processes.set(opts.name, p);
    return p;
  };

  progress('provision: tenant acme (CA, admin signing key, cloud sealing key, card pepper) and the cloud\'s HTTPS certificate');
  clockface(['provision', 'tenant', 'init', '--out', bundles, '--tenant', 'acme']);
  clockface(['provision', 'tenant', 'export-cloud', '--out', bundles]);
  // The cloud serves HTTPS with a certificate from the tenant CA; gateways and the admin tools
  // check it against the tenant's ca.crt, as a site that runs its own cloud does.
  const cloudCert = JSON.parse(clockface(['provision', 'cloud', 'cert', '--out', bundles, '--host', 'localhost', '--alt-name', '127.0.0.1'])) as { cert: string; key: string };
  const tenantCa = join(bundles, 'tenant', 'ca.crt');
  const cloudCa = readFileSync(tenantCa);
  const pepper = Buffer.from(readFileSync(join(bundles, 'tenant', 'card-pepper.key'), 'utf8').trim(), 'base64');

  const [cloudPort, cloudOpsPort, gatewayPort, gatewayOpsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const cloudUrl = `https://127.0.0.1:${cloudPort}`;
  const cloudConfig = join(work, 'cloud.json');
  writeFileSync(
    cloudConfig,
    JSON.stringify(
      {
        dataDir: join(work, 'data', 'cloud'),
        http: { host: '127.0.0.1', port: cloudPort, tls: { cert: cloudCert.cert, key: cloudCert.key } },
        tenants: [{ id: 'acme', keysDir: join(bundles, 'cloud', 'acme') }],
        recheck: { engine: 'local', command: [process.execPath, CLI_PATH, 'face', 'serve'], ratePerSecond: 20, maxAttempts: 3, intervalMs: 500 },
        retention: { sweepIntervalMs: 1000, batchSize: 1000 },
        ops: { port: cloudOpsPort },
        log: { level: 'info' },
      },
      null,
      2,
    ),
  );
  const owner = JSON.parse(clockface(['cloud', 'api-key', 'create', '--config', cloudConfig, '--tenant', 'acme', '--role', 'owner'])) as { key: string };
  const ownerKeyFile = join(work, 'owner.key');
  writeFileSync(ownerKeyFile, owner.key, { mode: 0o600 });
  const startCloud = async () => {
    await launch({ name: 'cloud', args: ['cloud', '--config', cloudConfig], logDir: logs, env: roleEnv.cloud });
  };
  progress('start: cloud (API, photo vault, re-check worker with the local face engine, retention sweeper)');
  await startCloud();

  const cloud = ['--cloud', cloudUrl, '--api-key-file', ownerKeyFile, '--cloud-ca', tenantCa];
  progress('provision: gateway site-1 and terminals, registered with the cloud');
  clockface(['provision', 'gateway', 'add', '--out', bundles, '--gateway', 'site-1', '--host', 'localhost', '--alt-name', '127.0.0.1', ...cloud]);
  for (const t of plans) clockface(['provision', 'device', 'add', '--out', bundles, '--device', t.id, '--gateway', 'site-1', '--profile', 'simulator', '--mode', t.mode, ...cloud]);
  // What a door-access panel gets: reads door decisions and terminal status, nothing else.
  progress('provision: integration door-panel (a certificate for a door-access panel)');
  clockface(['provision', 'integration', 'add', '--out', bundles, '--integration', 'door-panel', '--gateway', 'site-1']);

  progress('start: gateway site-1 (aedes MQTT broker with client certificates, durable queue)');
  await launch({
      name: 'gateway',
      args: ['gateway', '--config', join(bundles, 'gateways', 'site-1', 'config.json')],
      logDir: logs,
      env: {
        CLOCKFACE_DATA_DIR: join(work, 'data', 'gateway'),
        CLOCKFACE_MQTT__HOST: '127.0.0.1',
        CLOCKFACE_MQTT__PORT: String(gatewayPort),
        CLOCKFACE_OPS__PORT: String(gatewayOpsPort),
        // Production waits up to a minute between tries at a cloud that is down; a demo day is short.
        CLOCKFACE_FORWARDER__BACKOFF_MAX_MS: '1500',
        CLOCKFACE_FORWARDER__BREAKER_COOLDOWN_MS: '1500',
        ...roleEnv.gateway,
      },
    });

  const api: Site['api'] = (method, path, body) => cloudRequest(new URL(path, cloudUrl), cloudCa, owner.key, method, body);

  for (const t of plans) {
    progress(`start: terminal ${t.id} (${t.mode}; replay camera, card reader + keypad simulator, GPIO simulator)`);
    const base = join(work, 'hardware', t.id);
    const cameraDir = join(base, 'camera');
    mkdirSync(cameraDir, { recursive: true });
    writeFileSync(join(cameraDir, 'frame.jpg'), t.firstFrame);
    const terminal: Omit<Terminal, 'process'> = { id: t.id, cameraDir, readerFeed: join(base, 'reader.sock'), gpioRecord: join(base, 'gpio.jsonl'), opsPort: await freePort() };
    const proc = await launch({
      name: t.id,
      args: ['device', '--config', join(bundles, 'devices', t.id, 'config.json')],
      logDir: logs,
      env: {
        CLOCKFACE_DATA_DIR: join(work, 'data', t.id),
        CLOCKFACE_MQTT__URL: `mqtts://localhost:${gatewayPort}`,
        CLOCKFACE_OPS__PORT: String(terminal.opsPort),
        CLOCKFACE_HARDWARE__CAMERA: JSON.stringify({ driver: 'replay', replayPath: cameraDir, fps: 15 }),
        CLOCKFACE_HARDWARE__READER: JSON.stringify({ driver: 'simulator', protocol: 'line', lineFormat: 'decimal', repeatWindowMs: 0, simulatedFeed: terminal.readerFeed }),
        CLOCKFACE_HARDWARE__GPIO: JSON.stringify({ driver: 'simulator', recordFile: terminal.gpioRecord }),
        CLOCKFACE_POLICY: JSON.stringify(await policyWithGroupIds(t.policy, async (name) => {
          const r = await api('POST', '/v1/tenants/acme/access-groups', { name });
          if (r.status !== 200 && r.status !== 201) throw new Error(`access group: HTTP ${r.status} ${JSON.stringify(r.json)}`);
          return r.json.id as string;
        })),
        CLOCKFACE_FACE_TRIGGER: JSON.stringify({ scanMs: 300, cooldownMs: 4000 }),
        ...t.env,
      },
    });
    terminals.set(t.id, { ...terminal, process: proc });
  }

  return {
    work,
    bundles,
    integrationBundle: join(bundles, 'integrations', 'door-panel'),
    integrationHint: mosquittoSubCommand({ tenant: 'acme', bundle: join(bundles, 'integrations', 'door-panel'), host: 'localhost', port: gatewayPort, withStatus: true }),
    cloudUrl,
    cloudOpsPort,
    gatewayPort,
    gatewayOpsPort,
    ownerKey: owner.key,
    pepper,
    terminals,
    processes,
    api,
    async stopCloud() {
      await processes.get('cloud')?.stop();
      processes.delete('cloud');
    },
    startCloud,
    async restart(name, signal) {
      await processes.get(name)?.stop(signal);
      const p = await launch(launches.get(name)!);
      const t = terminals.get(name);
      if (t) t.process = p;
    },
    show(id, frame) {
      const dir = terminals.get(id)!.cameraDir;
      // Write beside, then rename into place: the camera never reads half a file.
      writeFileSync(join(dir, 'next.tmp'), frame);
      renameSync(join(dir, 'next.tmp'), join(dir, 'frame.jpg'));
      // Touch the folder so the replay camera sees the change even within one mtime tick.
      writeFileSync(join(dir, 'touch.tmp'), '');
      rmSync(join(dir, 'touch.tmp'));
    },
    key(id, line) {
      return new Promise((done, fail) => {
        const socket = connect(terminals.get(id)!.readerFeed, () => socket.end(`${line}\r\n`, () => done()));
        socket.once('error', fail);
      });
    },
    relayPulses(id) {
      try {
        return pulses(readRecordFile(terminals.get(id)!.gpioRecord), 17).length;
      } catch {
        return 0;
      }
    },
    relayIdle(id) {
      try {
        const last = pulses(readRecordFile(terminals.get(id)!.gpioRecord), 17).at(-1);
        return last === undefined || Number.isFinite(last.end);
      } catch {
        return true;
      }
    },
    async stop() {
      for (const p of [...processes.values()].reverse()) await p.stop();
    },
  };
}

/**
 * A terminal's policy as facilities staff install it: the access groups of its group → schedule
 * map by their opaque ids from the cloud's directory (`POST /v1/tenants/{t}/access-groups`
 * gives the id for a name), since the cloud sends subjects' groups as ids and no group name
 * belongs on a terminal. Plans name groups ("staff"); this swaps in the ids.
 */
export async function policyWithGroupIds(policy: Record<string, unknown>, groupId: (name: string) => Promise<string>): Promise<Record<string, unknown>> {
  const access = policy.access as { groups?: Record<string, string> } | undefined;
  if (!access?.groups) return policy;
  const groups: Record<string, string> = {};
  for (const [name, schedule] of Object.entries(access.groups)) groups[await groupId(name)] = schedule;
  return { ...policy, access: { ...access, groups } };
}

/** One admin API call over HTTPS, trusting only the tenant CA (fetch takes no CA of its own). */
function cloudRequest(url: URL, ca: Buffer, key: string, method: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, ca, headers: { authorization: `Bearer ${key}`, ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const isJson = /json/.test(String(res.headers['content-type'] ?? ''));
          resolve({ status: res.statusCode ?? 0, json: isJson && text ? (JSON.parse(text) as Record<string, unknown>) : {} });
        });
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${url.pathname}: no answer within 30 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}
