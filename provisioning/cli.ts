import { existsSync, readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ProtocolError } from '../protocol/index.js';
import { decryptBackup, encryptFolder, readPassphrase } from './backup.js';
import { extractTarGz } from './archive.js';
import { checkBundle } from './check.js';
import { CloudAdminClient } from './cloud-client.js';
import { OutputFolder, ProvisionError } from './output.js';
import { PROFILE_NAMES, hardwareProfile } from './profiles.js';
import { issueCloudCertificate } from './cloud-cert.js';
import { TENANT_DIR, TENANT_FILES, exportCloudKeys, initTenant, loadTenant } from './tenant.js';
import { findUnit } from './inventory.js';
import { mosquittoSubCommand } from './integration.js';
import { DEVICE_MODES, GATEWAY_DEFAULT_PORT, addDevice, addGateway, addIntegration, revoke, rotateUnit, type DeviceMode, type RevokeTarget, type UnitRole } from './units.js';

/**
 * `clockface provision`: the facilities-staff front end. Progress goes to stderr, the one
 * result line (JSON: ids, serials, paths; never key material) to stdout, so scripts can
 * read it. Every command takes --dry-run (plan and report, write nothing) and --force.
 */
const USAGE = `Usage: clockface provision <command> --out DIR [options]

Commands (in the order a site is set up):
  tenant init     --tenant T [--backup [--backup-to REL]]   CA, admin signing and cloud sealing keys, card pepper
  gateway add     --gateway G --host HOST [--port 8883] [--alt-name NAME]...
  device add      --device D --gateway G --profile P [--mode access|timekeeping|both]
  integration add --integration NAME [--gateway G]          certificate for a door-access panel: reads the tenant's
                                                             door decisions and terminal status, nothing else
                                                             (NAME names the system, e.g. door-panel, never a person)
  rotate          (--device D | --gateway G | --integration NAME) [--overlap-hours 24]  new TLS key; old one valid
                                                             during the overlap (--cloud: records a device's new serial)
  revoke          (--device D | --gateway G | --integration NAME | --serial HEX | --due)  rebuild the CRL
                                                             (--due: end finished overlaps)
  tenant export-cloud                                        DIR/cloud/<tenant>/: the keys the cloud needs (no CA key)
  cloud cert      --host HOST [--alt-name NAME]...           DIR/cloud/https.{crt,key}: the cloud API's HTTPS certificate
                                                             from the tenant CA (gateways check it: gateway add --cloud-ca DIR/tenant/ca.crt)
  tenant backup   [--backup-to REL]                          encrypted copy of DIR/tenant (scrypt + AES-256-GCM)
  tenant restore  --from FILE                                unpack a backup into DIR
  profiles                                                   list hardware profiles
  check           --bundle DIR                               prove a bundle is complete and its certificate usable

Common options:
  --out DIR            the tenant's folder; every file is written inside it
  --dry-run            show what would be written; write nothing, contact nothing
  --force              replace existing keys and units (never needed for rotate); with --cloud
                       also replaces the unit at the cloud (device keys; a new gateway token)
  --cloud URL --api-key-file FILE [--cloud-ca FILE]   register with / publish to the cloud
  --passphrase-file FILE   backup passphrase (or env CLOCKFACE_BACKUP_PASSPHRASE; never argv)
  --profile NAME       hardware profile: ${PROFILE_NAMES.join(', ')}`;

