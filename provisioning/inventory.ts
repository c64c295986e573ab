import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ID_REGEX } from '../protocol/index.js';
import { normalizeSerial } from '../protocol/cert-identity.js';

/**
 * tenant/inventory.json: what the tenant CA has issued and to whom, so revoke and rotate know
 * which serials belong to a unit and the CRL can be rebuilt at any time. It holds ids, serials
 * and dates only: no keys, no personal data.
 */
const Id = z.string().regex(ID_REGEX);

export const CertificateRecord = z
  .object({
    serial: z.string().regex(/^[0-9a-f]+$/),
    role: z.enum(['device', 'gateway', 'integration']),
    id: Id,
    issuedAt: z.string(),
    notAfter: z.string(),
    /** active: in use; retiring: replaced by a rotation, valid until retireAt; revoked: in the CRL. */
    status: z.enum(['active', 'retiring', 'revoked']),
    retireAt: z.string().optional(),
    revokedAt: z.string().optional(),
  })
  .strict();
export type CertificateRecord = z.infer<typeof CertificateRecord>;

export const UnitRecord = z
  .object({
    role: z.enum(['device', 'gateway', 'integration']),
    id: Id,
    /** Devices: the gateway they connect to; integrations: the one their bundle dials, if any. */
    gateway: Id.optional(),
    /** Gateways: the address devices dial (host name or IP) and the MQTT port. */
    host: z.string().optional(),
    port: z.number().int().optional(),
    /** Gateways: further names in the server certificate, kept so a rotation keeps them. */
    altNames: z.array(z.string()).optional(),
    profile: z.string().optional(),
  })
  .strict();
export type UnitRecord = z.infer<typeof UnitRecord>;

export const Inventory = z
  .object({
    version: z.literal(1),
    tenant: Id,
    units: z.array(UnitRecord),
    certificates: z.array(CertificateRecord),
    /** Bumped each time the revocation list changes. */
    crlVersion: z.number().int().min(0),
    /** The crlVersion last accepted by the cloud: a failed publish is retried by the next revoke. */
    cloudPublished: z.number().int().min(0).optional(),
  })
  .strict();
export type Inventory = z.infer<typeof Inventory>;

export function emptyInventory(tenant: string): Inventory {
  return { version: 1, tenant, units: [], certificates: [], crlVersion: 0 };
}

export function readInventory(file: string): Inventory {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  const result = Inventory.safeParse(parsed);
  if (!result.success) throw new Error(`${file} is not a valid inventory: ${result.error.issues[0]?.message ?? 'invalid'}`);
  return result.data;
}

export function findUnit(inv: Inventory, role: UnitRecord['role'], id: string): UnitRecord | undefined {
  return inv.units.find((u) => u.role === role && u.id === id);
}

/** Serials a TLS server must refuse at `now`: revoked ones and rotated ones whose overlap ended. */
export function refusedSerials(inv: Inventory, now: Date): string[] {
  return inv.certificates
    .filter((c) => c.status === 'revoked' || (c.status === 'retiring' && c.retireAt !== undefined && Date.parse(c.retireAt) <= now.getTime()))
    .map((c) => normalizeSerial(c.serial));
}
