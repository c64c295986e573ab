import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { normalizeSerial } from '../protocol/cert-identity.js';
import { assertId, generateKeyPair, isValidId, keyPairFromPem, privateKeyToPem } from '../protocol/index.js';
import { tarGzFolder } from './archive.js';
import { CloudRefusal, type CloudAdminClient, type DeviceRegistration } from './cloud-client.js';
import { findUnit, refusedSerials, type CertificateRecord, type Inventory, type UnitRecord } from './inventory.js';
import { OutputFolder, ProvisionError } from './output.js';
import { createRevocationList, issueCertificate, type IssuedCertificate } from './pki.js';
import { integrationTopics } from './integration.js';
import { hardwareProfile } from './profiles.js';
import { TENANT_FILES, inventoryJson, type TenantKeyring } from './tenant.js';

/**
 * Gateways, devices and integrations: their keys, certificates signed by the tenant CA, and the
 * bundle (folder + .tar.gz) holding exactly what the unit needs. Also revocation and rotation,
 * which change the inventory and the CRL. Every file goes through OutputFolder.
 */
export type UnitRole = 'device' | 'gateway' | 'integration';
export const DEVICE_MODES = ['access', 'timekeeping', 'both'] as const;
export type DeviceMode = (typeof DEVICE_MODES)[number];

export const GATEWAY_DEFAULT_PORT = 8883;
/** How long a rotated-out certificate keeps working, so a terminal can switch without downtime. */
export const DEFAULT_OVERLAP_HOURS = 24;

export function bundleDir(role: UnitRole, id: string): string {
  return `${role}s/${id}`;
}
export function bundleArchive(role: UnitRole, id: string): string {
  return `${role}s/${id}.tar.gz`;
}

export interface AddGatewayOptions {
  gateway: string;
  /** Host name or IP devices dial; goes into the server certificate. */
  host: string;
  port?: number;
  /** Extra server names (DNS or IP) for the certificate. */
  altNames?: string[];
  cloud?: { client: CloudAdminClient; url: string; caPem?: string };
  now?: Date;
}

export interface AddDeviceOptions {
  device: string;
  gateway: string;
  profile: string;
  mode?: DeviceMode;
  cloud?: { client: CloudAdminClient };
  now?: Date;
}

export interface UnitResult {
  role: UnitRole;
  id: string;
  serial: string;
  bundle: string;
  archive: string;
  /** Serials of the unit's earlier certificates, retired because it was replaced with --force. */
  replaced?: string[];
}

export async function addGateway(out: OutputFolder, ring: TenantKeyring, opts: AddGatewayOptions): Promise<UnitResult> {
  const id = assertId('gateway', opts.gateway);
  const host = checkHost(opts.host);
  const port = opts.port ?? GATEWAY_DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ProvisionError(`port ${port} is not a TCP port`);
  const names = [host, ...(opts.altNames ?? []).map(checkHost)];
  const dir = bundleDir('gateway', id);
  refuseExistingUnit(out, ring.inventory, 'gateway', id);
  out.assertWritable([`${dir}/gateway.key`, `${dir}/gateway.crt`, bundleArchive('gateway', id)]);

  const cert = await issueCertificate({
    ca: ring.ca,
    tenant: ring.tenant,
    role: 'gateway',
    id,
    dnsNames: names.filter((n) => isIP(n) === 0),
    ipAddresses: names.filter((n) => isIP(n) !== 0),
  });
  // Register before writing: a refusal from the cloud leaves nothing half-made behind.
  let token: string | undefined;
  if (opts.cloud && !out.dryRun) {
    const client = opts.cloud.client;
    // A gateway the cloud already knows gets a new token with --force; the old one stops working.
    token = (await orReplace(out.force, () => client.registerGateway(ring.tenant, id), () => client.rotateGatewayToken(ring.tenant, id))).token;
  }

  const config = {
    tenant: ring.tenant,
    gateway: id,
    dataDir: '/var/lib/clockface/gateway',
    mqtt: { host: '0.0.0.0', port, ca: 'ca.crt', cert: 'gateway.crt', key: 'gateway.key', wsPort: null },
    cloud: opts.cloud ? { url: opts.cloud.url, tokenFile: 'gateway.token', ...(opts.cloud.caPem ? { ca: 'cloud-ca.crt' } : {}) } : null,
    ops: { port: 9465 },
    log: { level: 'info' },
  };
  out.mkdir(dir, 0o700);
  out.write(`${dir}/config.json`, `${JSON.stringify(config, null, 2)}\n`, { overwrite: true });
  out.write(`${dir}/ca.crt`, ring.ca.certPem, { overwrite: true });
  out.write(`${dir}/gateway.crt`, cert.certPem);
  out.write(`${dir}/gateway.key`, cert.keyPem, { secret: true });
  if (opts.cloud?.caPem) out.write(`${dir}/cloud-ca.crt`, opts.cloud.caPem, { overwrite: true });
  if (opts.cloud) out.write(`${dir}/gateway.token`, `${token ?? 'dry-run'}\n`, { secret: true, overwrite: true });

  const replaced = retirePrevious(ring.inventory, 'gateway', id, opts.now);
  upsertUnit(ring.inventory, { role: 'gateway', id, host, port, ...(names.length > 1 ? { altNames: names.slice(1) } : {}) });
  recordCertificate(ring.inventory, 'gateway', id, cert, opts.now);
  saveInventory(out, ring.inventory);
  await writeArchive(out, 'gateway', id);
  return { role: 'gateway', id, serial: normalizeSerial(cert.serial), bundle: out.resolveInside(dir), archive: out.resolveInside(bundleArchive('gateway', id)), replaced };
}