const OPTIONS = {
  out: { type: 'string' },
  tenant: { type: 'string' },
  gateway: { type: 'string' },
  device: { type: 'string' },
  integration: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'alt-name': { type: 'string', multiple: true },
  profile: { type: 'string' },
  mode: { type: 'string' },
  serial: { type: 'string' },
  due: { type: 'boolean' },
  'overlap-hours': { type: 'string' },
  cloud: { type: 'string' },
  'api-key-file': { type: 'string' },
  'cloud-ca': { type: 'string' },
  backup: { type: 'boolean' },
  'backup-to': { type: 'string' },
  from: { type: 'string' },
  'passphrase-file': { type: 'string' },
  bundle: { type: 'string' },
  'dry-run': { type: 'boolean' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

type Values = ReturnType<typeof parse>['values'];
function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
}

export interface CliIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

const defaultIo: CliIo = {
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

export async function run(argv: string[], io: CliIo = defaultIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.stderr(`clockface provision: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const command = positionals.join(' ');
  if (values.help || command === '' || command === 'help') {
    io.stdout(USAGE);
    return command === '' && !values.help ? 2 : 0;
  }
  try {
    const result = await dispatch(command, values, io);
    if (result === undefined) {
      io.stderr(`clockface provision: unknown command "${command}"\n\n${USAGE}`);
      return 2;
    }
    io.stdout(JSON.stringify(result));
    return 0;
  } catch (err) {
    if (err instanceof ProvisionError || err instanceof ProtocolError || err instanceof UsageError) {
      io.stderr(`clockface provision: ${err.message}`);
      return err instanceof UsageError ? 2 : 1;
    }
    throw err;
  }
}

class UsageError extends Error {}

function need(values: Values, name: keyof Values): string {
  const v = values[name];
  if (typeof v !== 'string' || v.length === 0) throw new UsageError(`--${name} is required`);
  return v;
}

async function dispatch(command: string, values: Values, io: CliIo): Promise<Record<string, unknown> | undefined> {
  if (command === 'profiles') {
    return { profiles: Object.fromEntries(PROFILE_NAMES.map((n) => [n, hardwareProfile(n)])) };
  }
  if (command === 'check') {
    const report = checkBundle(need(values, 'bundle'));
    io.stderr(`bundle ok: ${report.role} ${report.id} of tenant ${report.tenant}, certificate ${report.serial} valid until ${report.notAfter}`);
    return { command, ...report };
  }
  const dryRun = values['dry-run'] ?? false;
  const progress = (line: string) => io.stderr(`${dryRun ? '[dry-run] ' : ''}${line}`);
  const out = new OutputFolder(need(values, 'out'), { dryRun, force: values.force ?? false, progress });
  const cloud = cloudFrom(values, dryRun, progress);

  switch (command) {
    case 'tenant init': {
      const tenant = need(values, 'tenant');
      // Check the passphrase before making keys, so a missing one fails fast and writes nothing.
      const passphrase = values.backup ? readPassphrase(values['passphrase-file'], io.env) : undefined;
      progress(`creating tenant ${tenant}: CA (ECDSA P-256), admin signing key (Ed25519), cloud sealing key (X25519), card pepper`);
      const result = await initTenant(out, tenant);
      const backup = passphrase ? await writeBackup(out, values, passphrase, progress) : undefined;
      progress(`done: keep ${out.resolveInside(TENANT_DIR)} offline and backed up; the cloud needs its keys (see the facilities guide)`);
      return { command, ...result, dir: out.resolveInside(TENANT_DIR), ...(backup ? { backup } : {}), dryRun };
    }
    case 'tenant export-cloud': {
      const ring = loadTenant(out.root);
      const keysDir = exportCloudKeys(out, ring);
      progress(`give ${keysDir} to the cloud as tenants[].keysDir for ${ring.tenant}; it holds no CA key`);
      return { command, tenant: ring.tenant, keysDir, dryRun };
    }
    case 'cloud cert': {
      const ring = loadTenant(out.root);
      const result = await issueCloudCertificate(out, ring, { host: need(values, 'host'), altNames: values['alt-name'] });
      progress(`cloud certificate ${result.serial} for ${result.names.join(', ')}: the cloud's http.tls is { "cert": "${result.cert}", "key": "${result.key}" }`);
      progress(`gateways check it with the tenant CA: "gateway add ... --cloud https://${result.names[0]}:PORT --cloud-ca ${out.resolveInside(TENANT_FILES.caCert)}"`);
      return { command, ...result, dryRun };
    }
    case 'tenant backup': {
      const passphrase = readPassphrase(values['passphrase-file'], io.env);
      loadTenant(out.root);
      return { command, backup: await writeBackup(out, values, passphrase, progress), dryRun };
    }
    case 'tenant restore': {
      const from = need(values, 'from');
      if (!existsSync(from)) throw new ProvisionError(`backup ${from} does not exist`);
      const passphrase = readPassphrase(values['passphrase-file'], io.env);
      out.assertWritable([TENANT_DIR]);
      const archive = await decryptBackup(readFileSync(from), passphrase);
      if (!dryRun) await extractTarGz(archive, out.root);
      const ring = loadTenant(out.root);
      progress(`${dryRun ? 'checked' : 'restored'} tenant ${ring.tenant} into ${out.resolveInside(TENANT_DIR)}`);
      return { command, tenant: ring.tenant, dir: out.resolveInside(TENANT_DIR), dryRun };
    }
    case 'gateway add': {
      const ring = loadTenant(out.root);
      const gateway = need(values, 'gateway');
      progress(`issuing gateway ${gateway} for tenant ${ring.tenant}`);
      const result = await addGateway(out, ring, {
        gateway,
        host: need(values, 'host'),
        port: values.port === undefined ? undefined : intOption('port', values.port),
        altNames: values['alt-name'],
        cloud: cloud ? { client: cloud.client, url: cloud.url, caPem: cloud.caPem } : undefined,
      });
      if (cloud && !dryRun) progress(`registered gateway ${gateway} with ${cloud.url}; its token is in the bundle (0600)`);
      warnReplaced(result.replaced, progress);
      progress(`bundle ready: ${result.archive}`);
      return { command, ...result, dryRun };
    }
    case 'device add': {
      const ring = loadTenant(out.root);
      const device = need(values, 'device');
      const mode = (values.mode ?? 'both') as DeviceMode;
      if (!DEVICE_MODES.includes(mode)) throw new UsageError(`--mode must be one of ${DEVICE_MODES.join(', ')}`);
      progress(`issuing device ${device} (profile ${need(values, 'profile')}, mode ${mode}) for gateway ${need(values, 'gateway')}`);
      const result = await addDevice(out, ring, { device, gateway: need(values, 'gateway'), profile: need(values, 'profile'), mode, cloud });
      if (cloud && !dryRun) progress(`registered device ${device} with ${cloud.url}`);
      else if (!cloud && result.replaced?.length) progress('no --cloud given: the cloud still holds the old keys; run again with --cloud URL --api-key-file FILE (and --force)');
      warnReplaced(result.replaced, progress);
      progress(`bundle ready: ${result.archive}`);
      return { command, ...result, dryRun };
    }
    case 'integration add': {
      const ring = loadTenant(out.root);
      const integration = need(values, 'integration');
      if (values.device) throw new UsageError('integration add takes --integration NAME (and optionally --gateway G), not --device');
      progress(`issuing integration ${integration} for tenant ${ring.tenant}: may read ${ring.tenant}'s door decisions and terminal status, nothing else`);
      const result = await addIntegration(out, ring, { integration, gateway: values.gateway });
      warnReplaced(result.replaced, progress);
      progress(`bundle ready: ${result.archive}; give it to the panel integrator (the facilities guide says how they use it)`);
      const gateway = values.gateway ? findUnit(ring.inventory, 'gateway', values.gateway) : undefined;
      if (gateway?.host) {
        progress(`try: ${mosquittoSubCommand({ tenant: ring.tenant, bundle: result.bundle, host: gateway.host, port: gateway.port ?? GATEWAY_DEFAULT_PORT, withStatus: true })}`);
      }
      return { command, ...result, dryRun };
    }
    case 'rotate': {
      const ring = loadTenant(out.root);
      const target = unitTarget(values);
      if (!target) throw new UsageError('rotate needs --device D, --gateway G or --integration NAME');
      const overlapHours = values['overlap-hours'] === undefined ? undefined : Number(values['overlap-hours']);
      if (overlapHours !== undefined && !Number.isFinite(overlapHours)) throw new UsageError('--overlap-hours must be a number');
      const result = await rotateUnit(out, ring, { ...target, overlapHours, cloud: target.role === 'device' ? cloud : undefined });
      if (cloud && target.role === 'device' && !dryRun) progress(`recorded the new serial ${result.serial} at ${cloud.url}`);
      const apply = target.role === 'integration'
        ? `give ${result.archive} to the panel integrator; their client reconnects with it`
        : `apply ${result.archive} to the unit and reload it (install.sh does "systemctl reload": no restart, no downtime)`;
      progress(`new certificate ${result.serial} for ${target.role} ${target.id}; ${apply}`);
      progress(`old certificate(s) ${result.retiring.join(', ') || '(none)'} keep working until ${result.retireAt}; then run "provision revoke --due"`);
      return { command, ...result, dryRun };
    }
    case 'revoke': {
      const ring = loadTenant(out.root);
      const unit = unitTarget(values);
      const target: RevokeTarget | undefined = unit ?? (values.serial ? { serial: values.serial } : values.due ? { due: true } : undefined);
      if (!target) throw new UsageError('revoke needs --device D, --gateway G, --integration NAME, --serial HEX or --due');
      const result = await revoke(out, ring, target, { cloud });
      progress(`revoked ${result.newlyRevoked.length} certificate(s); the CRL lists ${result.refused.length} (version ${result.crlVersion})`);
      if (cloud && !dryRun) progress(`published the revocation list to ${cloud.url} (cloud version ${result.cloudVersion})`);
      else if (!cloud) progress('no --cloud given: gateways and terminals learn revocations only from the cloud; publish with --cloud URL --api-key-file FILE');
      return { command, ...result, dryRun };
    }
    default:
      return undefined;
  }
}

function warnReplaced(serials: string[] | undefined, progress: (l: string) => void): void {
  if (serials && serials.length > 0) {
    progress(`replaced: the old certificate(s) ${serials.join(', ')} are retired; run "provision revoke --due" to put them in the CRL`);
  }
}

function unitTarget(values: Values): { role: UnitRole; id: string } | undefined {
  const given = (['device', 'gateway', 'integration'] as const).filter((role) => values[role] !== undefined);
  if (given.length > 1) throw new UsageError(`give one of --${given.join(', --')}, not several`);
  const role = given[0];
  return role ? { role, id: values[role]! } : undefined;
}

function intOption(name: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a whole number`);
  return Number(value);
}

function cloudFrom(values: Values, dryRun: boolean, progress: (l: string) => void) {
  if (!values.cloud) {
    if (values['api-key-file']) throw new UsageError('--api-key-file needs --cloud URL');
    return undefined;
  }
  const keyFile = need(values, 'api-key-file');
  if (!existsSync(keyFile)) throw new ProvisionError(`API key file ${keyFile} does not exist`);
  const apiKey = readFileSync(keyFile, 'utf8').trim();
  const caPem = values['cloud-ca'] ? readFileSync(values['cloud-ca'], 'utf8') : undefined;
  if (dryRun) progress(`would contact ${values.cloud}`);
  return { client: new CloudAdminClient({ url: values.cloud, apiKey, ca: caPem }), url: values.cloud, caPem };
}

async function writeBackup(out: OutputFolder, values: Values, passphrase: string, progress: (l: string) => void): Promise<string> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const rel = values['backup-to'] ?? `backups/tenant-${stamp}.cfbackup`;
  out.resolveInside(rel);
  if (out.dryRun) return out.write(rel, Buffer.alloc(0), { secret: true });
  progress('encrypting a backup of the tenant folder (scrypt, AES-256-GCM)');
  const sealed = await encryptFolder(out.root, TENANT_DIR, passphrase);
  return out.write(rel, sealed, { secret: true });
}
