import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertId, generateKeyPair, keyPairFromPem, privateKeyToPem } from '../protocol/index.js';
import { emptyInventory, readInventory, type Inventory } from './inventory.js';
import { OutputFolder, ProvisionError } from './output.js';
import { createCertificateAuthority, type PemPair } from './pki.js';

/**
 * The tenant keyring (contract: DIR/tenant/): the CA for MQTT client and server
 * certificates, the admin command-signing pair (Ed25519), the cloud sealing pair (X25519)
 * and the card pepper. Private halves are written 0600 and never printed.
 */
export const TENANT_DIR = 'tenant';
export const TENANT_FILES = {
  caCert: `${TENANT_DIR}/ca.crt`,
  caKey: `${TENANT_DIR}/ca.key`,
  adminSigningKey: `${TENANT_DIR}/admin-signing.key`,
  adminSigningPub: `${TENANT_DIR}/admin-signing.pub`,
  cloudSealingKey: `${TENANT_DIR}/cloud-sealing.key`,
  cloudSealingPub: `${TENANT_DIR}/cloud-sealing.pub`,
  cardPepper: `${TENANT_DIR}/card-pepper.key`,
  inventory: `${TENANT_DIR}/inventory.json`,
  crl: `${TENANT_DIR}/crl.pem`,
} as const;

/** Files whose loss or overwrite would orphan every unit of the tenant. */
const KEY_FILES = [
  TENANT_FILES.caCert,
  TENANT_FILES.caKey,
  TENANT_FILES.adminSigningKey,
  TENANT_FILES.cloudSealingKey,
  TENANT_FILES.cardPepper,
];

export interface InitTenantResult {
  tenant: string;
  adminSigningPublic: string;
  cloudSealingPublic: string;
  caSerial: string;
}

export async function initTenant(out: OutputFolder, tenantId: string, opts: { caValidityDays?: number } = {}): Promise<InitTenantResult> {
  const tenant = assertId('tenant', tenantId);
  out.assertWritable([...KEY_FILES, TENANT_FILES.inventory]);
  const ca = await createCertificateAuthority({ tenant, validityDays: opts.caValidityDays });
  const admin = generateKeyPair('ed25519');
  const sealing = generateKeyPair('x25519');
  out.mkdir(TENANT_DIR, 0o700);
  out.write(TENANT_FILES.caCert, ca.certPem);
  out.write(TENANT_FILES.caKey, ca.keyPem, { secret: true });
  out.write(TENANT_FILES.adminSigningKey, privateKeyToPem(admin), { secret: true });
  out.write(TENANT_FILES.adminSigningPub, `${admin.publicRaw.toString('base64')}\n`);
  out.write(TENANT_FILES.cloudSealingKey, privateKeyToPem(sealing), { secret: true });
  out.write(TENANT_FILES.cloudSealingPub, `${sealing.publicRaw.toString('base64')}\n`);
  out.write(TENANT_FILES.cardPepper, `${randomBytes(32).toString('base64')}\n`, { secret: true });
  out.write(TENANT_FILES.inventory, inventoryJson(emptyInventory(tenant)), { secret: false });
  return {
    tenant,
    adminSigningPublic: admin.publicRaw.toString('base64'),
    cloudSealingPublic: sealing.publicRaw.toString('base64'),
    caSerial: ca.serial,
  };
}

export interface TenantKeyring {
  root: string;
  tenant: string;
  ca: PemPair;
  adminSigningPublic: string;
  cloudSealingPublic: string;
  cardPepper: string;
  inventory: Inventory;
}

/** Reads the keyring back, checking each part is what it claims to be (a wrong key is refused here, not at a door). */
export function loadTenant(root: string): TenantKeyring {
  const path = (rel: string) => join(root, rel);
  if (!existsSync(path(TENANT_FILES.inventory))) {
    throw new ProvisionError(`no tenant in ${root} (run "clockface provision tenant init --out ${root} --tenant NAME" first)`);
  }
  const inventory = readInventory(path(TENANT_FILES.inventory));
  const read = (rel: string) => {
    try {
      return readFileSync(path(rel), 'utf8');
    } catch {
      throw new ProvisionError(`tenant keyring is incomplete: ${rel} cannot be read`);
    }
  };
  const admin = keyPairFromPem('ed25519', read(TENANT_FILES.adminSigningKey));
  const sealing = keyPairFromPem('x25519', read(TENANT_FILES.cloudSealingKey));
  const pepper = read(TENANT_FILES.cardPepper).trim();
  if (Buffer.from(pepper, 'base64').length !== 32) throw new ProvisionError(`${TENANT_FILES.cardPepper} must hold 32 bytes in base64`);
  return {
    root,
    tenant: inventory.tenant,
    ca: { certPem: read(TENANT_FILES.caCert), keyPem: read(TENANT_FILES.caKey) },
    adminSigningPublic: admin.publicRaw.toString('base64'),
    cloudSealingPublic: sealing.publicRaw.toString('base64'),
    cardPepper: pepper,
    inventory,
  };
}

/** What the cloud needs of a keyring (its `keysDir`): everything except the CA's private key. */
export const CLOUD_KEY_FILES = ['ca.crt', 'admin-signing.key', 'admin-signing.pub', 'cloud-sealing.key', 'cloud-sealing.pub', 'card-pepper.key'] as const;

/**
 * Writes cloud/<tenant>/ for the cloud's `tenants[].keysDir`. The CA key stays with the
 * tenant folder: a compromised cloud can then not mint device or gateway certificates.
 */
export function exportCloudKeys(out: OutputFolder, ring: TenantKeyring): string {
  const dir = `cloud/${ring.tenant}`;
  const secret = (f: string) => f.endsWith('.key');
  out.assertWritable(CLOUD_KEY_FILES.map((f) => `${dir}/${f}`));
  out.mkdir(dir, 0o700);
  for (const f of CLOUD_KEY_FILES) out.write(`${dir}/${f}`, readFileSync(join(ring.root, TENANT_DIR, f)), { secret: secret(f) });
  if (existsSync(join(ring.root, TENANT_FILES.crl))) out.write(`${dir}/crl.pem`, readFileSync(join(ring.root, TENANT_FILES.crl)), { overwrite: true });
  return out.resolveInside(dir);
}

export function inventoryJson(inv: Inventory): string {
  return `${JSON.stringify(inv, null, 2)}\n`;
}