export async function addDevice(out: OutputFolder, ring: TenantKeyring, opts: AddDeviceOptions): Promise<UnitResult> {
  const id = assertId('device', opts.device);
  const gatewayId = assertId('gateway', opts.gateway);
  const mode = opts.mode ?? 'both';
  if (!DEVICE_MODES.includes(mode)) throw new ProvisionError(`mode must be one of ${DEVICE_MODES.join(', ')}`);
  const gateway = findUnit(ring.inventory, 'gateway', gatewayId);
  if (!gateway?.host) throw new ProvisionError(`gateway ${gatewayId} is not provisioned in this tenant (run "provision gateway add" first)`);
  const hardware = hardwareProfile(opts.profile);
  const dir = bundleDir('device', id);
  refuseExistingUnit(out, ring.inventory, 'device', id);
  const secrets = ['device.key', 'device-signing.key', 'device-sealing.key'].map((f) => `${dir}/${f}`);
  out.assertWritable([...secrets, `${dir}/device.crt`, bundleArchive('device', id)]);

  const cert = await issueCertificate({ ca: ring.ca, tenant: ring.tenant, role: 'device', id });
  const signing = generateKeyPair('ed25519');
  const sealing = generateKeyPair('x25519');
  if (opts.cloud && !out.dryRun) {
    const client = opts.cloud.client;
    const reg: DeviceRegistration = {
      device: id,
      gateway: gatewayId,
      signingPublicKey: signing.publicRaw.toString('base64'),
      sealingPublicKey: sealing.publicRaw.toString('base64'),
      certSerial: normalizeSerial(cert.serial),
    };
    // A device the cloud already knows (re-provisioned with --force) gets its keys replaced.
    await orReplace(out.force, () => client.registerDevice(ring.tenant, reg), async () => void (await client.replaceDevice(ring.tenant, reg)));
  }

  const config = {
    tenant: ring.tenant,
    device: id,
    mode,
    dataDir: '/var/lib/clockface/device',
    mqtt: { url: `mqtts://${urlHost(gateway.host)}:${gateway.port ?? GATEWAY_DEFAULT_PORT}`, ca: 'ca.crt', cert: 'device.crt', key: 'device.key' },
    keys: {
      signing: 'device-signing.key',
      sealing: 'device-sealing.key',
      cloudSealingPublic: 'cloud-sealing.pub',
      adminSigningPublic: 'admin-signing.pub',
      // The development fallback (a bundle run by hand or by the demo): install.sh seals the
      // pepper as the systemd credential card-pepper and removes this file (device/card-pepper.ts).
      cardPepper: 'card-pepper.key',
    },
    hardware,
    ops: { port: 9464 },
    log: { level: 'info' },
  };
  out.mkdir(dir, 0o700);
  out.write(`${dir}/config.json`, `${JSON.stringify(config, null, 2)}\n`, { overwrite: true });
  out.write(`${dir}/ca.crt`, ring.ca.certPem, { overwrite: true });
  out.write(`${dir}/device.crt`, cert.certPem);
  out.write(`${dir}/device.key`, cert.keyPem, { secret: true });
  out.write(`${dir}/device-signing.key`, privateKeyToPem(signing), { secret: true });
  out.write(`${dir}/device-sealing.key`, privateKeyToPem(sealing), { secret: true });
  out.write(`${dir}/cloud-sealing.pub`, `${ring.cloudSealingPublic}\n`, { overwrite: true });
  out.write(`${dir}/admin-signing.pub`, `${ring.adminSigningPublic}\n`, { overwrite: true });
  out.write(`${dir}/card-pepper.key`, `${ring.cardPepper}\n`, { secret: true, overwrite: true });

  const replaced = retirePrevious(ring.inventory, 'device', id, opts.now);
  upsertUnit(ring.inventory, { role: 'device', id, gateway: gatewayId, profile: opts.profile });
  recordCertificate(ring.inventory, 'device', id, cert, opts.now);
  saveInventory(out, ring.inventory);
  await writeArchive(out, 'device', id);
  return { role: 'device', id, serial: normalizeSerial(cert.serial), bundle: out.resolveInside(dir), archive: out.resolveInside(bundleArchive('device', id)), replaced };
}

export interface AddIntegrationOptions {
  /** Names the system (a door-access panel, a building controller), never a person. */
  integration: string;
  /** The gateway the integration connects to: its address goes into the bundle's config. */
  gateway?: string;
  now?: Date;
}

/**
 * An integration: a TLS client certificate with the `integration` role for a door-access panel
 * or building system that reads door decisions and terminal status from the site broker and
 * may do nothing else. Its bundle holds ca.crt, integration.crt, integration.key and a
 * config.json naming the files, the topics and (with a gateway) the address to dial. It has no
 * keys at the cloud: the cloud never talks to it.
 */
export async function addIntegration(out: OutputFolder, ring: TenantKeyring, opts: AddIntegrationOptions): Promise<UnitResult> {
  const id = unitId('integration', opts.integration);
  const gateway = opts.gateway === undefined ? undefined : findUnit(ring.inventory, 'gateway', assertId('gateway', opts.gateway));
  if (opts.gateway !== undefined && !gateway?.host) throw new ProvisionError(`gateway ${opts.gateway} is not provisioned in this tenant (run "provision gateway add" first)`);
  const dir = bundleDir('integration', id);
  refuseExistingUnit(out, ring.inventory, 'integration', id);
  out.assertWritable([`${dir}/integration.key`, `${dir}/integration.crt`, bundleArchive('integration', id)]);

  const cert = await issueCertificate({ ca: ring.ca, tenant: ring.tenant, role: 'integration', id });
  const config = {
    tenant: ring.tenant,
    integration: id,
    mqtt: {
      ...(gateway?.host ? { url: `mqtts://${urlHost(gateway.host)}:${gateway.port ?? GATEWAY_DEFAULT_PORT}` } : {}),
      ca: 'ca.crt',
      cert: 'integration.crt',
      key: 'integration.key',
      protocol: 'MQTT 3.1.1',
    },
    topics: integrationTopics(ring.tenant),
  };
  out.mkdir(dir, 0o700);
  out.write(`${dir}/config.json`, `${JSON.stringify(config, null, 2)}\n`, { overwrite: true });
  out.write(`${dir}/ca.crt`, ring.ca.certPem, { overwrite: true });
  out.write(`${dir}/integration.crt`, cert.certPem);
  out.write(`${dir}/integration.key`, cert.keyPem, { secret: true });

  const replaced = retirePrevious(ring.inventory, 'integration', id, opts.now);
  upsertUnit(ring.inventory, { role: 'integration', id, ...(gateway ? { gateway: gateway.id } : {}) });
  recordCertificate(ring.inventory, 'integration', id, cert, opts.now);
  saveInventory(out, ring.inventory);
  await writeArchive(out, 'integration', id);
  return { role: 'integration', id, serial: normalizeSerial(cert.serial), bundle: out.resolveInside(dir), archive: out.resolveInside(bundleArchive('integration', id)), replaced };
}

export interface RotateOptions {
  role: UnitRole;
  id: string;
  overlapHours?: number;
  /** Records a device's new certificate serial at the cloud (its signing and sealing keys stay). */
  cloud?: { client: CloudAdminClient };
  now?: Date;
}

export interface RotateResult extends UnitResult {
  retiring: string[];
  retireAt: string;
}

/**
 * Issues a new TLS key and certificate for a unit and puts them in its bundle. The old
 * certificates stay valid for the overlap window, so the unit keeps working until the new
 * bundle is applied; `revoke --due` (or any later revoke) then lists them in the CRL.
 */
export async function rotateUnit(out: OutputFolder, ring: TenantKeyring, opts: RotateOptions): Promise<RotateResult> {
  const id = unitId(opts.role, opts.id);
  const unit = findUnit(ring.inventory, opts.role, id);
  if (!unit) throw new ProvisionError(`${opts.role} ${id} is not provisioned in this tenant`);
  const overlapHours = opts.overlapHours ?? DEFAULT_OVERLAP_HOURS;
  if (!(overlapHours >= 0 && overlapHours <= 24 * 90)) throw new ProvisionError('overlap must be between 0 and 2160 hours');
  const now = opts.now ?? new Date();
  const dir = bundleDir(opts.role, id);
  const names = opts.role === 'gateway' && unit.host ? [unit.host, ...(unit.altNames ?? [])] : [];
  const cert = await issueCertificate({
    ca: ring.ca,
    tenant: ring.tenant,
    role: opts.role,
    id,
    dnsNames: names.filter((n) => isIP(n) === 0),
    ipAddresses: names.filter((n) => isIP(n) !== 0),
  });
  if (opts.cloud && opts.role === 'device' && !out.dryRun) {
    if (!unit.gateway) throw new ProvisionError(`device ${id} has no gateway in the inventory`);
    // Rotation changes the TLS identity only: the cloud keeps verifying the same signing key.
    const signing = keyPairFromPem('ed25519', readFileSync(out.resolveInside(`${dir}/device-signing.key`)));
    const sealing = keyPairFromPem('x25519', readFileSync(out.resolveInside(`${dir}/device-sealing.key`)));
    await opts.cloud.client.replaceDevice(ring.tenant, {
      device: id,
      gateway: unit.gateway,
      signingPublicKey: signing.publicRaw.toString('base64'),
      sealingPublicKey: sealing.publicRaw.toString('base64'),
      certSerial: normalizeSerial(cert.serial),
    });
  }
  const retireAt = new Date(now.getTime() + overlapHours * 3_600_000).toISOString();
  const retiring: string[] = [];
  for (const c of ring.inventory.certificates) {
    if (c.role === opts.role && c.id === id && c.status === 'active') {
      c.status = 'retiring';
      c.retireAt = retireAt;
      retiring.push(c.serial);
    }
  }
  // Rotation replaces the unit's TLS key on purpose: that is the one overwrite it may do.
  out.write(`${dir}/${opts.role}.crt`, cert.certPem, { overwrite: true });
  out.write(`${dir}/${opts.role}.key`, cert.keyPem, { secret: true, overwrite: true });
  out.write(`${dir}/ca.crt`, ring.ca.certPem, { overwrite: true });
  recordCertificate(ring.inventory, opts.role, id, cert, now);
  saveInventory(out, ring.inventory);
  await writeArchive(out, opts.role, id, true);
  return {
    role: opts.role,
    id,
    serial: normalizeSerial(cert.serial),
    bundle: out.resolveInside(dir),
    archive: out.resolveInside(bundleArchive(opts.role, id)),
    retiring,
    retireAt,
  };
}

export type RevokeTarget = { role: UnitRole; id: string } | { serial: string } | { due: true };

export interface RevokeResult {
  newlyRevoked: string[];
  refused: string[];
  crlVersion: number;
  crlPath: string;
  cloudVersion?: number;
}

/**
 * Revokes a unit's certificates (or one serial), or with `due` just retires rotated
 * certificates whose overlap has ended; then rebuilds the CRL and publishes the full list
 * to the cloud, which serves it to gateways and queues it to devices.
 */
export async function revoke(
  out: OutputFolder,
  ring: TenantKeyring,
  target: RevokeTarget,
  opts: { cloud?: { client: CloudAdminClient }; now?: Date } = {},
): Promise<RevokeResult> {
  const now = opts.now ?? new Date();
  const newlyRevoked: string[] = [];
  const mark = (c: CertificateRecord) => {
    if (c.status === 'revoked') return;
    c.status = 'revoked';
    c.revokedAt = now.toISOString();
    newlyRevoked.push(c.serial);
  };
  if ('serial' in target) {
    if (!/^[0-9a-fA-F]{1,64}$/.test(target.serial)) throw new ProvisionError('serial must be hexadecimal');
    const serial = normalizeSerial(target.serial);
    const cert = ring.inventory.certificates.find((c) => normalizeSerial(c.serial) === serial);
    if (!cert) throw new ProvisionError(`no certificate with serial ${serial} was issued by this tenant`);
    mark(cert);
  } else if ('role' in target) {
    const id = unitId(target.role, target.id);
    if (!findUnit(ring.inventory, target.role, id)) throw new ProvisionError(`${target.role} ${id} is not provisioned in this tenant`);
    ring.inventory.certificates.filter((c) => c.role === target.role && c.id === id).forEach(mark);
  } else {
    for (const c of ring.inventory.certificates) {
      if (c.status === 'retiring' && c.retireAt && Date.parse(c.retireAt) <= now.getTime()) mark(c);
    }
  }
  const refused = refusedSerials(ring.inventory, now);
  if (newlyRevoked.length > 0 || !out.exists(TENANT_FILES.crl)) ring.inventory.crlVersion += 1;
  // The CRL is dated by the real clock: a thisUpdate in the future makes OpenSSL refuse every peer.
  const crl = await createRevocationList(ring.ca, refused);
  const crlPath = out.write(TENANT_FILES.crl, crl, { overwrite: true });
  saveInventory(out, ring.inventory);
  // The cloud unions what it is sent and tells every device, so send the whole list, but only
  // when it holds something the cloud has not yet accepted (a cron'd `revoke --due` stays quiet).
  let cloudVersion: number | undefined;
  const unpublished = ring.inventory.cloudPublished !== ring.inventory.crlVersion;
  if (opts.cloud && !out.dryRun && refused.length > 0 && unpublished) {
    cloudVersion = (await opts.cloud.client.publishRevocations(ring.tenant, refused)).version;
    ring.inventory.cloudPublished = ring.inventory.crlVersion;
    saveInventory(out, ring.inventory);
  }
  return { newlyRevoked, refused, crlVersion: ring.inventory.crlVersion, crlPath, cloudVersion };
}

/** Registers; with --force, a unit the cloud already has (HTTP 409) is replaced instead. */
async function orReplace<T>(force: boolean, register: () => Promise<T>, replace: () => Promise<T>): Promise<T> {
  try {
    return await register();
  } catch (err) {
    if (!(force && err instanceof CloudRefusal && err.status === 409)) throw err;
    return replace();
  }
}

function refuseExistingUnit(out: OutputFolder, inv: Inventory, role: UnitRole, id: string): void {
  if (!out.force && findUnit(inv, role, id)) {
    throw new ProvisionError(`${role} ${id} already exists in this tenant (use "provision rotate" for new keys, or --force to replace it)`);
  }
}

/**
 * A unit replaced with --force (a lost SD card, a swapped board) must not leave its old
 * certificates working: they are retired at once, and the next revoke (e.g. --due) lists them.
 */
function retirePrevious(inv: Inventory, role: UnitRole, id: string, now = new Date()): string[] {
  const retired: string[] = [];
  for (const c of inv.certificates) {
    if (c.role === role && c.id === id && c.status === 'active') {
      c.status = 'retiring';
      c.retireAt = now.toISOString();
      retired.push(c.serial);
    }
  }
  return retired;
}

function upsertUnit(inv: Inventory, unit: UnitRecord): void {
  const i = inv.units.findIndex((u) => u.role === unit.role && u.id === unit.id);
  if (i >= 0) inv.units[i] = unit;
  else inv.units.push(unit);
}

function recordCertificate(inv: Inventory, role: UnitRole, id: string, cert: IssuedCertificate, now = new Date()): void {
  inv.certificates.push({
    serial: normalizeSerial(cert.serial),
    role,
    id,
    issuedAt: now.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    status: 'active',
  });
}

function saveInventory(out: OutputFolder, inv: Inventory): void {
  out.write(TENANT_FILES.inventory, inventoryJson(inv), { overwrite: true });
}

async function writeArchive(out: OutputFolder, role: UnitRole, id: string, overwrite = false): Promise<void> {
  const rel = bundleArchive(role, id);
  if (out.dryRun) {
    out.write(rel, Buffer.alloc(0), { secret: true, overwrite });
    return;
  }
  const archive = await tarGzFolder(out.resolveInside(`${role}s`), id);
  out.write(rel, archive, { secret: true, overwrite: overwrite || out.force });
}

const HOST_PATTERN = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function checkHost(host: string): string {
  if (isIP(host) !== 0 || HOST_PATTERN.test(host)) return host;
  throw new ProvisionError(`host ${JSON.stringify(host.slice(0, 80))} is not a host name or IP address`);
}

/** A unit id, refused with the unit's own role in the message. */
function unitId(role: UnitRole, id: string): string {
  if (role !== 'integration') return assertId(role, id);
  if (!isValidId(id)) throw new ProvisionError(`integration name ${JSON.stringify(String(id).slice(0, 80))} must be 1-63 lowercase letters, digits or inner dashes (name the system, e.g. door-panel, never a person)`);
  return id;
}

function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}
